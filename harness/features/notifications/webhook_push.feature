@notifications
Feature: Receive chat messages on a webhook and push them to the client
  The source document's chat path: "Receive message as Teams user on webhook and then push message
  to the client with, for example, SignalR". A Teams user's app subscribes to a chat's messages
  with resource data (encrypted for its own certificate); Graph calls the webhook; the receiver
  verifies, decrypts and pushes the message to the user's client over Server-Sent Events.
  Source: docs/contracts/graph.md §4.

  Scenario Outline: A message in a <kind> chat reaches the other member's client through the webhook
    Given "licensed" and "colleague" share a <kind> chat
    And "licensed" subscribes to the chat's messages with resource data
    And the client of "licensed" is connected to the push channel
    When "colleague" sends a message to the chat
    Then the message reaches the client of "licensed" through the webhook

    Examples:
      | kind       |
      | one-on-one |
      | group      |
      | meeting    |

  Scenario Outline: A forged notification with <forgery> is rejected and reaches no client
    Given "licensed" and "colleague" share a one-on-one chat
    And "licensed" subscribes to the chat's messages with resource data
    And the client of "licensed" is connected to the push channel
    When a forged notification with <forgery> is posted to the webhook
    Then the webhook rejects it and no client receives it

    Examples:
      | forgery                    |
      | wrong clientState          |
      | expired validation token   |
      | untrusted validation token |
      | tampered dataSignature     |

  Scenario: A subscription survives a lifecycle event
    Given "licensed" and "colleague" share a group chat
    And "licensed" subscribes to the chat's messages with resource data
    And the client of "licensed" is connected to the push channel
    When Graph signals that the subscription needs reauthorization
    And "colleague" sends a message to the chat
    Then the message reaches the client of "licensed" through the webhook

  @emulator-defined
  Scenario: Edits and deletions reach the client as updated and deleted notifications
    Given "licensed" and "colleague" share a group chat
    And "licensed" subscribes to the chat's messages with resource data, for created, updated and deleted
    And the client of "licensed" is connected to the push channel
    When "colleague" sends a message to the chat
    And "colleague" edits the message
    And "colleague" deletes the message
    Then the client of "licensed" receives the message as created, then updated, then deleted
