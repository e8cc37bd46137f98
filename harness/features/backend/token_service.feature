@backend
Feature: A partner's token service exchanges Teams users' Entra tokens for ACS tokens correctly
  In the source document's setting (Contoso's multi-tenant app, bought by Fabrikam) the Teams user's
  client rarely calls ACS itself: the app's backend receives the user's Entra token and exchanges it,
  as Microsoft's Authentication Hero sample does. These scenarios hand the service real Entra tokens
  and judge what comes back; on a tenant that keeps an exchange log (the sandbox) they also judge what
  the service sent to ACS. Run them with `cte backend check`. Source: docs/token-service.md.

  Scenario: The service returns the user's own ACS token, expiring with their Entra token
    Given the Teams user "licensed" has signed in to the app
    When the Entra token is handed to the token service
    Then the token service serves an ACS token of that user, expiring with their Entra token
    And the answer carries no Entra token

  Scenario: Two users at once each get their own ACS token
    Given the Teams user "licensed" has been served an ACS token by the token service
    And the Teams user "colleague" has signed in to the app
    When the Entra tokens of "licensed" and "colleague" are handed to the token service at once
    Then each user is served an ACS token of their own, expiring with their Entra token

  Scenario Outline: The service refuses a token it must not exchange, and never sends it to ACS
    Given the Teams user "licensed" has signed in for a <kind> token
    When the <kind> token is handed to the token service
    Then the token service refuses it without sending it to ACS
    And the answer carries no Entra token

    Examples:
      | case                                | kind         |
      | an expired Entra token              | expired      |
      | a token issued to another app       | other app's  |
      | a token for Microsoft Graph         | Graph        |
      | a token without Teams.ManageCalls   | chats-only   |

  Scenario: A user of a second tenant is served or refused as the profile expects
    Given the Teams user "second-tenant" has signed in to the app
    When the Entra token is handed to the token service
    Then the token service answers the second tenant's user as the profile expects

  Scenario: After the Entra token expires, a fresh sign-in yields a fresh ACS token
    Given the Teams user "licensed" has been served an ACS token by the token service
    When that Entra token has expired and the user signs in again
    And the Entra token is handed to the token service
    Then the token service serves a new ACS token, expiring with the new Entra token
