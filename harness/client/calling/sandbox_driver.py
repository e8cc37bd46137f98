"""The sandbox calling driver: the protocol over the sandbox calling model's HTTP API (httpx)."""

from __future__ import annotations

import dataclasses
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx

from harness.client.calling.protocol import (
    SETTLED,
    ActionResult,
    CallingCommunicationError,
    CallView,
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
    def __init__(
        self, base_url: str, token: str | None, ca_bundle: str | None, transport: httpx.BaseTransport | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify: ssl.SSLContext | bool = client_context(str(ca_bundle)) if ca_bundle else client_context()
        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            verify=verify,
            timeout=30.0,
            transport=transport,
            trust_env=not ca_bundle,
        )

    def call(self, method: str, path: str, body: Any = None) -> tuple[Any, httpx.Response]:
        response = self.http.request(method, path, json=body)
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = None
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

    def _api(self, token: str | None) -> _Api:
        api = _Api(self.base_url, token, self.ca_bundle)
        self._apis.append(api)
        return api

    def create_teams_call_agent(self, acs_token: str) -> SandboxTeamsCallAgent:
        api = self._api(acs_token)
        data, _ = api.call("POST", wire.AGENTS)
        return SandboxTeamsCallAgent(api, data, self.sleep)

    def phone_network(self) -> SandboxPhoneNetwork:
        return SandboxPhoneNetwork(self._api(None))

    def teams_client(self) -> SandboxTeamsClient:
        return SandboxTeamsClient(self._api(None))

    def close(self) -> None:
        for api in self._apis:
            api.http.close()
