"""The sandbox calling driver: the protocol over the sandbox calling model's HTTP API (httpx)."""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from harness.client.calling.credential import TokenCredential
from harness.client.calling.protocol import (
    SETTLED,
    ActionResult,
    CallingCommunicationError,
    CallView,
    EndReason,
    Locator,
    Target,
    TeamsUser,
    call_view,
    locator_data,
    same_caller,
    target_data,
)
from harness.wire import calling as wire
from harness.wire import contract
from harness.wire.tls import client_context


class _Api:
    """One client of the model's API. With a credential (an agent's): its token on every request, and
    a refresh when the token has expired by the model's clock (the `Date` of its last answer) or the
    model answers 401 for an expired token, after which the request goes again, once."""

    def __init__(
        self,
        base_url: str,
        credential: TokenCredential | None,
        ca_bundle: str | None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.credential = credential
        verify: ssl.SSLContext | bool = client_context(str(ca_bundle)) if ca_bundle else client_context()
        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            verify=verify,
            timeout=30.0,
            transport=transport,
            trust_env=not ca_bundle,
        )

    def _send(self, method: str, path: str, body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.credential.token}"} if self.credential else {}
        response = self.http.request(method, path, json=body, headers=headers)
        if self.credential is not None and (date := response.headers.get("date")):
            with contextlib.suppress(TypeError, ValueError):
                self.credential.server_time = parsedate_to_datetime(date).timestamp()
        return response

    def call(self, method: str, path: str, body: Any = None) -> tuple[Any, httpx.Response]:
        credential = self.credential
        if credential and credential.refresh_proactively and credential.expired():
            credential.refresh("the token had expired by the calling service's clock")
        response = self._send(method, path, body)
        data = _json(response)
        if credential is not None and (refused := _expired_token(response, data)):
            credential.current.refused.append(refused)
            if credential.refresh(f"the calling service answered {refused}"):
                response = self._send(method, path, body)
                data = _json(response)
                if refused_again := _expired_token(response, data):
                    credential.current.refused.append(refused_again)
        if credential is not None and response.status_code < 400:
            credential.current.accepted += 1
        if response.status_code >= 400:
            error = (data or {}).get(wire.ERROR, {}) if isinstance(data, dict) else {}
            raise CallingCommunicationError(
                int(error.get(wire.CODE, response.status_code)),
                error.get(wire.SUB_CODE),
                str(error.get(wire.MESSAGE, response.reason_phrase)),
                emulator_defined=response.headers.get(contract.EMULATOR_DEFINED_HEADER),
                request_id=response.headers.get(contract.REQUEST_ID_HEADER),
            )
        return data, response


