"""The sandbox calling model's HTTP API as both ends of the seam speak it: its paths, the JSON field
names of its bodies, and the values they carry (docs/contracts/calling.md).

The API is the emulator's own (Microsoft's call signalling is not a public REST API; its host is
`contract.SANDBOX_CALLING_HOST`). Its bodies take the Calling SDK's shapes, so that a locator, a
target and a call read the same here as from the real SDK: harness.sandbox.calling answers with
these names, harness.client.calling sends and reads them.
"""

from __future__ import annotations

from typing import Any

VERSION = "/v1"  # the API's version segment, with which a tenant's calling_base_url ends

# Paths below VERSION: `{name}` marks an id (Starlette's route syntax, and str.format's).
AGENTS = "agents"
AGENT_CALLS = "agents/{agent}/calls"
AGENT_INCOMING_CALLS = "agents/{agent}/incomingCalls"
CALL = "calls/{call}"
CALL_HANG_UP = "calls/{call}/hangUp"
CALL_ACTIONS = "calls/{call}/actions"
CALL_LOBBY = "calls/{call}/lobby"
CALL_LOBBY_ADMIT = "calls/{call}/lobby/admit"
INCOMING_CALL = "incomingCalls/{incoming}"  # GET: a TeamsIncomingCall as the SDK shows it, ended or not
INCOMING_ACCEPT = "incomingCalls/{incoming}/accept"
INCOMING_REJECT = "incomingCalls/{incoming}/reject"
PHONE_NETWORK_CALLS = "pstn/calls"  # the emulator's phone network: a phone caller rings a Teams user
# The organizer's Teams client and a Teams admin, simulated: what the ACS SDK cannot do.
MEETING_OPTIONS = "simulated/meetings/{thread}/options"
MEETING_PROMOTE = "simulated/meetings/{thread}/promote"
MEETING_DEMOTE = "simulated/meetings/{thread}/demote"
USER_POLICIES = "simulated/users/{oid}/policies"

# Common fields.
ID = "id"
STATE = "state"
VALUE = "value"  # a list's items
IDENTIFIER = "identifier"  # a participant's rawId
PREVIOUS = "previous"  # what a simulated change replaced, so that a test can put it back

# An error: {"error": {"code", "subCode", "message"}} (a CallingCommunicationError's fields).
ERROR = "error"
CODE = "code"
SUB_CODE = "subCode"
MESSAGE = "message"
# An expired ACS token: the model answers 401 with the subcode Microsoft's call-end table gives it
# (10009/401 "Unauthenticated identity. Ensure that your Azure Communication Services token is valid and
# not expired."); a client's credential takes it as the cue to refresh its token.
UNAUTHENTICATED = 10009

# POST agents: the answer.
AGENT_ID = "agentId"
AGENT_KIND = "kind"
AGENT_IDENTITY = "identity"
TEAMS_CALL_AGENT = "TeamsCallAgent"

# POST agents/{agent}/calls: {"operation": "startCall", "targets": [...], "threadId"?} or
# {"operation": "join", "locator": {...}}.
OPERATION = "operation"
START_CALL = "startCall"
JOIN = "join"
TARGETS = "targets"
THREAD_ID = "threadId"
LOCATOR = "locator"

# A target (MicrosoftTeamsUserIdentifier, PhoneNumberIdentifier).
TEAMS_USER_ID = "microsoftTeamsUserId"
PHONE_NUMBER = "phoneNumber"

# A locator: TeamsMeetingLinkLocator, TeamsMeetingIdLocator, MeetingLocator (coordinates), and the
# ACS CallAgent's GroupLocator.
MEETING_LINK = "meetingLink"
MEETING_ID = "meetingId"
PASSCODE = "passcode"
ORGANIZER_ID = "organizerId"
TENANT_ID = "tenantId"
MESSAGE_ID = "messageId"
MEETING_COORDINATES = (THREAD_ID, ORGANIZER_ID, TENANT_ID, MESSAGE_ID)
GROUP_ID = "groupId"

# A call, as the SDK shows it.
DIRECTION = "direction"
STATE_HISTORY = "stateHistory"
CALL_END_REASON = "callEndReason"  # {"code", "subCode"}
ROLE = "role"
CAPABILITIES = "capabilities"  # name -> {"isPresent", "reason"}
IS_PRESENT = "isPresent"
REASON = "reason"
MEETING_KIND = "meetingKind"
CAPABILITY_CHANGES = "capabilityChanges"  # capabilitiesChanged events: [{"reason", "changed": {name: capability}}]
CHANGED = "changed"
REMOTE_PARTICIPANT = "remoteParticipant"
EMULATOR_DEFINED = "emulatorDefined"  # what the model decided that Microsoft does not document

# The reasons of a capabilitiesChanged event.
ROLE_CHANGED = "RoleChanged"
MEETING_OPTION_CHANGED = "MeetingOptionOrOrganizerPolicyChanged"
USER_POLICY_CHANGED = "UserPolicyChanged"

# POST calls/{call}/actions: {"action"}; the answer {"action", "succeeded", "error"?}. Each action
# and the meeting capability that governs it.
ACTION = "action"
SUCCEEDED = "succeeded"
UNMUTE = "unmute"
START_VIDEO = "startVideo"
START_SCREEN_SHARING = "startScreenSharing"
UNMUTE_MIC = "unmuteMic"
TURN_VIDEO_ON = "turnVideoOn"
SHARE_SCREEN = "shareScreen"
ACTIONS = {UNMUTE: UNMUTE_MIC, START_VIDEO: TURN_VIDEO_ON, START_SCREEN_SHARING: SHARE_SCREEN}

# An incoming call: {"id", "callerInfo": {"identifier"}, "state", "callEndReason"?}; its state is Ringing
# until it is accepted or rejected here (Accepted, Rejected) or ends elsewhere (Ended, with a callEndReason).
CALLER_INFO = "callerInfo"

# POST pstn/calls: {"from": "+E.164", "to": a target}.
FROM = "from"
TO = "to"

# POST simulated/meetings/{thread}/options: the options to change; the answer {"meeting", "previous"}.
ATTENDEE_MIC = "attendeeMic"
ATTENDEE_CAMERA = "attendeeCamera"
MEETING = "meeting"

# POST simulated/users/{oid}/policies.
SCREEN_SHARING = "screenSharing"

# rawIds (CommunicationIdentifier.rawId): how a callee's SDK names the caller.
TEAMS_USER_RAW_PREFIX = "8:orgid:"  # a Teams user of the public cloud
PHONE_RAW_PREFIX = "4:"


def teams_user_raw_id(oid: str) -> str:
    """A Teams user's rawId as a callee's SDK shows the caller (public cloud)."""
    return f"{TEAMS_USER_RAW_PREFIX}{oid}"


def phone_raw_id(number: str) -> str:
    """A phone number's rawId ("4:+1..."): `number` in E.164."""
    return f"{PHONE_RAW_PREFIX}{number}"


def teams_user_target(oid: str) -> dict[str, str]:
    return {TEAMS_USER_ID: oid}


def phone_target(number: str) -> dict[str, str]:
    return {PHONE_NUMBER: number}


def error_detail(code: int, sub_code: int | None, message: str) -> dict[str, Any]:
    """An answer's `error`: a CallingCommunicationError's code, subCode and message."""
    return {CODE: code, SUB_CODE: sub_code, MESSAGE: message}
