@identity
Feature: A browser sign-in, as a partner's single-page app signs its users in
  The authorization code flow with PKCE in headless Chromium, run by Microsoft's MSAL.js
  (@azure/msal-browser) from a page at the app's redirect URI, as a partner's SPA runs it. The redirect URI
  must be registered for the app, under the platform the app is: "Single-page application" for a SPA, whose
  browser redeems the code. Entra refuses a URI registered under no platform (AADSTS50011) or under the wrong
  one (AADSTS9002326, AADSTS9002327), and the report names the fix: docs/contracts/identity.md §11.

  Scenario: A Teams user signs in through the browser as a single-page app
    When the Teams user "licensed" signs in through the browser as a single-page app
    Then the browser sign-in is allowed
    And the token carries the Teams scopes

  @emulator-defined
  Scenario: A SPA redirect URI registered under "Mobile and desktop applications" is refused with AADSTS9002326
    Given the misconfigured tenant "redirect-uri-wrong-platform"
    When the Teams user "licensed" signs in through the browser as a single-page app
    Then the browser sign-in is rejected at the code redemption with status 400, error "invalid_request" and AADSTS9002326
    And the remedy says "under 'Single-page application', not 'Mobile and desktop applications'"

  @emulator-defined
  Scenario: A back end redeeming a code issued to a SPA redirect URI is refused with AADSTS9002327
    When the Teams user "licensed" signs in through the browser and a back end redeems the code
    Then the browser sign-in is rejected at the code redemption with status 400, error "invalid_request" and AADSTS9002327
    And the remedy says "redeem the code in the browser"

  @emulator-defined
  Scenario: A redirect URI registered under no platform is refused with AADSTS50011
    Given the misconfigured tenant "redirect-uri-unregistered"
    When the Teams user "licensed" signs in through the browser as a single-page app
    Then the browser sign-in is rejected at the authorize request with status 400, error "invalid_request" and AADSTS50011
    And the remedy says "under 'Single-page application'"