def _json(response: httpx.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def _expired_token(response: httpx.Response, data: Any) -> str | None:
    """The model's 401 for an expired token, in words ("401/10009 ..."); None for any other answer."""
    if response.status_code != 401 or not isinstance(data, dict) or not isinstance(data.get(wire.ERROR), dict):
        return None
    error = data[wire.ERROR]
    if error.get(wire.SUB_CODE) != wire.UNAUTHENTICATED:
        return None
    return f"401/{wire.UNAUTHENTICATED} ({error.get(wire.MESSAGE)})"


def _view(data: dict[str, Any], response: httpx.Response) -> CallView:
    return dataclasses.replace(
        call_view(data),
        emulator_defined=response.headers.get(contract.EMULATOR_DEFINED_HEADER) or data.get(wire.EMULATOR_DEFINED),
        request_id=response.headers.get(contract.REQUEST_ID_HEADER),
    )


class SandboxCall:
    def __init__(self, api: _Api, view: CallView, sleep: Callable[[float], None]) -> None:
        self._api, self._view, self._sleep = api, view, sleep
        self.id = view.id

    def view(self) -> CallView:
        data, response = self._api.call("GET", wire.CALL.format(call=self.id))
        self._view = _view(data, response)
        return self._view

    def wait_until(self, states: frozenset[str] = SETTLED, timeout: float = 30.0) -> CallView:
        deadline = time.monotonic() + timeout
        while self._view.state not in states:
            if time.monotonic() > deadline:
                return self._view
            self._sleep(0.05)
            self.view()
        return self._view

    def hang_up(self) -> CallView:
        data, response = self._api.call("POST", wire.CALL_HANG_UP.format(call=self.id))
        self._view = _view(data, response)
        return self._view

    def _action(self, action: str) -> ActionResult:
        data, _ = self._api.call("POST", wire.CALL_ACTIONS.format(call=self.id), {wire.ACTION: action})
        error = data.get(wire.ERROR)
        return ActionResult(
            action,
            bool(data.get(wire.SUCCEEDED)),
            f"{error[wire.CODE]}/{error[wire.SUB_CODE]}: {error[wire.MESSAGE]}" if error else None,
        )

    def unmute(self) -> ActionResult:
        return self._action(wire.UNMUTE)

    def start_video(self) -> ActionResult:
        return self._action(wire.START_VIDEO)

    def start_screen_sharing(self) -> ActionResult:
        return self._action(wire.START_SCREEN_SHARING)

    def lobby_participants(self) -> list[str]:
        data, _ = self._api.call("GET", wire.CALL_LOBBY.format(call=self.id))
        return [p[wire.IDENTIFIER] for p in data[wire.VALUE]]

    def admit(self, identifier: str) -> None:
        self._api.call("POST", wire.CALL_LOBBY_ADMIT.format(call=self.id), {wire.IDENTIFIER: identifier})


class SandboxIncomingCall:
    def __init__(self, api: _Api, data: dict[str, Any], sleep: Callable[[float], None]) -> None:
        self._api, self._sleep = api, sleep
        self.id = data[wire.ID]
        self.caller = data[wire.CALLER_INFO][wire.IDENTIFIER]

    def accept(self) -> SandboxCall:
        data, response = self._api.call("POST", wire.INCOMING_ACCEPT.format(incoming=self.id))
        return SandboxCall(self._api, _view(data, response), self._sleep)

    def reject(self) -> None:
        self._api.call("POST", wire.INCOMING_REJECT.format(incoming=self.id))

    def wait_until_ended(self, timeout: float = 30.0) -> EndReason | None:
        """Its callEndReason once it ended without being accepted or rejected here (another endpoint of
        the user answered, the caller gave up); None while it still rings, or if it was taken here."""
        deadline = time.monotonic() + timeout
        while True:
            data, _ = self._api.call("GET", wire.INCOMING_CALL.format(incoming=self.id))
            end = data.get(wire.CALL_END_REASON)
            if data.get(wire.STATE) != "Ringing" or time.monotonic() > deadline:
                return EndReason(int(end[wire.CODE]), end.get(wire.SUB_CODE)) if end else None
            self._sleep(0.05)


class SandboxTeamsCallAgent:
    def __init__(self, api: _Api, data: dict[str, Any], sleep: Callable[[float], None]) -> None:
        self._api, self._sleep = api, sleep
        self.id = data[wire.AGENT_ID]
        self.identity = data[wire.AGENT_IDENTITY]

    def start_call(self, targets: Target | list[Target], thread_id: str | None = None) -> SandboxCall:
        listed = targets if isinstance(targets, list) else [targets]
        body: dict[str, Any] = {wire.OPERATION: wire.START_CALL, wire.TARGETS: [target_data(t) for t in listed]}
        if thread_id:
            body[wire.THREAD_ID] = thread_id
        data, response = self._api.call("POST", wire.AGENT_CALLS.format(agent=self.id), body)
        return SandboxCall(self._api, _view(data, response), self._sleep)

    def join(self, locator: Locator) -> SandboxCall:
        body = {wire.OPERATION: wire.JOIN, wire.LOCATOR: locator_data(locator)}
        data, response = self._api.call("POST", wire.AGENT_CALLS.format(agent=self.id), body)
        return SandboxCall(self._api, _view(data, response), self._sleep)

    def wait_for_incoming_call(self, timeout: float = 30.0, caller: str | None = None) -> SandboxIncomingCall | None:
        """The first call ringing this agent from `caller` (None: anyone); others are left ringing."""
        deadline = time.monotonic() + timeout
        while True:
            data, _ = self._api.call("GET", wire.AGENT_INCOMING_CALLS.format(agent=self.id))
            for ringing in data[wire.VALUE]:
                if caller is None or same_caller((ringing.get(wire.CALLER_INFO) or {}).get(wire.IDENTIFIER), caller):
                    return SandboxIncomingCall(self._api, ringing, self._sleep)
            if time.monotonic() > deadline:
                return None
            self._sleep(0.05)

    def token_in_use(self) -> int | None:
        """The expiry of the ACS token the model last accepted from this agent."""
        return self._api.credential.accepted_with() if self._api.credential else None

    def dispose(self) -> None:
        self._api.http.close()


class SandboxPhoneNetwork:
    def __init__(self, api: _Api) -> None:
        self._api = api

    def dial(self, from_number: str, to: TeamsUser) -> None:
        self._api.call("POST", wire.PHONE_NETWORK_CALLS, {wire.FROM: from_number, wire.TO: target_data(to)})


class SandboxTeamsClient:
    """The organizer's Teams client, simulated by the sandbox."""

    def __init__(self, api: _Api) -> None:
        self._api = api

    def set_meeting_options(
        self, thread_id: str, *, attendee_mic: bool | None = None, attendee_camera: bool | None = None
    ) -> dict[str, bool]:
        """Change options; returns what they were (to put them back)."""
        options = ((wire.ATTENDEE_MIC, attendee_mic), (wire.ATTENDEE_CAMERA, attendee_camera))
        body = {k: v for k, v in options if v is not None}
        data, _ = self._api.call("POST", wire.MEETING_OPTIONS.format(thread=thread_id), body)
        return dict(data.get(wire.PREVIOUS, {}))

    def promote(self, thread_id: str, user: TeamsUser) -> None:
        self._api.call("POST", wire.MEETING_PROMOTE.format(thread=thread_id), target_data(user))

    def demote(self, thread_id: str, user: TeamsUser) -> None:
        self._api.call("POST", wire.MEETING_DEMOTE.format(thread=thread_id), target_data(user))

    def set_user_screen_sharing(self, user: TeamsUser, allowed: bool) -> bool:
        """A Teams admin changes the user's meeting policy; returns the previous value."""
        data, _ = self._api.call("POST", wire.USER_POLICIES.format(oid=user.oid), {wire.SCREEN_SHARING: allowed})
        return bool(data[wire.PREVIOUS][wire.SCREEN_SHARING])


class SandboxCallingDriver:
    name = "sandbox"

    def __init__(self, base_url: str, ca_bundle: str | None, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url, self.ca_bundle, self.sleep = base_url, ca_bundle, sleep
        self._apis: list[_Api] = []

    def _api(self, credential: TokenCredential | None) -> _Api:
        api = _Api(self.base_url, credential, self.ca_bundle)
        self._apis.append(api)
        return api

    def create_teams_call_agent(self, credential: TokenCredential | str) -> SandboxTeamsCallAgent:
        """`credential`: the ACS token, or a credential with a token refresher (a bare token: a static one)."""
        api = self._api(credential if isinstance(credential, TokenCredential) else TokenCredential(credential))
        data, _ = api.call("POST", wire.AGENTS)
        return SandboxTeamsCallAgent(api, data, self.sleep)

    def pass_time(self, seconds: float) -> None:
        """Let `seconds` pass for the model (in sandbox mode its clock moves on; live, real time)."""
        self.sleep(seconds)

    def phone_network(self) -> SandboxPhoneNetwork:
        return SandboxPhoneNetwork(self._api(None))

    def teams_client(self) -> SandboxTeamsClient:
        return SandboxTeamsClient(self._api(None))

    def close(self) -> None:
        for api in self._apis:
            api.http.close()
