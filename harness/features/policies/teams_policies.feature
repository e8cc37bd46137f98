@policies
Feature: Teams policies follow the user into the app
  "Teams policies control communication across applications": a policy or meeting option set in
  Teams admin (or by the organizer) is enforced in an ACS-based app as it is in Teams. Each
  scenario states the policy, the action and the enforcement expected. Where Microsoft documents
  no error for an enforcement, the sandbox's answer is marked emulator-defined.

  @emulator-defined
  Scenario: Messaging policy with chat off: sending a chat message is rejected
    Given the "Messaging policy" sets "Chat" to "Off" for a user, so sending a chat message is rejected
    And "policy-holder" and "colleague" share a one-on-one chat
    When "policy-holder" sends a message to the chat
    Then the policy is enforced: the send is rejected with status 403

  @emulator-defined
  Scenario: Calling policy with private calls off: a VoIP call to a Teams user is rejected
    Given the "Calling policy" sets "Make private calls" to "Off" for a user, so a VoIP call to a Teams user is rejected
    And "policy-holder" has a Teams call agent
    When "policy-holder" calls the Teams user "colleague"
    Then the policy is enforced: the call is rejected

  Scenario: Calling policy without Enterprise Voice: a PSTN call is rejected with 412/41056
    Given the "Calling policy" sets "Enterprise Voice" to "Off" for a user, so a PSTN call is rejected with 412/41056
    And "policy-holder" has a Teams call agent
    When "policy-holder" calls the outbound phone number
    Then the policy is enforced: the call is rejected with code 412 and subcode 41056

  Scenario: Meeting option "Who can bypass the lobby" set to organizers: the Teams user waits until admitted
    Given the meeting "lobby" sets "Who can bypass the lobby" to "Only organizers", so the Teams user waits in the lobby until admitted
    And "organizer" has a Teams call agent
    And "licensed" has a Teams call agent
    When "organizer" joins the lobby meeting by link
    And "licensed" joins the lobby meeting by link
    Then the policy is enforced: "licensed" waits in the lobby
    And once "organizer" admits "licensed", the call connects

  Scenario: Meeting option "Allow mic for attendees" off: unmuteMic is absent and unmute fails
    Given the meeting "attendee-mic-off" sets "Allow mic for attendees" to "Off", so an attendee cannot unmute
    And "licensed" has a Teams call agent
    When "licensed" joins the attendee-mic-off meeting by link
    Then the policy is enforced: "licensed" lacks "unmuteMic" (MeetingRestricted) and "unmute" fails

  Scenario: Meeting option "Allow camera for attendees" off: turnVideoOn is absent and video fails
    Given the meeting "attendee-camera-off" sets "Allow camera for attendees" to "Off", so an attendee cannot start video
    And "licensed" has a Teams call agent
    When "licensed" joins the attendee-camera-off meeting by link
    Then the policy is enforced: "licensed" lacks "turnVideoOn" (MeetingRestricted) and "start_video" fails

  Scenario: Meeting option "Who can present" set to organizers: an attendee gains shareScreen when promoted
    Given the meeting "organizer-presents" sets "Who can present" to "Only organizers", so an attendee cannot share until promoted
    And "licensed" has a Teams call agent
    When "licensed" joins the organizer-presents meeting by link
    Then the policy is enforced: "licensed" lacks "shareScreen" (RoleRestricted) and "start_screen_sharing" fails
    And once the organizer makes "licensed" a presenter in Teams, "shareScreen" is present after capabilitiesChanged "RoleChanged"

  Scenario: A meeting option changed during the meeting raises capabilitiesChanged
    Given the organizer of the meeting "organizer-presents" turns "Allow mic for attendees" to "Off" during the meeting, so an attendee loses unmuteMic when it changes
    And "licensed" has a Teams call agent
    When "licensed" joins the organizer-presents meeting by link
    And the organizer turns "Allow mic for attendees" off in Teams
    Then the policy is enforced: "licensed" lacks "unmuteMic" after capabilitiesChanged "MeetingOptionOrOrganizerPolicyChanged"

  Scenario: A user's meeting policy changed during the meeting raises capabilitiesChanged
    Given the "Meeting policy" sets "Screen sharing" to "Off during the meeting" for a user, so screen sharing is withdrawn when an admin turns it off
    And "policy-holder" has a Teams call agent
    When "policy-holder" joins the regular meeting by link
    And a Teams admin turns screen sharing off for "policy-holder"
    Then the policy is enforced: "policy-holder" lacks "shareScreen" after capabilitiesChanged "UserPolicyChanged"

  @emulator-defined
  Scenario: External access blocked for a domain: chat and call to its user are rejected
    Given "External access" blocks the domain of the external user, so chats and calls with its users are rejected
    And "licensed" has a Teams call agent
    When "licensed" calls the external user
    And "licensed" starts a chat with the external user
    Then the policy is enforced: both the call and the chat are rejected
