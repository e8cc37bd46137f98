@chat
Feature: ACS Chat does not serve Teams users; they chat through Microsoft Graph
  Developers assume that ACS Chat (or the UI library's CallWithChat composite) works for Teams users
  as calling does, and pass it the ACS token of the Teams-user exchange. ACS Chat refuses it: Teams
  users chat through Microsoft Graph. Source: docs/contracts/identity.md §9.

  @emulator-defined
  Scenario: A Teams user's ACS token is refused by ACS Chat, and the remedy is Graph
    Given the Teams user "licensed" has signed in with the Teams scopes
    And the Entra token has been exchanged for an ACS token
    When the Teams user's ACS token is used to start an ACS Chat thread
    Then ACS Chat refuses it with status 403 and code "Forbidden"
    And the remedy says "Teams users chat through Microsoft Graph"
