"""The sandbox calling model: what the ACS calling service (and the Calling SDK's own checks) decide
for a Teams user's TeamsCallAgent, reachable over HTTP so that recordings hold it.

This HTTP API is the emulator's own (Microsoft's calling signalling is not a public REST API); its
host is `calling.cte-sandbox.invalid`. Decisions follow facts in the tenant model, never the table:

- agent: the ACS token must be a Teams-user token (an ACS-user token -> 403/40231) carrying voip
  (else 401/44113): the Calling SDK's own checks (docs/contracts/calling.md §2, bundle catalogue);
- start a call to a Teams user: ring their registered agents (the call rings until one of them
  accepts or rejects it, even when the user's own Teams client would answer), else their Teams
  client if it is online and answers; nobody reachable -> Disconnected 480/10037 (call-end.md);
  a group call (several targets and a chat's thread id) rings every target's agents;
- call a phone number: the caller needs Enterprise Voice (else 412/41056) and an E.164 number;
- join: a teams.live.com link -> 400/40238, a malformed link -> 400/40210, a group-call locator
  -> 400/40209 (synchronous SDK checks, reproduced with the real SDK); a live event -> rejected with
  an emulator-defined end reason (Microsoft documents none); a webinar admits the Teams user as an
  Attendee whose restricted actions still succeed (the documented caveat; the capability values the
  service reports there are unverified, so they are emulator-defined);
- incoming calls from another agent or from the emulator's phone network, ringing every agent of the
  callee (her endpoints: desktop, mobile); accept -> Connected, and each other endpoint of hers ends
  487/10003 (accepted elsewhere); reject -> the caller's call ends 603/0 (declined), or, once every
  endpoint of a callee with several declined, 487/10024 (which side sees it is emulator-defined);
- an expired ACS token is refused 401/10009 on every request (emulator-defined: the model's own API).

Everything advances synchronously with requests (no timers), so recordings are reproducible.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.sandbox.calling_state import Agent, Call, CallingState, Incoming
from harness.sandbox.context import SandboxContext, emulator_defined, json_object
from harness.sandbox.state import Meeting, Tenant, User
from harness.wire import calling as api
from harness.wire import contract

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SHORT_LINK = re.compile(r"/meet/([^/?]+)(\?p=([^/?]+))?$")  # the SDK's ECS regex (docs/contracts/calling.md §2)
LONG_LINK = re.compile(r"/l/meetup-join/([^/]+)/([^/?]+)\?context=(.+)$")
LIVE_EVENT_END = (403, 0)  # emulator-defined: no documented code for a live event
# call-end.md, 10009/401, word for word.
EXPIRED_TOKEN = (
    "Unauthenticated identity. Ensure that your Azure Communication Services token is valid and not expired."
)
# What a caller's call ends with when the callee declines (call-end.md lists subcode, then code: 0 | 603),
# and when a callee with several endpoints is answered or declined on them (docs/contracts/calling.md §2).
DECLINED = (603, 0)
ACCEPTED_ELSEWHERE = (487, 10003)  # every other endpoint of the user who accepted
DECLINED_BY_ALL = (487, 10024)  # the caller's call, once every endpoint of the callee declined
PERSONAL_USE_HOSTS = ("teams.live.com",)
MEETING_CAPABILITIES = (
    api.UNMUTE_MIC,
    api.TURN_VIDEO_ON,
    api.SHARE_SCREEN,
    "removeParticipant",
    "hangUpForEveryOne",
    "addTeamsUser",
    "addPhoneNumber",
    "manageLobby",
    "spotlightParticipant",
    "raiseHand",
)
# An attendee may unmute, turn the camera on and raise a hand; the rest is for organizers and presenters.
ATTENDEE_RESTRICTED = set(MEETING_CAPABILITIES) - {api.UNMUTE_MIC, api.TURN_VIDEO_ON, "raiseHand"}
# A webinar that honoured roles would also withhold these from an attendee: footnote [1] names
# unmuting and the camera beside screen sharing as actions not intended for attendees.
WEBINAR_ATTENDEE_RESTRICTED = ATTENDEE_RESTRICTED | {api.UNMUTE_MIC, api.TURN_VIDEO_ON}


# In sandbox mode the calling rows are decided by this model, not by Microsoft's calling service:
# every call and every locator check says so (emulator-defined), naming what decides it. Where a
# tenant flag decides, its default restates the source table; only `--calling browser` (the real
# Calling SDK beside this model) or a live tenant turns such a row into an observation of Microsoft.
MODEL = "the sandbox's calling model (an HTTP API of its own; Microsoft's calling service is not recorded)"
DECIDED_BY = {
    "call": f"{MODEL} connects or ends this call",
    "meeting": f"{MODEL} admits the Teams user to this meeting",
    "live-event": (
        "Microsoft documents no rejection for a Teams user joining a live event: the tenant flag "
        "admits_teams_users_to_live_events=False, which restates row 8, ends the join"
    ),
    "webinar": (
        "roles are not honoured for Teams users in webinars (documented); the tenant flag "
        "honours_webinar_roles=False restates it, and the capability values the service reports are unverified"
    ),
    "personal-use": (
        "the model's copy of the Calling SDK's client-side 40238, switched by the tenant flag "
        "refuses_personal_use_links=True (restates row 9); --calling browser checks it against the SDK itself"
    ),
    "locator": (
        "the model's copy of the Calling SDK's client-side 40209 (reproduced on 2.0.0); --calling browser checks it "
        "against the SDK itself"
    ),
    "expired-token": (
        "how the calling service refuses an expired ACS token on this model's own API: 401 with the subcode of "
        "Microsoft's call-end table for it (10009/401); the Calling SDK refreshes its token before then"
    ),
    "declined-by-all": (
        "Microsoft's call-end table lists 10024/487 and 5003/0 for a call every callee endpoint declined without "
        "saying which party sees which: the model ends the caller's call with 487/10024 (code 487, as for 10003 "
        "and 10004, the timeout Microsoft's UI library reads on the caller's side) once the last endpoint declined"
    ),
}


class CallingError(Exception):
    """A CallingCommunicationError: code (an HTTP-like status) and subCode."""

    def __init__(self, code: int, sub_code: int, message: str, *, emulated: str = "") -> None:
        super().__init__(message)
        self.code, self.sub_code, self.message, self.emulated = code, sub_code, message, emulated


def capabilities_for(
    role: str, *, honour_roles: bool, meeting: Meeting | None = None, user: User | None = None
) -> dict[str, dict[str, Any]]:
    """Meeting capabilities for a role and the meeting's options. In a webinar roles (and with them
    the attendee options) are not honoured for Teams users."""
    result = {}
    webinar = meeting is not None and meeting.kind == "webinar"
    for name in MEETING_CAPABILITIES:
        reason = "Capable"
        if honour_roles and role == "Attendee":
            if name in (WEBINAR_ATTENDEE_RESTRICTED if webinar else ATTENDEE_RESTRICTED):
                reason = "RoleRestricted"
            elif meeting is not None and (
                (name == api.UNMUTE_MIC and not meeting.attendee_mic)
                or (name == api.TURN_VIDEO_ON and not meeting.attendee_camera)
            ):
                reason = "MeetingRestricted"  # "Teams meeting option blocks the action" (capabilities.md)
        if reason == "Capable" and user is not None and name == api.SHARE_SCREEN and not user.screen_sharing:
            reason = "UserPolicyRestricted"  # the user's meeting policy, whatever the role
        result[name] = {api.IS_PRESENT: reason == "Capable", api.REASON: reason}
    return result


class Calling:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    @property
    def state(self) -> CallingState:
        return self.ctx.calling

    def routes(self) -> list[Route]:
        return [
            Route(f"{api.VERSION}/{path}", endpoint, methods=[method])
            for method, path, endpoint in (
                ("POST", api.AGENTS, self.create_agent),
                ("POST", api.AGENT_CALLS, self.start),
                ("GET", api.AGENT_INCOMING_CALLS, self.list_incoming),
                ("GET", api.CALL, self.get_call),
                ("POST", api.CALL_HANG_UP, self.hang_up),
                ("POST", api.CALL_ACTIONS, self.action),
                ("GET", api.INCOMING_CALL, self.get_incoming),
                ("POST", api.INCOMING_ACCEPT, self.accept),
                ("POST", api.INCOMING_REJECT, self.reject),
                ("POST", api.PHONE_NETWORK_CALLS, self.phone_network_call),
                ("GET", api.CALL_LOBBY, self.lobby),
                ("POST", api.CALL_LOBBY_ADMIT, self.admit),
                ("POST", api.MEETING_OPTIONS, self.organizer_sets_options),
                ("POST", api.MEETING_PROMOTE, self.organizer_promotes),
                ("POST", api.MEETING_DEMOTE, self.organizer_demotes),
                ("POST", api.USER_POLICIES, self.admin_sets_user_policy),
            )
        ]

    # -- plumbing ----------------------------------------------------------------------------------

    def _json(self, body: Any, status: int = 200, emulated: str = "") -> JSONResponse:
        response = JSONResponse(
            body, status_code=status, headers={contract.REQUEST_ID_HEADER: self.ctx.ids.next("calling")}
        )
        return emulator_defined(response, emulated) if emulated else response

    def _error(self, err: CallingError) -> JSONResponse:
        body = {api.ERROR: api.error_detail(err.code, err.sub_code, err.message)}
        return self._json(body, err.code, err.emulated)

    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        body = json_object(raw) if raw else {}
        if body is None:
            raise CallingError(400, 0, "The request body is not a JSON object.", emulated="malformed request body")
        return body

    def _agent(self, request: Request) -> Agent:
        """The agent named in the path, owned by the bearer of the token."""
        caller = self._token_user(request)
        agent = self.state.agents.get(request.path_params["agent"])
        if agent is None or agent.oid != caller[1].oid:
            raise CallingError(404, 0, "Unknown call agent.", emulated="unknown or foreign agent id")
        return agent

    def _token_user(self, request: Request) -> tuple[Tenant, User]:
        claims = self._claims(request)
        tenant = self.ctx.directory.tenant(str(claims.get("tid", "")))
        oid = str(claims.get("skypeid", "")).removeprefix("orgid:")
        user = tenant.user_by_oid(oid) if tenant else None
        if tenant is None or user is None:
            raise CallingError(403, 40231, "TeamsCallAgent must be created only with Teams token")
        return tenant, user

    def _claims(self, request: Request) -> dict[str, Any]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise CallingError(401, 0, "An ACS access token is required.", emulated="missing token")
        try:
            claims = self.ctx.acs_signer.verify(token.strip())
        except jwt.InvalidTokenError:
            raise CallingError(401, 0, "The access token is not valid.", emulated="a token ACS did not issue") from None
        if int(claims.get("exp", 0)) <= self.ctx.epoch():
            raise CallingError(401, api.UNAUTHENTICATED, EXPIRED_TOKEN, emulated=DECIDED_BY["expired-token"])
        return claims

    def _call(self, request: Request) -> Call:
        tenant, user = self._token_user(request)
        call = self.state.calls.get(request.path_params["call"])
        agent = self.state.agents.get(call.agent or "") if call else None
        if call is None or agent is None or agent.oid != user.oid:
            raise CallingError(404, 0, "Unknown call.", emulated="unknown or foreign call id")
        return call

    def snapshot(self, call: Call) -> dict[str, Any]:
        end = {api.CODE: call.end_reason[0], api.SUB_CODE: call.end_reason[1]} if call.end_reason else None
        return {
            api.ID: call.id,
            api.DIRECTION: call.direction,
            api.STATE: call.state,
            api.STATE_HISTORY: list(call.history),
            api.CALL_END_REASON: end,
            api.ROLE: call.role,
            api.CAPABILITIES: call.capabilities,
            api.MEETING_KIND: call.meeting_kind,
            api.CAPABILITY_CHANGES: call.capability_changes,
            api.REMOTE_PARTICIPANT: call.peer,
            api.EMULATOR_DEFINED: call.emulated or None,
        }

    def _respond_call(self, call: Call, status: int = 200) -> JSONResponse:
        return self._json(self.snapshot(call), status, call.emulated)

    # -- agents ------------------------------------------------------------------------------------

    async def create_agent(self, request: Request) -> Response:
        try:
            claims = self._claims(request)
            scopes = str(claims.get("acsScope", "")).split(",")
            if not {"voip", "voip.join"} & set(scopes):
                raise CallingError(401, 44113, "AccessToken does not contain 'voip' or 'voip.join' scope")
            if not claims.get("tid"):
                raise CallingError(403, 40231, "TeamsCallAgent must be created only with Teams token")
            tenant, user = self._token_user(request)
        except CallingError as err:
            return self._error(err)
        agent = Agent(self.ctx.ids.next("agent"), tenant.name, user.oid)
        with self.ctx.lock:
            self.state.agents[agent.id] = agent
        answer = {
            api.AGENT_ID: agent.id,
            api.AGENT_KIND: api.TEAMS_CALL_AGENT,
            api.AGENT_IDENTITY: api.teams_user_raw_id(user.oid),
        }
        return self._json(answer, 201)

    # -- starting and joining ----------------------------------------------------------------------

    async def start(self, request: Request) -> Response:
        try:
            agent = self._agent(request)
            body = await self._body(request)
            tenant = self.ctx.directory.tenants[agent.tenant]
            user = tenant.user_by_oid(agent.oid)
            assert user is not None
            if body.get(api.OPERATION) == api.JOIN:
                call = self._join(agent, tenant, user, body.get(api.LOCATOR))
            elif body.get(api.OPERATION) == api.START_CALL:
                call = self._start_call(agent, tenant, user, body.get(api.TARGETS), body.get(api.THREAD_ID))
            else:
                raise CallingError(400, 0, "operation must be startCall or join.", emulated="unknown operation")
        except CallingError as err:
            return self._error(err)
        return self._respond_call(call, 201)

    def _new_call(self, agent: str | None, direction: str, peer: str) -> Call:
        call = Call(self.ctx.ids.next("call"), agent, direction, peer, emulated=DECIDED_BY["call"])
        self.state.calls[call.id] = call
        return call

    def _start_call(self, agent: Agent, tenant: Tenant, user: User, targets: Any, thread_id: Any) -> Call:
        if not isinstance(targets, list) or not targets or not all(isinstance(t, dict) for t in targets):
            raise CallingError(400, 0, "startCall needs at least one target.", emulated="empty target list")
        if len(targets) > 1 and not thread_id:
            raise CallingError(
                400,
                40212,
                "Starting a group call must include thread ID in StartTeamsGroupCallOptions.",
                emulated="the SDK's catalogue has 40212, but offline the real SDK did not throw it synchronously",
            )
        if len(targets) > 1:
            return self._group_call(agent, tenant, targets, str(thread_id))
        target = targets[0]
        with self.ctx.lock:
            if isinstance(target.get(api.PHONE_NUMBER), str):
                return self._call_phone(agent, user, target[api.PHONE_NUMBER])
            if isinstance(target.get(api.TEAMS_USER_ID), str):
                return self._call_teams_user(agent, tenant, target[api.TEAMS_USER_ID])
        raise CallingError(400, 40236, "Unsupported target participant type in ACS-Teams call")

    def _call_phone(self, agent: Agent, user: User, number: str) -> Call:
        if not user.enterprise_voice:
            raise CallingError(
                412,
                41056,
                "Failed to start a call: Teams Enterprise voice policy is not enabled "
                "for this Azure Communication Services resource.",
            )
        if not E164.match(number):
            raise CallingError(
                400,
                0,
                f"'{number}' is not an E.164 phone number.",
                emulated="the error for a malformed phone number is not documented",
            )
        call = self._new_call(agent.id, "Outgoing", api.phone_raw_id(number))
        call.move("Connecting", "EarlyMedia", "Ringing", "Connected")  # the phone network answers
        return call

    def _call_teams_user(self, agent: Agent, tenant: Tenant, oid: str) -> Call:
        call = self._new_call(agent.id, "Outgoing", api.teams_user_raw_id(oid))
        call.move("Connecting")
        caller = tenant.user_by_oid(agent.oid)
        if caller is not None and not caller.private_calls:
            call.end(403, 0)
            call.emulated = "the end reason when the calling policy turns private calls off is not documented"
            return call
        callee_tenant = next(
            (t for t in self.ctx.directory.tenants.values() if t.name == tenant.name and t.user_by_oid(oid)), None
        ) or next((t for t in self.ctx.directory.tenants.values() if t.user_by_oid(oid)), None)
        callee = callee_tenant.user_by_oid(oid) if callee_tenant else None
        if callee is None:
            call.end(404, 0)
            call.emulated = "the end reason for an unknown Teams user is not documented"
            return call
        if callee_tenant is not None and callee_tenant.name != tenant.name:
            if callee_tenant.domain in tenant.blocked_domains or tenant.domain in callee_tenant.blocked_domains:
                call.end(403, 10124)  # "permissionToReachTargetParticipantNotAllowed" (communication-ui-library)
                call.emulated = (
                    "external access blocked: the UI library maps subCode 10124; the status is not documented"
                )
                return call
            tenant = callee_tenant
        if self._ring(tenant, callee, api.teams_user_raw_id(agent.oid), call):
            return call  # her app rings: it connects when her agent accepts, not by itself
        if callee.teams_client == "answers":
            call.move("Ringing", "Connected")
            return call
        call.move("Ringing")
        call.end(480, 10037)  # "Target user didn't have any endpoints registered"
        return call

    def _group_call(self, agent: Agent, tenant: Tenant, targets: list[dict[str, Any]], thread_id: str) -> Call:
        """A group call on a chat's thread: every Teams-user target's agents ring (the first to accept
        connects it); with none, a target's Teams client that answers connects it; else 480/10037."""
        with self.ctx.lock:
            call = self._new_call(agent.id, "Outgoing", thread_id)
            call.move("Connecting")
            rang = answers = False
            for target in targets:
                callee = tenant.user_by_oid(str(target.get(api.TEAMS_USER_ID, "")))
                if callee is not None:
                    rang = self._ring(tenant, callee, api.teams_user_raw_id(agent.oid), call) or rang
                    answers = answers or callee.teams_client == "answers"
            if rang:
                return call
            call.move("Ringing")
            if answers:
                call.move("Connected")
            else:
                call.end(480, 10037)
            return call

    def _ring(self, tenant: Tenant, callee: User, caller: str, caller_call: Call | None) -> bool:
        """Offer the call to every agent the callee has registered; True if there was one."""
        agents = [a for a in self.state.agents.values() if a.tenant == tenant.name and a.oid == callee.oid]
        for target in agents:
            incoming = Incoming(
                self.ctx.ids.next("incoming"), target.id, caller, caller_call.id if caller_call else None
            )
            self.state.incoming[incoming.id] = incoming
        if agents and caller_call is not None and caller_call.state != "Ringing":
            caller_call.move("Ringing")
        return bool(agents)

    def _join(self, agent: Agent, tenant: Tenant, user: User, locator: Any) -> Call:
        meeting = self._meeting_for(tenant, locator)
        with self.ctx.lock:
            call = self._new_call(agent.id, "Outgoing", "meeting")
            call.move("Connecting")
            if meeting is None:
                call.end(404, 0)  # "Call not found. Ensure that ... (or call you're joining) exists."
                return call
            call.meeting_kind = meeting.kind
            if meeting.kind == "live-event" and not tenant.admits_teams_users_to_live_events:
                call.end(*LIVE_EVENT_END)
                call.emulated = DECIDED_BY["live-event"]
                return call
            call.meeting, call.member = meeting.id, api.teams_user_raw_id(user.oid)
            call.role = self._role(meeting, user)
            webinar = meeting.kind == "webinar"
            honour = not webinar or tenant.honours_webinar_roles
            call.capabilities = capabilities_for(call.role, honour_roles=honour, meeting=meeting, user=user)
            if meeting.lobby_bypass == "organizer" and call.role != "Organizer" and tenant.enforces_lobby:
                call.move("InLobby")  # waits until an organizer or presenter admits it
                return call
            call.emulated = DECIDED_BY["webinar" if webinar else "meeting"]
            call.move("Connected")
        return call

    @staticmethod
    def _role(meeting: Meeting, user: User) -> str:
        if user.oid == meeting.organizer:
            return "Organizer"
        if user.oid in meeting.presenters or user.oid in meeting.promoted:
            return "Presenter"
        if meeting.kind == "webinar" or meeting.who_can_present == "organizer":
            return "Attendee"
        return "Presenter"  # Teams' default "who can present" admits organisation members as presenters

    def _meeting_for(self, tenant: Tenant, locator: Any) -> Meeting | None:
        """The meeting a locator names; the SDK's synchronous locator checks raise first."""
        if not isinstance(locator, dict):
            raise CallingError(400, 40209, "Invalid join locator specified.", emulated=DECIDED_BY["locator"])
        meetings = list(tenant.meetings.values())
        if api.MEETING_LINK in locator:
            link = str(locator[api.MEETING_LINK])
            if tenant.refuses_personal_use_links and any(host in link.lower() for host in PERSONAL_USE_HOSTS):
                raise CallingError(
                    400, 40238, "Joining a Teams for life meeting is not supported", emulated=DECIDED_BY["personal-use"]
                )
            if long := LONG_LINK.search(link):
                thread = urllib.parse.unquote(long.group(1))
                return next((m for m in meetings if m.thread_id == thread), None)
            if short := SHORT_LINK.search(link):
                return next(
                    (
                        m
                        for m in meetings
                        if m.meeting_code == short.group(1) and (short.group(3) or "") == (m.passcode or "")
                    ),
                    None,
                )
            raise CallingError(400, 40210, "The provided Teams meeting link is invalid.")
        if api.MEETING_ID in locator:
            code = str(locator[api.MEETING_ID]).replace(" ", "")
            return next(
                (
                    m
                    for m in meetings
                    if m.meeting_code == code and str(locator.get(api.PASSCODE, "")) == (m.passcode or "")
                ),
                None,
            )
        if set(api.MEETING_COORDINATES) <= locator.keys():
            thread, organizer = locator[api.THREAD_ID], locator[api.ORGANIZER_ID]
            return next((m for m in meetings if m.thread_id == thread and m.organizer == organizer), None)
        raise CallingError(400, 40209, "Invalid join locator specified.", emulated=DECIDED_BY["locator"])

    # -- during a call -----------------------------------------------------------------------------

    async def get_call(self, request: Request) -> Response:
        try:
            return self._respond_call(self._call(request))
        except CallingError as err:
            return self._error(err)

    async def hang_up(self, request: Request) -> Response:
        try:
            call = self._call(request)
        except CallingError as err:
            return self._error(err)
        with self.ctx.lock:
            call.end(0, 0)
            if call.linked and (other := self.state.calls.get(call.linked)):
                other.end(0, 0)
        return self._respond_call(call)

    async def action(self, request: Request) -> Response:
        """An attendee-restricted action (unmute, start video, share screen): does it succeed?"""
        try:
            call = self._call(request)
            action = (await self._body(request)).get(api.ACTION)
            if not isinstance(action, str) or action not in api.ACTIONS:
                raise CallingError(400, 0, f"Unknown action {action!r}.", emulated="unknown action")
        except CallingError as err:
            return self._error(err)
        if call.state != "Connected":
            documented = action == api.START_SCREEN_SHARING  # 41071 is documented for screen sharing only
            sub_code = 41071 if documented else 0
            error = api.error_detail(412, sub_code, f"{action} is only possible in a connected call.")
            return self._json({api.ACTION: action, api.SUCCEEDED: False, api.ERROR: error})
        capability = call.capabilities.get(api.ACTIONS[action], {api.IS_PRESENT: True, api.REASON: "Capable"})
        if capability[api.IS_PRESENT]:
            return self._json({api.ACTION: action, api.SUCCEEDED: True}, emulated=call.emulated)
        error = api.error_detail(403, 0, f"{action} is not allowed: {capability[api.REASON]}")
        return self._json(
            {api.ACTION: action, api.SUCCEEDED: False, api.ERROR: error}, emulated="the error for a blocked action"
        )

    # -- incoming calls ----------------------------------------------------------------------------

    async def list_incoming(self, request: Request) -> Response:
        try:
            agent = self._agent(request)
        except CallingError as err:
            return self._error(err)
        value = [
            {api.ID: i.id, api.CALLER_INFO: {api.IDENTIFIER: i.caller}, api.STATE: i.state}
            for i in self.state.incoming.values()
            if i.agent == agent.id and i.state == "Ringing"
        ]
        return self._json({api.VALUE: value})

    def _own_incoming(self, request: Request) -> Incoming:
        tenant, user = self._token_user(request)
        incoming = self.state.incoming.get(request.path_params["incoming"])
        agent = self.state.agents.get(incoming.agent) if incoming else None
        if incoming is None or agent is None or agent.oid != user.oid:
            raise CallingError(404, 0, "Unknown incoming call.", emulated="unknown or foreign incoming call")
        return incoming

    async def get_incoming(self, request: Request) -> Response:
        """A TeamsIncomingCall as the SDK shows it: ringing, taken here, or ended elsewhere with its callEndReason."""
        try:
            incoming = self._own_incoming(request)
        except CallingError as err:
            return self._error(err)
        end = incoming.end_reason
        return self._json(
            {
                api.ID: incoming.id,
                api.CALLER_INFO: {api.IDENTIFIER: incoming.caller},
                api.STATE: incoming.state,
                api.CALL_END_REASON: {api.CODE: end[0], api.SUB_CODE: end[1]} if end else None,
            }
        )

    def _incoming(self, request: Request, operation: str) -> Incoming:
        incoming = self._own_incoming(request)
        if incoming.state != "Ringing":
            sub_code = 41006 if operation == "accept" else 41007  # calling-sdk.md: accept / reject when not Ringing
            raise CallingError(400, sub_code, f"{operation} is only possible while the call is ringing.")
        return incoming

    async def accept(self, request: Request) -> Response:
        try:
            incoming = self._incoming(request, "accept")
        except CallingError as err:
            return self._error(err)
        with self.ctx.lock:
            incoming.state = "Accepted"
            call = self._new_call(incoming.agent, "Incoming", incoming.caller)
            call.move("Connecting", "Connected")
            if incoming.caller_call and (caller := self.state.calls.get(incoming.caller_call)):
                caller.move("Connected")
                caller.linked, call.linked = call.id, caller.id
            for other in self._rung_with(incoming):  # answered elsewhere: stop ringing the rest
                if other.state != "Ringing":
                    continue
                if self._same_user(other, incoming):  # "All other endpoints receive subcode 10003" (call-end.md)
                    other.state, other.end_reason = "Ended", ACCEPTED_ELSEWHERE
                else:
                    other.state = "Rejected"
        return self._respond_call(call, 201)

    def _rung_with(self, incoming: Incoming) -> list[Incoming]:
        """The other endpoints the same call rang (the caller's one call offered to each of them)."""
        if incoming.caller_call is None:
            return []
        return [i for i in self.state.incoming.values() if i.caller_call == incoming.caller_call and i is not incoming]

    def _same_user(self, one: Incoming, other: Incoming) -> bool:
        a, b = self.state.agents.get(one.agent), self.state.agents.get(other.agent)
        return a is not None and b is not None and a.oid == b.oid

    async def reject(self, request: Request) -> Response:
        try:
            incoming = self._incoming(request, "reject")
        except CallingError as err:
            return self._error(err)
        with self.ctx.lock:
            incoming.state = "Rejected"
            endpoints = [incoming, *(i for i in self._rung_with(incoming) if self._same_user(i, incoming))]
            caller = self.state.calls.get(incoming.caller_call) if incoming.caller_call else None
            # The caller's call rings on while another endpoint of the callee still rings.
            if caller is not None and not any(i.state == "Ringing" for i in endpoints):
                if len(endpoints) == 1:
                    caller.end(*DECLINED)  # call-end.md: "declined from callee"
                else:
                    caller.end(*DECLINED_BY_ALL)  # "Call declined by all callee endpoints"
                    caller.emulated = DECIDED_BY["declined-by-all"]
        return Response(status_code=204)

    # -- the emulator's phone network: a phone caller rings a Teams user -----------------------------

    async def phone_network_call(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            number, target = body.get(api.FROM, ""), body.get(api.TO) or {}
            if not isinstance(number, str):
                number = ""
            if not E164.match(number):
                raise CallingError(400, 0, "from must be an E.164 number.", emulated="phone network input")
            oid = str(target.get(api.TEAMS_USER_ID, "")) if isinstance(target, dict) else ""
            tenant = next((t for t in self.ctx.directory.tenants.values() if t.user_by_oid(oid)), None)
            if tenant is None:
                raise CallingError(404, 0, "No such Teams user.", emulated="phone network input")
        except CallingError as err:
            return self._error(err)
        callee = tenant.user_by_oid(oid)
        assert callee is not None
        with self.ctx.lock:
            call = self._new_call(None, "Outgoing", api.teams_user_raw_id(oid))
            call.move("Connecting")
            if not self._ring(tenant, callee, api.phone_raw_id(number), call):
                call.end(480, 10037)
        return self._json(
            {api.ID: call.id, api.STATE: call.state, api.STATE_HISTORY: call.history},
            201,
            "the emulator's phone network: a simulated PSTN caller",
        )

    # -- the lobby -----------------------------------------------------------------------------------

    def _meeting_calls(self, meeting_id: str | None, state: str) -> list[Call]:
        return [c for c in self.state.calls.values() if meeting_id and c.meeting == meeting_id and c.state == state]

    async def lobby(self, request: Request) -> Response:
        try:
            call = self._call(request)
        except CallingError as err:
            return self._error(err)
        in_lobby = self._meeting_calls(call.meeting, "InLobby")
        return self._json({api.VALUE: [{api.IDENTIFIER: c.member, api.STATE: "InLobby"} for c in in_lobby]})

    async def admit(self, request: Request) -> Response:
        """lobby.admit: only an organizer, co-organizer or presenter may (41805 otherwise)."""
        try:
            call = self._call(request)
            identity = (await self._body(request)).get(api.IDENTIFIER)
            if call.role not in ("Organizer", "Co-organizer", "Presenter"):
                raise CallingError(
                    403, 41805, "only Organizer, Co-organizer or Presenter can admit/reject participants from lobby"
                )
            waiting = [c for c in self._meeting_calls(call.meeting, "InLobby") if c.member == identity]
            if not waiting:
                raise CallingError(404, 0, "That participant is not in the lobby.", emulated="admit of nobody")
        except CallingError as err:
            return self._error(err)
        with self.ctx.lock:
            for admitted in waiting:
                admitted.move("Connected")
        return Response(status_code=204)

    # -- the organizer's own Teams client (simulated): what the ACS SDK cannot do ---------------------

    def _meeting_by_thread(self, thread: str) -> tuple[Tenant, Meeting]:
        for tenant in self.ctx.directory.tenants.values():
            for meeting in tenant.meetings.values():
                if meeting.thread_id == thread:
                    return tenant, meeting
        raise CallingError(404, 0, "No such meeting.", emulated="simulated Teams client input")

    def _recompute(self, tenant: Tenant, meeting: Meeting, reason: str) -> None:
        """Roles and capabilities after a change; a capabilitiesChanged event where they differ."""
        for call in self._meeting_calls(meeting.id, "Connected") + self._meeting_calls(meeting.id, "InLobby"):
            user = tenant.user_by_oid((call.member or "").removeprefix(api.TEAMS_USER_RAW_PREFIX))
            if user is None:
                continue
            role = self._role(meeting, user)
            honour = meeting.kind != "webinar" or tenant.honours_webinar_roles
            capabilities = capabilities_for(role, honour_roles=honour, meeting=meeting, user=user)
            changed = {k: v for k, v in capabilities.items() if call.capabilities.get(k) != v}
            event_reason = api.ROLE_CHANGED if role != call.role else reason
            call.role, call.capabilities = role, capabilities
            if changed:
                call.capability_changes.append({api.REASON: event_reason, api.CHANGED: changed})

    async def organizer_sets_options(self, request: Request) -> Response:
        """The organizer changes meeting options in Teams during the meeting."""
        try:
            tenant, meeting = self._meeting_by_thread(request.path_params["thread"])
            body = await self._body(request)
            previous = {}
            for key, attribute in ((api.ATTENDEE_MIC, "attendee_mic"), (api.ATTENDEE_CAMERA, "attendee_camera")):
                if key in body:
                    if not isinstance(body[key], bool):
                        raise CallingError(400, 0, f"{key} must be true or false.", emulated="simulated client input")
                    previous[key] = getattr(meeting, attribute)
                    setattr(meeting, attribute, body[key])
        except CallingError as err:
            return self._error(err)
        with self.ctx.lock:
            self._recompute(tenant, meeting, api.MEETING_OPTION_CHANGED)
        return self._json(  # what the options were, so that a test can put them back
            {api.MEETING: meeting.name, api.PREVIOUS: previous},
            emulated="the emulator's stand-in for the organizer's Teams client",
        )

    async def organizer_promotes(self, request: Request) -> Response:
        """The organizer makes an attendee a presenter in Teams (the ACS SDK cannot)."""
        return await self._organizer_sets_role(request, presenter=True)

    async def organizer_demotes(self, request: Request) -> Response:
        """The organizer makes a promoted presenter an attendee again."""
        return await self._organizer_sets_role(request, presenter=False)

    async def _organizer_sets_role(self, request: Request, *, presenter: bool) -> Response:
        try:
            tenant, meeting = self._meeting_by_thread(request.path_params["thread"])
            oid = (await self._body(request)).get(api.TEAMS_USER_ID)
            if not isinstance(oid, str) or tenant.user_by_oid(oid) is None:
                raise CallingError(
                    400,
                    0,
                    "microsoftTeamsUserId must name a user of the meeting's tenant.",
                    emulated="simulated client input",
                )
        except CallingError as err:
            return self._error(err)
        with self.ctx.lock:
            if presenter:
                meeting.promoted.append(oid)
            else:
                meeting.promoted = [p for p in meeting.promoted if p != oid]
            self._recompute(tenant, meeting, api.ROLE_CHANGED)
        return self._json(
            {api.MEETING: meeting.name}, emulated="the emulator's stand-in for the organizer's Teams client"
        )

    async def admin_sets_user_policy(self, request: Request) -> Response:
        """A Teams admin changes a user's meeting policy (screen sharing) while they are in meetings."""
        try:
            oid = request.path_params["oid"]
            tenant = next((t for t in self.ctx.directory.tenants.values() if t.user_by_oid(oid)), None)
            body = await self._body(request)
            value = body.get(api.SCREEN_SHARING)
            if tenant is None or not isinstance(value, bool):
                raise CallingError(400, 0, "Name a user and screenSharing true or false.", emulated="admin input")
        except CallingError as err:
            return self._error(err)
        user = tenant.user_by_oid(oid)
        assert user is not None
        with self.ctx.lock:
            previous, user.screen_sharing = user.screen_sharing, value
            for meeting in tenant.meetings.values():
                self._recompute(tenant, meeting, api.USER_POLICY_CHANGED)
        return self._json(
            {api.PREVIOUS: {api.SCREEN_SHARING: previous}},
            emulated="the emulator's stand-in for a Teams admin changing a policy",
        )
