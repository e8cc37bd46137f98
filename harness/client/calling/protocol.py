"""The calling driver protocol: the Calling SDK's TeamsCallAgent in Python terms.

Names follow `@azure/communication-calling` 2.0.0 (docs/contracts/calling.md §1): `createTeamsCallAgent`,
`startCall` (a Teams user or a phone number; a group with a thread id), `join` (meeting link,
meeting id + passcode, meeting coordinates), `incomingCall` with `accept`/`reject`, call `state`,
`callEndReason {code, subCode}`, `role`, the Capabilities feature, and the actions an attendee may
be restricted from (unmute, start video, share screen). A driver is chosen by configuration; step
code never knows which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.client.calling.credential import TokenCredential
from harness.core.prerequisites import MissingPrerequisite
from harness.wire import calling as api
from harness.wire.calling import teams_user_raw_id as teams_user_raw_id  # step code imports it from here

CALL_STATES = (
    "None",
    "Connecting",
    "Ringing",
    "EarlyMedia",
    "Connected",
    "InLobby",
    "LocalHold",
    "RemoteHold",
    "Disconnecting",
    "Disconnected",
)
SETTLED = frozenset({"Connected", "InLobby", "Disconnected"})


@dataclass(frozen=True)
class TeamsUser:
    """MicrosoftTeamsUserIdentifier: `{microsoftTeamsUserId}`."""

    oid: str


@dataclass(frozen=True)
class PhoneNumber:
    """PhoneNumberIdentifier: `{phoneNumber}` in E.164."""

    number: str


@dataclass(frozen=True)
class MeetingLink:
    meeting_link: str


@dataclass(frozen=True)
class MeetingId:
    meeting_id: str
    passcode: str | None = None


@dataclass(frozen=True)
class MeetingCoordinates:
    thread_id: str
    organizer_id: str
    tenant_id: str
    message_id: str = "0"


@dataclass(frozen=True)
class GroupLocator:
    """The ACS-identity CallAgent's group-call locator; TeamsCallAgent has no join for group calls."""

    group_id: str


Locator = MeetingLink | MeetingId | MeetingCoordinates | GroupLocator
Target = TeamsUser | PhoneNumber


class CallingCommunicationError(Exception):
    """What the SDK throws synchronously: `{code, subCode, message}`."""

    def __init__(
        self,
        code: int,
        sub_code: int | None,
        message: str,
        *,
        emulator_defined: str | None = None,
        request_id: str | None = None,
        evidence: dict[str, str] | None = None,
        agreement: tuple[bool, str] | None = None,
    ) -> None:
        super().__init__(f"{code}/{sub_code}: {message}")
        self.code, self.sub_code, self.message = code, sub_code, message
        self.emulator_defined, self.request_id = emulator_defined, request_id
        # Where two clients answered (the sandbox model and the real SDK): what each said, and
        # whether they agree (a disagreement is a failed check, so a FAIL).
        self.evidence, self.agreement = evidence or {}, agreement


# Every SKIP caused by not reaching Microsoft's calling services (signalling, media) says this, word
# for word: offline against the sandbox, offline on a live profile ([calling] offline = true), or live
# when the SDK's traffic did not get through. Checks outside the harness recognise such SKIPs by it.
NEEDS_CALLING_SERVICES = "needs Microsoft's calling services"


class NeedsLiveTenant(MissingPrerequisite):
    """The real SDK got as far as it can without Microsoft's calling services (offline, or unable to
    reach them); the reason says how far, and contains NEEDS_CALLING_SERVICES. The scenario is
    skipped with that reason: never a PASS."""


@dataclass(frozen=True)
class Capability:
    is_present: bool
    reason: str


@dataclass(frozen=True)
class EndReason:
    code: int
    sub_code: int | None


@dataclass
class CallView:
    """A call as the SDK shows it at one moment."""

    id: str
    direction: str
    state: str
    state_history: list[str] = field(default_factory=list)
    end_reason: EndReason | None = None
    role: str = "Unknown"
    capabilities: dict[str, Capability] = field(default_factory=dict)
    emulator_defined: str | None = None
    request_id: str | None = None
    capability_changes: list[CapabilityChange] = field(default_factory=list)


@dataclass(frozen=True)
class CapabilityChange:
    """A capabilitiesChanged event: why, and the capabilities whose value changed."""

    reason: str
    changed: dict[str, Capability]


@dataclass(frozen=True)
class ActionResult:
    action: str
    succeeded: bool
    error: str | None = None


class Call(Protocol):
    id: str

    def view(self) -> CallView: ...
    def wait_until(self, states: frozenset[str] = SETTLED, timeout: float = 30.0) -> CallView: ...
    def hang_up(self) -> CallView: ...
    def unmute(self) -> ActionResult: ...
    def start_video(self) -> ActionResult: ...
    def start_screen_sharing(self) -> ActionResult: ...
    def lobby_participants(self) -> list[str]: ...
    def admit(self, identifier: str) -> None: ...


class IncomingCall(Protocol):
    id: str
    caller: str  # the caller's rawId: "8:orgid:<oid>" for a Teams user, "4:+<E.164>" for a phone number

    def accept(self) -> Call: ...
    def reject(self) -> None: ...
    def wait_until_ended(self, timeout: float = 30.0) -> EndReason | None:
        """Its callEndReason once it ended without being accepted or rejected here (TeamsIncomingCall's
        `callEnded`: another endpoint of the user answered, say); None while it still rings."""
        ...


