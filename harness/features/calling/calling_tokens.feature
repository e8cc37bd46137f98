@calling
Feature: A call that outlives the user's ACS token
  An ACS token lives as long as the Entra token it was exchanged for (about an hour). A call longer
  than that goes on only if the app's credential renews the token: Microsoft's samples build
  AzureCommunicationTokenCredential with a tokenRefresher that gets the user a fresh Entra token (MSAL,
  silently) and exchanges it again, and refreshProactively. An app that hands the SDK a static token,
  or a refresher that returns the cached one, loses the call (call-end.md: 4507/495 "Ensure that your
  application implements token refresh mechanism correctly"). Source: docs/contracts/calling.md §7.

  # The sandbox's model clock moves on by the token's lifetime at once; a live tenant's tokens take real
  # time to expire: a live run waits at most [tokens] max_expiry_wait_s, else the scenario skips.
  Scenario: A call outlives the user's ACS token: the app exchanges a fresh one and the call goes on
    Given "licensed" has a Teams call agent
    And "colleague" has a Teams call agent
    When "licensed" calls "colleague", whose app is ringing
    And "colleague" accepts the incoming call
    And "licensed"'s ACS token has expired
    Then "licensed"'s call goes on, with a new ACS token from the token refresher
