"""Calling rows 1-10 and the webinar caveat, as scenarios drive them.

Each Teams user gets the real chain: sign in (MSAL) -> exchange (ACS) -> createTeamsCallAgent; then
the call is started, received or joined through the configured driver, and the observation is
what the SDK reports: a synchronous CallingCommunicationError, or the call's state history and
callEndReason once it settles.

A scenario is told from its own user's side: the first user who creates an agent (the app's user,
"adele" in the calling rows). Where another user of the scenario answers (row 1: megan's app rings
and she accepts), both sides are driven here, and the verdict is drawn from the scenario's own
user's call once it settles (`connected_call`), never from a setup step.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.client.calling import DriverUnavailable, driver_for
from harness.client.calling.credential import TokenCredential
from harness.client.calling.protocol import (
    ANY_PHONE_NUMBER,
    Call,
    CallingCommunicationError,
    CallingDriver,
    CallView,
    GroupLocator,
    IncomingCall,
    Locator,
    MeetingCoordinates,
    MeetingId,
    MeetingLink,
    PhoneNumber,
    TeamsCallAgent,
    TeamsUser,
    teams_user_raw_id,
)
from harness.client.calling.sdk_cassette import SdkCassette
from harness.conformance.flows import observe
from harness.conformance.flows.chat import THIRD_MEMBER  # a group chat's third member: a group call on it rings her too
from harness.conformance.flows.identity import IdentityFlow
from harness.conformance.verdicts import WITNESSES_AGREE, Check, Observation, ObservationLog
from harness.core.config import Tenant
from harness.core.prerequisites import MissingPrerequisite, token_wait
from harness.wire import calling as wire_calling
from harness.wire import contract, tokens
from harness.wire.calling import UNAUTHENTICATED

TOKEN_REFRESHER_REMEDY = (
    "give the SDK a credential that renews the token: new AzureCommunicationTokenCredential({token, tokenRefresher, "
    "refreshProactively: true}), where tokenRefresher gets the user a fresh Entra token (MSAL acquireTokenSilent) "
    "and exchanges it again (getTokenForTeamsUser), returning the new ACS token, never the cached one"
)
# What a callEndReason means (call-end.md, calling-sdk.md; docs/contracts/calling.md §2).
END_REASONS: dict[tuple[int, int | None], tuple[str, str]] = {
    (480, 10037): (
        "the callee has no endpoint online (no Teams client, no app signed in)",
        "ask the callee to sign in to Teams or to your app",
    ),
    (412, 41056): (
        "the caller has no Teams Phone / Enterprise Voice",
        "assign a Teams Phone licence and enable Enterprise Voice for the user",
    ),
    (403, 40231): ("the token is not a Teams user's token", "exchange the user's Entra token for an ACS token"),
    (401, 44113): ("the ACS token lacks the voip scope", "issue a token with voip"),
    # An ACS token that expired in use (call-end.md: 10009/401 "Ensure that your Azure Communication Services
    # token is valid and not expired"; 4507/495 "Ensure that your application implements token refresh mechanism
    # correctly"): the app gave the SDK a static token, or a refresher that returns the old one.
    (401, UNAUTHENTICATED): (
        "the ACS token expired and the app did not replace it",
        TOKEN_REFRESHER_REMEDY,
    ),
    (495, 4507): (
        "the app did not provide a valid ACS token: it expired and was not refreshed",
        TOKEN_REFRESHER_REMEDY,
    ),
    # Microsoft's call-end table lists the subcode first: "0 | 603" is code 603, subCode 0.
    (603, 0): ("the callee declined the call", ""),
    # Another endpoint of the same callee answered or every endpoint declined (call-end.md, Microsoft's call-end
    # table: https://learn.microsoft.com/azure/communication-services/resources/troubleshooting/voice-video-calling/troubleshooting-codes).
    (487, 10003): (
        "the call was accepted on another endpoint of this user (answered elsewhere): only one endpoint connects",
        "nothing to fix: stop ringing on this endpoint and show the call as answered elsewhere, not as missed",
    ),
    (487, 10024): ("every endpoint of the callee declined the call", "place the call again later"),
    (0, 5003): ("every endpoint of the callee declined the call", "place the call again later"),
    (404, 0): ("the meeting or callee was not found", "check the meeting link, id or coordinates"),
    # 40210 is the SDK's own check of the link (its catalogue, docs/contracts/calling.md §2); Microsoft's
    # troubleshooting tables do not list it. The link the SDK takes is the meeting's full join URL:
    # https://learn.microsoft.com/azure/communication-services/how-tos/calling-sdk/teams-interoperability, and a
    # Microsoft answer: "a full Teams meeting link, which can be retrieved using Graph APIs or from the Join Meeting
    # URL in the Teams meeting invite" (https://learn.microsoft.com/answers/questions/1183576/).
    (400, 40210): (
        "the Calling SDK did not accept the string as a Teams meeting link (it checks before calling the service)",
        "pass the meeting's full join URL unmodified (Graph onlineMeeting joinWebUrl, or the invite's Join link: "
        ".../l/meetup-join/... or .../meet/<id>?p=<passcode>), not a shortened, re-encoded or hand-built one",
    ),
}
# The endpoints of one Teams user in the answered-elsewhere scenarios: her first agent is her desktop.
FIRST_ENDPOINT, ENDPOINTS = "desktop", ("desktop", "mobile")
RESTRICTED_ACTIONS = ("unmute", "start_video", "start_screen_sharing")
ANY_GROUP_ID = "00000000-0000-0000-0000-00000000ca11"  # a group id: no TeamsCallAgent joins by one
INCOMING_WAIT_S = 10.0  # how long a callee's app waits for the expected call to ring


class CallDidNotSettle(RuntimeError):
    """The call stayed Connecting or Ringing: no verdict can come from that."""


# States in which a call has media (or waits for it in a lobby): a refusal must come before any of them.
MEDIA_STATES = frozenset({"EarlyMedia", "Connected", "InLobby", "LocalHold", "RemoteHold"})


def refused_before_media(observed: Observation) -> tuple[bool, str]:
    """Row 8 (no code is documented for a live event): a refusal is a 4xx end or error that is not
    "not found", a timeout or a network failure (49x), reached before the call had any media; a
    plain end (0/x), a service fault (5xx) or an end after media says nothing about the row."""
    code = observed.status or 0
    states = [s.strip() for s in str(observed.evidence.get("states", "")).split("→") if s.strip()]
    media = [s for s in states if s in MEDIA_STATES]
    refusal = 400 <= code < 490 and code not in (404, 408)
    detail = (
        f"end code {code}"
        + (f" after {', '.join(media)}" if media else "")
        + (f" ({' → '.join(states)})" if states else "")
    )
    return refusal and not media, detail


def call_observation(stage: str, view: CallView) -> Observation:
    if view.state not in ("Connected", "InLobby", "Disconnected"):
        raise CallDidNotSettle(f"the call was still {view.state} after waiting ({' → '.join(view.state_history)})")
    evidence: dict[str, object] = {"states": " → ".join(view.state_history), "role": view.role}
    if view.end_reason:
        evidence["callEndReason"] = {"code": view.end_reason.code, "subCode": view.end_reason.sub_code}
    allowed = view.state in ("Connected", "InLobby")  # in the lobby: admitted to wait, not refused
    code = view.end_reason.code if view.end_reason and not allowed else None
    sub = view.end_reason.sub_code if view.end_reason and not allowed else None
    return observe.answer(
        view,
        stage,
        evidence,
        allowed=allowed,
        status=code,
        code=sub,
        message=f"call ended in state {view.state}",
        found=END_REASONS.get((code or 0, sub)),
    )


def error_observation(stage: str, err: CallingCommunicationError) -> Observation:
    checks = []
    if err.agreement is not None:  # two witnesses (the sandbox model and the real SDK): they must agree
        checks.append(Check(WITNESSES_AGREE, *err.agreement))
    return observe.answer(
        err,
        stage,
        {"error": "CallingCommunicationError (thrown synchronously)", **err.evidence},
        allowed=False,
        status=err.code,
        code=err.sub_code,
        message=err.message,
        found=END_REASONS.get((err.code, err.sub_code)),
        checks=checks,
    )


@dataclass
class CallingFlow(ObservationLog):
    tenant: Tenant
    sleep: Callable[[float], None] = time.sleep
    driver: CallingDriver | None = None
    identities: dict[str, IdentityFlow] = field(default_factory=dict)
    agents: dict[str, TeamsCallAgent] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)
    incoming: dict[str, IncomingCall] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    actions: dict[str, bool] = field(default_factory=dict)
    # Where undoing what a scenario changed in the tenant goes (run while its cassette is open).
    on_cleanup: Callable[[Callable[[], object]], None] | None = None
    # Record/replay with the browser driver: where the real SDK's answers are written / read.
    sdk_cassette: SdkCassette | None = None
    # Whose side the scenario is told from: the first user who creates an agent (the app's user).
    subject: str | None = None
    # Who is expected to ring whom (callee -> the caller's rawId): a callee accepts only that call.
    expected_callers: dict[str, str] = field(default_factory=dict)
    peers: dict[str, str] = field(default_factory=dict)  # the other end of each user's call
    settled: dict[str, Observation] = field(default_factory=dict)  # each user's call, once it settled
    # Each agent's ACS token: with the app's token refresher (re-acquire, re-exchange) unless the app under
    # test has none (`token_refresher=False`: the static token the token scenario must catch).
    credentials: dict[str, TokenCredential] = field(default_factory=dict)
    token_refresher: bool = True

    def _driver(self) -> CallingDriver:
        if self.driver is None:
            try:
                self.driver = driver_for(self.tenant, sleep=self.sleep, sdk_cassette=self.sdk_cassette)
            except DriverUnavailable as err:
                raise MissingPrerequisite(str(err)) from None
        return self.driver

    def close(self) -> None:
        """Dispose of the agents and the driver (idempotent: the plugin may close it inside the cassette)."""
        agents, self.agents = self.agents, {}
        driver, self.driver = self.driver, None
        try:
            for agent in agents.values():
                with contextlib.suppress(Exception):  # one agent's failure must not keep the rest open
                    agent.dispose()
        finally:
            if driver is not None:
                driver.close()

    # -- agents ------------------------------------------------------------------------------------

    def agent(self, alias: str) -> Observation:
        """Sign `alias` in, exchange the token, create a TeamsCallAgent."""
        self.subject = self.subject or alias
        if self.blocked:  # an earlier user's chain was rejected: that rejection is the scenario's answer
            return self.blocking
        driver = self._driver()
        identity = self.identities.setdefault(alias, IdentityFlow(self.tenant))
        identity.sign_in_with_password(alias, contract.TEAMS_SCOPES)
        exchanged = identity.exchange_token()
        if exchanged.outcome == "rejected":
            return self._record(exchanged)
        assert identity.exchange is not None and identity.exchange.token
        return self._create_agent(alias, driver, self._credential(alias, str(identity.exchange.token)))

    def _credential(self, alias: str, token: str) -> TokenCredential:
        """The credential an app builds for its agent: the token and, unless the app has none, a refresher
        that signs the user in again silently and exchanges the new Entra token."""
        return TokenCredential(token, (lambda: self._renew(alias)) if self.token_refresher else None)

    def _renew(self, alias: str) -> str | None:
        identity = self.identities[alias]
        token = identity.renew(alias)
        if token is None:  # Entra or ACS refused the renewal: that refusal is what the scenario meets
            self._record(identity.last)
        return token

    def _create_agent(self, alias: str, driver: CallingDriver, credential: TokenCredential | str) -> Observation:
        try:
            self.agents[alias] = driver.create_teams_call_agent(credential)
            if isinstance(credential, TokenCredential):
                self.credentials[alias] = credential
        except CallingCommunicationError as err:
            return self._record(error_observation("create agent", err))
        evidence = {"agent": "TeamsCallAgent", **getattr(self.agents[alias], "evidence", {})}
        return self._record(Observation("allowed", "create agent", evidence=evidence))

    def agent_from_acs_user_token(self, alias: str) -> Observation:
        """createTeamsCallAgent with an ACS user's token (not a Teams user's)."""
        self.subject = self.subject or alias
        identity = self.identities.setdefault(alias, IdentityFlow(self.tenant))
        created = identity.create_acs_user()
        if created.outcome == "rejected":
            return self._record(created)
        assert identity.acs_user is not None and identity.acs_user.token
        return self._create_agent(alias, self._driver(), str(identity.acs_user.token))

    def _oid(self, alias: str) -> str:
        identity = self.identities.get(alias)
        if identity and identity.sign_in and identity.sign_in.oid:
            return identity.sign_in.oid
        user = self.tenant.user(alias)
        if user.oid:
            return user.oid
        raise MissingPrerequisite(f"profile {self.tenant.profile!r} gives no object id for {alias!r}")

    # -- outgoing calls and joins ------------------------------------------------------------------

    def _settle(self, stage: str, alias: str, start: Callable[[], Call]) -> Observation:
        if self.blocked:
            return self.blocking
        try:
            call = start()
        except CallingCommunicationError as err:
            return self._record(error_observation(stage, err))
        self.calls[alias] = call
        self.settled[alias] = self._record(call_observation(stage, call.wait_until()))
        return self.settled[alias]

    def call_teams_user(self, caller: str, callee: str) -> Observation:
        target = TeamsUser(self._oid(callee))
        return self._settle("start call", caller, lambda: self.agents[caller].start_call(target))

    def call_phone(self, caller: str, role: str = "outbound") -> Observation:
        target = PhoneNumber(self.tenant.phone_number(role))
        return self._settle("start call", caller, lambda: self.agents[caller].start_call(target))

    def ring(self, caller: str, callee: str) -> Observation:
        """`caller` calls `callee`, who has an agent: the call rings there (it does not settle yet:
        this observation is setup; the call is judged once it settles, `connected_call`)."""
        if self.blocked:
            return self.blocking
        target = TeamsUser(self._oid(callee))
        self.expected_callers[callee] = teams_user_raw_id(self._oid(caller))
        self.peers[caller], self.peers[callee] = callee, caller
        try:
            self.calls[caller] = self.agents[caller].start_call(target)
        except CallingCommunicationError as err:
            return self._record(error_observation("start call", err))
        return self._record(Observation("allowed", "start call", evidence={"state": self.calls[caller].view().state}))

    def phone_dials(self, callee: str) -> Observation:
        network = self._driver().phone_network()
        if network is None:
            return self._dial_through_a_teams_phone_user(callee)
        number = self.tenant.phone_number("inbound_caller")
        self.expected_callers[callee] = wire_calling.phone_raw_id(number)
        network.dial(number, TeamsUser(self._oid(callee)))
        return self._record(Observation("allowed", "phone network dials", evidence={}))

    def _dial_through_a_teams_phone_user(self, callee: str) -> Observation:
        """Live: another user of the tenant with Teams Phone calls the callee's number over PSTN."""
        dialer = self.tenant.phone_dialer
        if not dialer or dialer == self.tenant.user(callee).alias:
            raise MissingPrerequisite(
                f"the {self._driver().name} calling driver has no phone network: map the role phone under [roles] to "
                f"another user with Teams Phone and [phone_numbers] inbound to {callee!r}'s direct number"
            )
        number = self.tenant.phone_number("inbound")
        if (observed := self.agent(dialer)).outcome == "rejected":
            return observed
        # Over the phone network the callee sees a phone number (which one is the dialer's line's).
        self.expected_callers[callee] = ANY_PHONE_NUMBER
        try:
            self.calls[f"{dialer} (dialing)"] = self.agents[dialer].start_call(PhoneNumber(number))
        except CallingCommunicationError as err:
            return self._record(error_observation("phone network dials", err))
        return self._record(Observation("allowed", "phone network dials", evidence={"dialer": "a Teams Phone user"}))

    def accept(self, callee: str, endpoint: str = FIRST_ENDPOINT) -> Observation:
        """`callee` accepts the call from whoever was to ring her (and no one else's), on `endpoint`. Her
        other endpoints ring too: each one's incoming call is kept first, to see how it ends there."""
        if self.blocked:
            return self.blocking
        expected = self.expected_callers.get(callee)
        for other in ENDPOINTS:
            key = self.endpoint(callee, other)
            if other == endpoint or key not in self.agents:
                continue
            ringing = self.agents[key].wait_for_incoming_call(timeout=INCOMING_WAIT_S, caller=expected)
            if ringing is None:
                return self._no_incoming_call(callee, expected, where=f" on her {other}")
            self.incoming[key] = ringing
        key = self.endpoint(callee, endpoint)
        incoming = self.agents[key].wait_for_incoming_call(timeout=INCOMING_WAIT_S, caller=expected)
        if incoming is None:
            return self._no_incoming_call(callee, expected)
        self.incoming[key] = incoming
        return self._settle("accept", key, incoming.accept)

    def reject(self, callee: str, caller: str, endpoints: tuple[str, ...] = (FIRST_ENDPOINT,)) -> Observation:
        """`callee` declines the call from `caller` on each of `endpoints`, in order; the caller's call is
        then judged once it settles."""
        if self.blocked:
            return self.blocking
        expected = self.expected_callers.get(callee) or teams_user_raw_id(self._oid(caller))
        declined = []
        for endpoint in endpoints:
            key = self.endpoint(callee, endpoint)
            incoming = self.agents[key].wait_for_incoming_call(timeout=INCOMING_WAIT_S, caller=expected)
            if incoming is None:
                return self._no_incoming_call(callee, expected, where=f" on her {endpoint}" if declined else "")
            incoming.reject()
            declined.append(endpoint)
        observed = self._record(call_observation("start call", self.calls[caller].wait_until()))
        if len(endpoints) > 1:
            observed.evidence["declined on"] = ", then ".join(f"{callee}'s {e}" for e in declined)
        return observed

    @staticmethod
    def endpoint(alias: str, endpoint: str) -> str:
        """The key of `alias`'s agent on `endpoint` (her first, the desktop, is keyed by her alias)."""
        return alias if endpoint == FIRST_ENDPOINT else f"{alias} ({endpoint})"

    def agents_on_endpoints(self, alias: str) -> Observation:
        """`alias` signed in to the app on each of her endpoints (desktop, mobile): each app exchanges its
        own ACS token and creates its own TeamsCallAgent, so that a call to her rings on every one."""
        observed = self.agent(alias)
        for endpoint in ENDPOINTS[1:]:
            if observed.outcome == "rejected":
                return observed
            identity = self.identities[alias]
            identity.exchange = None
            exchanged = identity.exchange_token()
            if exchanged.outcome == "rejected" or identity.exchange is None:
                return self._record(exchanged)
            key, token = self.endpoint(alias, endpoint), str(identity.exchange.token)
            observed = self._create_agent(key, self._driver(), self._credential(alias, token))
            observed.evidence["endpoint"] = endpoint
        return observed

    def answered_elsewhere(self, callee: str, endpoint: str) -> Observation:
        """How the call ended on `callee`'s `endpoint`, which neither accepted nor declined it: the
        callEndReason of its incoming call (TeamsIncomingCall `callEnded`), once it stopped ringing."""
        if self.blocked:
            return self.blocking
        key, stage = self.endpoint(callee, endpoint), f"on the {endpoint}"
        incoming = self.incoming.get(key)
        if incoming is None:
            raise MissingPrerequisite(f"the call never rang {callee}'s {endpoint}: nothing to see end there")
        end = incoming.wait_until_ended(timeout=INCOMING_WAIT_S)
        evidence: dict[str, object] = {}
        answered = next((e for e in ENDPOINTS if self.endpoint(callee, e) in self.settled), None)
        if answered is not None:
            evidence[f"{callee}'s {answered}"] = self.settled[self.endpoint(callee, answered)].evidence.get("states")
        if (caller := self.peers.get(callee)) in self.calls:
            view = self.calls[caller].view()
            evidence[f"{caller}'s call"] = " → ".join(view.state_history)
        if end is None:
            return self._record(
                Observation(
                    "allowed",
                    stage,
                    message=f"the call still rang on {callee}'s {endpoint} after {INCOMING_WAIT_S:.0f} s",
                    evidence=evidence,
                )
            )
        evidence["callEndReason"] = {"code": end.code, "subCode": end.sub_code}
        meaning, remedy = END_REASONS.get((end.code, end.sub_code), (None, None))
        return self._record(
            Observation(
                "rejected",
                stage,
                status=end.code,
                code=end.sub_code,
                message=f"the incoming call on {callee}'s {endpoint} ended",
                diagnosis=meaning,
                remedy=remedy or None,
                evidence=evidence,
            )
        )

    def connected_elsewhere(self, callee: str) -> dict[str, tuple[bool, str]]:
        """Checks for an answered-elsewhere scenario: the endpoint that accepted, and the caller, connected."""
        checks: dict[str, tuple[bool, str]] = {}
        for endpoint in ENDPOINTS:
            if (answered := self.settled.get(self.endpoint(callee, endpoint))) is not None:
                states = str(answered.evidence.get("states", answered.summary()))
                checks[f"{callee}'s {endpoint}, where she accepted,"] = ("Connected" in states.split(" → "), states)
        if (caller := self.peers.get(callee)) in self.calls:
            view = self.calls[caller].view()
            checks[f"{caller}'s call"] = (view.state == "Connected", " → ".join(view.state_history))
        return checks

    # -- a call that outlives the first ACS token ------------------------------------------------------

    def outlive_token(self, alias: str, max_wait_s: float) -> Observation | None:
        """`alias`'s call, settled (connected, before anything expires), then time passes until her ACS
        token has expired by the service's clock: the agents' time (the sandbox model's clock moves on; a
        live app waits, its SDK's timers running). Longer than `max_wait_s`: a SKIP naming the setting."""
        settled = self.connected_call()
        if settled is None or settled.outcome == "rejected":
            return settled  # the call did not connect: that is the scenario's answer
        credential = self.credentials.get(alias)
        if credential is None:
            raise MissingPrerequisite(f"{alias} has no ACS token credential: no Teams call agent was created")
        now = credential.server_time or time.time()
        self._driver().pass_time(token_wait(f"{alias}'s ACS token", credential.current.expires, now, max_wait_s))
        return settled

    def call_after_token_expiry(self, alias: str) -> Observation:
        """`alias`'s call once the ACS token it started with has expired: still connected, and an operation
        on it (unmute) succeeds; the service checks the token for both, so an app without a working token
        refresher is refused here (or, with the real SDK, sees the call end 495/4507)."""
        if self.blocked:
            return self.blocking
        stage, call = "after the ACS token expired", self.calls[alias]
        try:
            view = call.view()
            unmuted = call.unmute() if view.state == "Connected" else None
        except CallingCommunicationError as err:
            observed = self._record(error_observation(stage, err))
        else:
            observed = self._record(call_observation(stage, view))
            if unmuted is not None:
                observed.evidence["unmute"] = "succeeded" if unmuted.succeeded else f"failed ({unmuted.error})"
        if (before := self.settled.get(alias)) is not None:
            observed.evidence["before the token expired"] = before.evidence.get("states")
        if (credential := self.credentials.get(alias)) is not None:
            observed.evidence["ACS tokens"] = credential.describe()
            renewed = [f"{use.came_from}; signed in again and exchanged a new ACS token" for use in credential.uses[1:]]
            if renewed:
                observed.evidence["retries"] = renewed
        return observed

    def acs_token_renewed(self, alias: str) -> tuple[bool, str]:
        """A second ACS token, exchanged after the first expired (it expires later), is the one in use now:
        the one the service last accepted (sandbox model), or the one the SDK's credential gives (browser)."""
        credential = self.credentials.get(alias)
        expiries = credential.expiries if credential is not None else []
        try:
            in_use = self.agents[alias].token_in_use()
        except (CallingCommunicationError, KeyError):
            in_use = None
        renewed = len(expiries) >= 2 and (expiries[-1] or 0) > (expiries[0] or 0) and in_use == expiries[-1]
        listed = ", ".join(tokens.utc(e) for e in expiries) or "none"
        return renewed, f"ACS token expiries, in order: {listed}; in use now: {tokens.utc(in_use)}"

    def _no_incoming_call(self, callee: str, expected: str | None, where: str = "") -> Observation:
        """Nothing rang from the expected caller: say so, with how the caller's call stands (a caller's
        call that ended for want of Microsoft's services is a SKIP, raised by the driver)."""
        peer = self.peers.get(callee)
        evidence: dict[str, object] = {"expected caller": expected or "anyone"}
        call = self.calls.get(peer) if peer else None
        if call is not None:
            view = call.wait_until()  # settled: a live caller's call may take a while to give up
            end = f", {view.end_reason.code}/{view.end_reason.sub_code}" if view.end_reason else ""
            evidence["caller's call"] = f"{' → '.join(view.state_history) or view.state}{end}"
        who = peer or expected or "anyone"
        message = f"no incoming call from {who} arrived{where} within {INCOMING_WAIT_S:.0f} s"
        return self._record(Observation("rejected", "incoming call", message=message, evidence=evidence))

    def connected_call(self) -> Observation | None:
        """What "the call is allowed and connects" is judged on: the scenario's own user's call, once
        it settled. For a call she placed and the callee accepted (row 1), that is her call, observed
        after the accept: neither the ring (setup) nor the callee's side decides. A rejection on the
        way stands (the chain stopped there)."""
        if not self.observations:
            return None
        subject = self.subject
        if self.blocked:
            return self.blocking
        if subject is None:
            return self.last
        if subject in self.settled:
            return self.settled[subject]
        call = self.calls.get(subject)
        if call is None:
            return self.last
        observation = call_observation("start call", call.wait_until())
        peer = self.peers.get(subject)
        if peer in self.settled:
            observation.evidence["other end"] = f"{peer}: {self.settled[peer].evidence.get('states', '')}"
        self.settled[subject] = self._record(observation)
        return observation

    def locator(self, kind: str, by: str) -> Locator:
        meeting = self.tenant.meeting(kind)
        if by == "link":
            return MeetingLink(meeting.join_url)
        if by == "meeting id and passcode":
            if not meeting.meeting_id:
                raise MissingPrerequisite(f"profile {self.tenant.profile!r} has no meeting_id for the {kind} meeting")
            return MeetingId(meeting.meeting_id, meeting.passcode)
        if not (meeting.thread_id and meeting.organizer_id and meeting.tenant_id):
            raise MissingPrerequisite(f"profile {self.tenant.profile!r} has no coordinates for the {kind} meeting")
        return MeetingCoordinates(meeting.thread_id, meeting.organizer_id, meeting.tenant_id, meeting.message_id)

    def join(self, alias: str, locator: Locator) -> Observation:
        return self._settle("join", alias, lambda: self.agents[alias].join(locator))

    def join_personal_use_meeting(self, alias: str) -> Observation:
        return self.join(alias, MeetingLink(contract.PERSONAL_USE_MEETING_LINK))

    def join_group_call(self, alias: str) -> Observation:
        """An ACS CallAgent's group-call locator (any group id) given to a TeamsCallAgent."""
        return self.join(alias, GroupLocator(ANY_GROUP_ID))

    def ring_in_a_call(self, caller: str, callee: str, kind: str, thread_id: str | None = None) -> Observation:
        """`caller` starts a Teams 1:1 call to `callee`, or a group call on the group chat `thread_id`
        (the chat's third member is rung too); the callee's app rings."""
        if self.blocked:
            return self.blocking
        targets: list[TeamsUser] = [TeamsUser(self._oid(callee))]
        if kind == "group":
            if not thread_id:
                raise MissingPrerequisite("a Teams group call needs its chat's thread id; the group chat was not made")
            targets.append(TeamsUser(self._oid(THIRD_MEMBER)))
        self.expected_callers[callee] = teams_user_raw_id(self._oid(caller))
        self.peers[caller], self.peers[callee] = callee, caller
        try:
            self.calls[caller] = self.agents[caller].start_call(
                targets[0] if kind == "1:1" else targets, thread_id if kind == "group" else None
            )
        except CallingCommunicationError as err:
            return self._record(error_observation("start call", err))
        evidence = {"call": f"Teams {kind} call", "state": self.calls[caller].view().state}
        if thread_id:
            evidence["thread"] = "the group chat's thread"
        return self._record(Observation("allowed", "start call", evidence=evidence))

    def join_ringing_call_by_id(self, alias: str) -> Observation:
        """Row 10 as the SDK receives such a call: it rings `alias`'s app (a TeamsIncomingCall with
        its id); instead of accepting, the app joins the call by that id, with the only locator that
        names a call (`{groupId}`). A TeamsCallAgent has no locator for a Teams 1:1 or group call."""
        if self.blocked:
            return self.blocking
        expected = self.expected_callers.get(alias)
        incoming = self.agents[alias].wait_for_incoming_call(timeout=INCOMING_WAIT_S, caller=expected)
        if incoming is None:
            raise MissingPrerequisite(
                f"the call to join never rang {alias}'s app: {self._no_incoming_call(alias, expected).message}"
            )
        self.incoming[alias] = incoming
        observed = self.join(alias, GroupLocator(incoming.id))
        peer = self.peers.get(alias)
        caller_call = self.calls.get(peer) if peer else None
        ringing = " → ".join(caller_call.view().state_history) if caller_call else "?"
        observed.evidence["joined"] = f"the call ringing her app, by its id (the caller's call: {ringing})"
        return observed

    # -- in a call ---------------------------------------------------------------------------------

    def try_restricted_actions(self, alias: str) -> dict[str, bool]:
        """Unmute, start video, share screen: which succeed. The webinar caveat (footnote [1]) names
        all three as actions not intended for attendees, so each one is weighed: the caveat shows
        when any of them succeeds for an Attendee, and is not observed only when all three were
        refused. Each action's result goes into the evidence."""
        call = self.calls[alias]
        results = {name: getattr(call, name)() for name in RESTRICTED_ACTIONS}
        self.actions = {name: result.succeeded for name, result in results.items()}
        observation = self.last
        observation.evidence["restricted_actions"] = {
            name: ("succeeded" if r.succeeded else f"blocked ({r.error})") for name, r in results.items()
        }
        view = call.view()
        observation.evidence["capabilities"] = {
            name: f"{'present' if c.is_present else 'absent'} ({c.reason})"
            for name, c in view.capabilities.items()
            if name in ("unmuteMic", "turnVideoOn", "shareScreen")
        }
        # An attendee's role withholds all three in a webinar (the footnote; docs/contracts/calling.md §6).
        restricted = list(RESTRICTED_ACTIONS) if view.role == "Attendee" else []
        observation.evidence["role_restricts"] = restricted
        succeeded = [name for name in restricted if self.actions[name]]
        refused = [name for name in restricted if not self.actions[name]]
        if not restricted:
            weighed = f"role {view.role}: no attendee-restricted action to weigh"
        elif succeeded:
            weighed = f"as {view.role}: {', '.join(succeeded)} succeeded" + (
                f"; {', '.join(refused)} refused" if refused else ""
            )
        else:
            weighed = f"as {view.role}: all refused ({', '.join(refused)})"
        observation.evidence["caveat"] = weighed
        observation.caveat_detail = weighed
        observation.caveat_confirmed = bool(succeeded)
        return self.actions

    def role(self, alias: str) -> str:
        return self.calls[alias].view().role

    def capability(self, alias: str, name: str) -> tuple[bool, str]:
        """Present, and why; a capability the SDK did not report makes the observation inconclusive."""
        capability = self.calls[alias].view().capabilities.get(name)
        if capability is None:
            raise MissingPrerequisite(
                f"the {self._driver().name} calling driver reported no {name} capability for {alias}'s call: "
                "whether it is restricted cannot be told"
            )
        return capability.is_present, capability.reason

    def try_action(self, alias: str, action: str) -> bool:
        """unmute | start_video | start_screen_sharing: did it succeed?"""
        return getattr(self.calls[alias], action)().succeeded

    def admit(self, organizer: str, attendee: str) -> Observation:
        """The organizer admits the attendee from the lobby (lobby.admit), then the attendee's call settles."""
        identifier = wire_calling.teams_user_raw_id(self._oid(attendee))
        try:
            waiting = self.calls[organizer].lobby_participants()
            if identifier not in waiting:
                return self._record(Observation("rejected", "admit", message=f"{attendee} is not in the lobby"))
            self.calls[organizer].admit(identifier)
        except CallingCommunicationError as err:
            return self._record(error_observation("admit", err))
        view = self.calls[attendee].wait_until(frozenset({"Connected", "Disconnected"}))
        return self._record(call_observation("admit", view))

    def _teams_client(self):  # type: ignore[no-untyped-def]
        client = self._driver().teams_client()
        if client is None:
            raise MissingPrerequisite(
                "changing meeting options or roles needs the organizer in Teams; the "
                f"{self._driver().name} driver cannot act for them"
            )
        return client

    def organizer_sets_option(self, meeting: str, **options: bool) -> None:
        client, thread = self._teams_client(), self._thread(meeting)
        previous = client.set_meeting_options(thread, **options)
        names = {"attendeeMic": "attendee_mic", "attendeeCamera": "attendee_camera"}
        self._later(lambda: client.set_meeting_options(thread, **{names[k]: v for k, v in previous.items()}))

    def organizer_promotes(self, meeting: str, alias: str) -> None:
        client, thread, user = self._teams_client(), self._thread(meeting), TeamsUser(self._oid(alias))
        client.promote(thread, user)
        self._later(lambda: client.demote(thread, user))

    def admin_sets_screen_sharing(self, alias: str, allowed: bool) -> None:
        client, user = self._teams_client(), TeamsUser(self._oid(alias))
        previous = client.set_user_screen_sharing(user, allowed)
        self._later(lambda: client.set_user_screen_sharing(user, previous))

    def _later(self, undo: Callable[[], object]) -> None:
        if self.on_cleanup is not None:
            self.on_cleanup(undo)

    def _thread(self, meeting: str) -> str:
        thread = self.tenant.meeting(meeting).thread_id
        if not thread:
            raise MissingPrerequisite(f"profile {self.tenant.profile!r} gives no thread id for the {meeting} meeting")
        return thread

    def lobby_observation(self, alias: str) -> Observation:
        """Held in the lobby (the option enforced) or let straight in (not enforced)."""
        if self.blocked:
            return self.blocking
        view = self.calls[alias].view()
        if view.state == "InLobby":
            return Observation(
                "rejected",
                "lobby",
                message="held in the lobby",
                request_id=view.request_id,
                evidence={"states": " → ".join(view.state_history)},
            )
        return Observation(
            "allowed",
            "lobby",
            message=f"joined without waiting ({view.state})",
            evidence={"states": " → ".join(view.state_history)},
        )

    def restriction_observation(self, alias: str, capability: str, reason: str, action: str) -> Observation:
        """The capability is absent for `reason` and the action fails (enforced), or not."""
        if self.blocked:
            return self.blocking
        present, actual = self.capability(alias, capability)
        succeeded = self.try_action(alias, action)
        evidence = {
            "capability": f"{capability}: {'present' if present else 'absent'} ({actual})",
            "action": f"{action}: {'succeeded' if succeeded else 'failed'}",
        }
        if not present and actual == reason and not succeeded:
            return Observation("rejected", "in the meeting", code=actual, message=f"{action} failed", evidence=evidence)
        return Observation(
            "allowed",
            "in the meeting",
            message=f"{capability} {actual}, {action} {'succeeded' if succeeded else 'failed'}",
            evidence=evidence,
        )

    def changed_to(self, alias: str, capability: str, reason: str, *, present: bool) -> tuple[str, bool, str]:
        """A check: the latest capabilitiesChanged with `reason` set `capability` to present/absent."""
        changes = self.capability_changes(alias)
        hits = [c for r, c in changes if r == reason and capability in c]
        ok = bool(hits) and hits[-1][capability][0] is present
        want = "present" if present else "absent"
        seen = [
            f"{r}: {capability} {'present' if c[capability][0] else 'absent'} ({c[capability][1]})"
            for r, c in changes
            if capability in c
        ]
        detail = "; ".join(seen) if seen else f"no capabilitiesChanged touched {capability}"
        return f"{capability} {want} after capabilitiesChanged {reason}", ok, detail

    def describe_capability_changes(self, alias: str) -> list[str]:
        """Each capabilitiesChanged as a person reads it: `reason: capability present (why), ...`."""
        return [
            f"{reason}: "
            + ", ".join(
                f"{name} {'present' if is_present else 'absent'} ({why})"
                for name, (is_present, why) in sorted(changed.items())
            )
            for reason, changed in self.capability_changes(alias)
        ]

    def capability_changes(self, alias: str) -> list[tuple[str, dict[str, tuple[bool, str]]]]:
        return [
            (c.reason, {k: (v.is_present, v.reason) for k, v in c.changed.items()})
            for c in self.calls[alias].view().capability_changes
        ]

    def call_external(self, caller: str, oid: str) -> Observation:
        return self._settle("start call", caller, lambda: self.agents[caller].start_call(TeamsUser(oid)))