class TeamsCallAgent(Protocol):
    identity: str

    def start_call(self, targets: Target | list[Target], thread_id: str | None = None) -> Call: ...
    def join(self, locator: Locator) -> Call: ...
    def wait_for_incoming_call(self, timeout: float = 30.0, caller: str | None = None) -> IncomingCall | None:
        """The first incoming call from `caller` (a rawId, see `same_caller`; None: from anyone) that
        rings within `timeout`; calls from anyone else are left ringing."""
        ...

    def token_in_use(self) -> int | None:
        """The expiry (epoch seconds) of the ACS token the agent's client uses now; never the token."""
        ...

    def dispose(self) -> None: ...


class PhoneNetwork(Protocol):
    """Someone on the public phone network: dials a Teams user."""

    def dial(self, from_number: str, to: TeamsUser) -> None: ...


class TeamsClient(Protocol):
    """A meeting organizer in the Teams client: what a Teams user on ACS cannot do from the SDK."""

    def set_meeting_options(
        self, thread_id: str, *, attendee_mic: bool | None = None, attendee_camera: bool | None = None
    ) -> dict[str, bool]: ...
    def promote(self, thread_id: str, user: TeamsUser) -> None: ...
    def demote(self, thread_id: str, user: TeamsUser) -> None: ...
    def set_user_screen_sharing(self, user: TeamsUser, allowed: bool) -> bool: ...


class CallingDriver(Protocol):
    name: str

    def create_teams_call_agent(self, credential: TokenCredential | str) -> TeamsCallAgent:
        """`createTeamsCallAgent(tokenCredential)`: a credential with the app's token refresher, or a bare
        ACS token (a static credential, never refreshed)."""
        ...

    def pass_time(self, seconds: float) -> None:
        """Let `seconds` go by for the agents (their SDK's timers, the service's clock), as an app that
        stays open does."""
        ...

    def phone_network(self) -> PhoneNetwork | None: ...
    def teams_client(self) -> TeamsClient | None: ...
    def close(self) -> None: ...


# -- the SDK's data shapes: what a locator, a target and a call view look like on the wire -----------


ANY_PHONE_NUMBER = api.PHONE_RAW_PREFIX  # as an expected caller: a call from any phone number


def same_caller(raw_id: str | None, expected: str) -> bool:
    """Whether an incoming call's caller (`callerInfo.identifier.rawId`) is the one expected.

    Teams users compare by object id, case-insensitively, whatever the cloud prefix (8:orgid:,
    8:gcch:, 8:dod:); phone numbers by their digits; `ANY_PHONE_NUMBER` matches every phone number."""
    if not raw_id:
        return False
    kind, _, rest = raw_id.partition(":")
    want_kind, _, want = expected.partition(":")
    if kind != want_kind:
        return False
    if f"{kind}:" == api.PHONE_RAW_PREFIX:
        return not want or re.sub(r"\D", "", rest) == re.sub(r"\D", "", want)
    return bool(want) and rest.rsplit(":", 1)[-1].lower() == want.rsplit(":", 1)[-1].lower()


def locator_data(locator: Locator) -> dict[str, str]:
    """A locator as the SDK takes it (TeamsMeetingLinkLocator, ...; GroupLocator is the ACS CallAgent's)."""
    if isinstance(locator, MeetingLink):
        return {api.MEETING_LINK: locator.meeting_link}
    if isinstance(locator, MeetingId):
        return {api.MEETING_ID: locator.meeting_id, **({api.PASSCODE: locator.passcode} if locator.passcode else {})}
    if isinstance(locator, MeetingCoordinates):
        coordinates = (locator.thread_id, locator.organizer_id, locator.tenant_id, locator.message_id)
        return dict(zip(api.MEETING_COORDINATES, coordinates, strict=True))
    if isinstance(locator, GroupLocator):
        return {api.GROUP_ID: locator.group_id}
    raise TypeError(f"not a locator: {locator!r}")


def target_data(target: Target) -> dict[str, str]:
    if isinstance(target, TeamsUser):
        return api.teams_user_target(target.oid)
    if isinstance(target, PhoneNumber):
        return api.phone_target(target.number)
    raise TypeError(f"not a call target: {target!r}")


def _capability(data: dict[str, Any]) -> Capability:
    return Capability(bool(data.get(api.IS_PRESENT)), str(data.get(api.REASON)))


def call_view(data: dict[str, Any]) -> CallView:
    """A call as the SDK describes it (the bridge's view, the sandbox model's answer)."""
    end = data.get(api.CALL_END_REASON)
    return CallView(
        id=str(data[api.ID]),
        direction=str(data.get(api.DIRECTION) or "Outgoing"),
        state=str(data[api.STATE]),
        state_history=[str(s) for s in data.get(api.STATE_HISTORY) or []],
        end_reason=EndReason(int(end[api.CODE]), end.get(api.SUB_CODE)) if end else None,
        role=str(data.get(api.ROLE) or "Unknown"),
        capabilities={k: _capability(v) for k, v in (data.get(api.CAPABILITIES) or {}).items()},
        capability_changes=[
            CapabilityChange(str(c[api.REASON]), {k: _capability(v) for k, v in c[api.CHANGED].items()})
            for c in data.get(api.CAPABILITY_CHANGES) or []
        ],
    )
