@chat
Feature: Graph refusals that look alike are told apart, each with its own remedy
  Graph answers several mistakes a partner's app makes with the same status. The report reads
  Graph's message and names the cause and its fix. Source: docs/contracts/graph.md §9.

  @emulator-defined
  Scenario: A user without a Teams licence is refused for the licence, not for membership
    Given "unlicensed" and "colleague" share a one-on-one chat
    Then creating the chat is rejected with status 403 and code "Forbidden"
    And the diagnosis is about "licence", not "member"

  @emulator-defined
  Scenario: A Teams user's token cannot read every chat through getAllMessages
    When "licensed" reads all their chats with getAllMessages
    Then getting all messages is rejected with status 403 and code "Forbidden"
    And the remedy says "GET /chats/{id}/messages"

  @emulator-defined
  Scenario: getAllMessages with the app's own token needs protected-API approval
    When the app reads all of "licensed"'s chats with getAllMessages using its own token
    Then getting all messages is rejected with status 403 and code "Forbidden"
    And the remedy says "protected-API access"

  @emulator-defined
  Scenario: An app-only token cannot post a chat message: Graph allows that for import only
    Given "licensed" and "colleague" share a one-on-one chat
    When the app posts a message to the chat with its own token
    Then the send is rejected with status 401 and code "Unauthorized"
    And the remedy says "delegated token"
