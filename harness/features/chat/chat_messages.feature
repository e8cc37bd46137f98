@chat
Feature: Chat as a Teams user through Microsoft Graph
  A Teams user's app sends and reads 1:1, group and meeting chat messages, and channel posts,
  through Microsoft Graph v1.0 with the user's delegated token. Source: docs/contracts/graph.md.

  @row-11 @supported
  Scenario Outline: A Teams user sends a message to a <kind> chat
    Given "licensed" and "colleague" share a <kind> chat
    When "licensed" sends a message to the chat
    Then the send is allowed
    And "colleague" finds each message in the chat exactly once, newest first

    Examples:
      | kind       |
      | one-on-one |
      | group      |
      | meeting    |

  @row-12 @supported
  Scenario Outline: A Teams user gets the messages of a <kind> chat by polling
    Given "licensed" and "colleague" share a <kind> chat
    And "licensed" has sent 3 messages to the chat
    When "colleague" polls the chat for its messages
    Then getting messages is allowed
    And each message sent is listed exactly once, newest first
    And each message listed is exactly what was sent

    Examples:
      | kind       |
      | one-on-one |
      | group      |
      | meeting    |

  @row-12 @supported
  Scenario: Paging across more than 50 messages loses and duplicates nothing
    Given "licensed" and "colleague" share a group chat
    And "licensed" has sent 55 messages to the chat
    When "colleague" polls the chat 20 messages at a time
    Then getting messages is allowed
    And each message sent is listed exactly once, newest first
    And the listing took 3 pages

  Scenario: A Teams user posts to a channel and another team member reads it
    Given "licensed" and "colleague" share a channel chat
    When "licensed" sends a message to the chat
    Then the send is allowed
    And "colleague" finds each message in the chat exactly once, newest first

  Scenario: Reading a chat the user is not a member of is rejected
    Given "colleague" and "offline" share a one-on-one chat
    When "licensed" polls the chat for its messages
    Then getting messages is rejected with status 403 and code "Forbidden"

  Scenario: Sending without ChatMessage.Send or Chat.ReadWrite is rejected
    Given the misconfigured tenant "graph-scope-missing"
    And "licensed" and "colleague" share a one-on-one chat
    When "licensed" sends a message to the chat
    Then the send is rejected with status 403 and code "Forbidden"
    And the diagnosis names the missing permission "ChatMessage.Send"

  @emulator-defined
  Scenario: A message over the size limit is rejected
    Given "licensed" and "colleague" share a one-on-one chat
    When "licensed" sends a message of 29000 bytes to the chat
    Then the send is rejected with status 413 and code "RequestEntityTooLarge"

  Scenario: A chat outlives the user's Graph token: the client signs in again silently and goes on
    Given "licensed" and "colleague" share a one-on-one chat
    When "licensed"'s Graph token has expired
    And "licensed" sends a message to the chat
    Then the message went out with a new token for "licensed", signed in again silently
