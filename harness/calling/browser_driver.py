"""The browser calling driver: the real ACS Calling SDK (in headless Chromium) behind the driver protocol.

Each TeamsCallAgent gets its own page (one CallClient each) in one browser. Live, the SDK talks to
Microsoft and every row can run. Offline (sandbox mode: every request that is not to the page is
aborted) the SDK still answers its client-side checks synchronously (contracts/calling.md §4:
40231, 40238, 40210, 40209); anything it accepts, it then cannot take further, so the operation
ends in NeedsLiveTenant (a SKIP saying so), never in an observation a verdict could be drawn from.
"""

from __future__ import annotations

import contextlib
from typing import Any

from harness.calling.browser import SDK_VERSION, BridgeError, CallingSdkBrowser, SdkPage, shared_browser
from harness.calling.protocol import (
    SETTLED,
    ActionResult,
    CallingCommunicationError,
    CallView,
    Locator,
    NeedsLiveTenant,
    Target,
    call_view,
    locator_data,
    target_data,
)
from harness.calling.sdk_cassette import SdkCassette

SDK = f"real SDK (@azure/communication-calling {SDK_VERSION})"
LIVE_HINT = "run it against a live tenant (a live profile, --mode live)"
# How long (page time) an offline call may take to give up on Microsoft's services: offline the
# SDK ends a started call with 490/4525 (network failure) after its own retries.
OFFLINE_SETTLE_S = 120.0


def checked(answer: dict[str, Any], what: str) -> dict[str, Any]:
    """The answer if ok; the SDK's CallingCommunicationError raised as one; else a bridge fault."""
    if answer.get("ok"):
        return answer
    error = answer.get("error") or {}
    if isinstance(error.get("code"), int):
        ms = answer.get("ms")
        took = f" after {ms:.1f} ms" if isinstance(ms, int | float) else ""
        raise CallingCommunicationError(
            error["code"],
            error.get("subCode"),
            str(error.get("message")),
            evidence={SDK: f"{what} failed with {error['code']}/{error.get('subCode')}{took}"},
        )
    raise BridgeError(f"{what} failed in the bridge: {error.get('name') or 'Error'}: {error.get('message')}")


def call_id(answer: dict[str, Any], what: str) -> str:
    """The id of the call an answer names (a recording may be anything: say so in one line)."""
    if not isinstance(answer.get("id"), str):
        raise BridgeError(f"{what} answered without a call id: {str(answer)[:200]}")
    return answer["id"]


class BrowserCall:
    def __init__(self, page: SdkPage, call_id: str) -> None:
        self._page, self.id = page, call_id

    def view(self) -> CallView:
        answer = checked(self._page.call("view", self.id), "call.view")
        try:
            return call_view(answer)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise BridgeError(f"call.view answered something that is not a call: {str(answer)[:200]}") from None

    def wait_until(self, states: frozenset[str] = SETTLED, timeout: float = 30.0) -> CallView:
        waited, step_ms = 0.0, 250
        while (view := self.view()).state not in states and waited < timeout:
            self._page.advance(step_ms)
            waited += step_ms / 1000
        return view

    def hang_up(self) -> CallView:
        if self.view().state != "Disconnected":
            checked(self._page.call("hangUp", self.id), "call.hangUp")
        return self.wait_until(frozenset({"Disconnected"}))

    def _action(self, action: str, function: str) -> ActionResult:
        """Succeeded: the SDK did it and the call says so (unmuted, video on, sharing on). Refused: the
        SDK's CallingCommunicationError. Anything else (the bridge, the browser) is a harness fault."""
        answer = self._page.call(function, self.id)
        if answer.get("ok"):
            done = answer.get("done") is True
            return ActionResult(action, done, None if done else "no error, but the call does not show it done")
        error = answer.get("error") or {}
        if not isinstance(error.get("code"), int):
            raise BridgeError(
                f"{action} failed outside the SDK: {error.get('name') or 'Error'}: {error.get('message')}"
            )
        return ActionResult(action, False, f"{error['code']}/{error.get('subCode')} {error.get('message')}")

    def unmute(self) -> ActionResult:
        return self._action("unmute", "unmute")

    def start_video(self) -> ActionResult:
        return self._action("start_video", "startVideo")

    def start_screen_sharing(self) -> ActionResult:
        return self._action("start_screen_sharing", "startScreenSharing")

    def lobby_participants(self) -> list[str]:
        return list(checked(self._page.call("lobbyParticipants", self.id), "lobby.participants")["ids"])

    def admit(self, identifier: str) -> None:
        checked(self._page.call("admit", self.id, identifier), "lobby.admit")


class BrowserIncomingCall:
    def __init__(self, page: SdkPage, call_id: str) -> None:
        self._page, self.id, self.caller = page, call_id, ""

    def accept(self) -> BrowserCall:
        answer = checked(self._page.call("accept", self.id), "incomingCall.accept")
        return BrowserCall(self._page, call_id(answer, "incomingCall.accept"))

    def reject(self) -> None:
        checked(self._page.call("reject", self.id), "incomingCall.reject")


class BrowserTeamsCallAgent:
    def __init__(self, page: SdkPage, *, offline: bool, created_ms: float | None) -> None:
        self.page, self.offline = page, offline
        self.identity = "TeamsCallAgent"
        took = f" in {created_ms / 1000:.1f} s of page time" if created_ms is not None else ""
        self.evidence = {SDK: f"TeamsCallAgent created{took}" + (" (offline)" if offline else "")}

    def _started(self, answer: dict[str, Any], what: str) -> BrowserCall:
        call = BrowserCall(self.page, call_id(checked(answer, what), what))
        if not self.offline:
            return call
        # Offline: the SDK accepted it client-side; whatever the service would say cannot be known.
        view = call.wait_until(frozenset({"Disconnected"}), timeout=OFFLINE_SETTLE_S if self.page.virtual_clock else 0)
        if view.state != "Disconnected":
            with contextlib.suppress(Exception):
                call.hang_up()
        end = f"{view.end_reason.code}/{view.end_reason.sub_code}" if view.end_reason else view.state
        raise NeedsLiveTenant(
            f"needs a live tenant: offline, the {SDK} accepted {what} (no client-side error), then could not "
            f"reach Microsoft ({' → '.join(view.state_history)}, {end}); {LIVE_HINT}"
        )

    def start_call(self, targets: Target | list[Target], thread_id: str | None = None) -> BrowserCall:
        many = targets if isinstance(targets, list) else [targets]
        options = {"threadId": thread_id} if thread_id else {}
        return self._started(self.page.call("startCall", [target_data(t) for t in many], options), "startCall")

    def join(self, locator: Locator) -> BrowserCall:
        return self._started(self.page.call("join", locator_data(locator)), "join")

    def wait_for_incoming_call(self, timeout: float = 30.0) -> BrowserIncomingCall | None:
        if self.offline:
            raise NeedsLiveTenant(f"needs a live tenant: offline, no call can reach the {SDK}; {LIVE_HINT}")
        waited = 0.0
        while not (ids := self.page.call("incomingCalls").get("ids") or []) and waited < timeout:
            self.page.advance(250)
            waited += 0.25
        return BrowserIncomingCall(self.page, ids[0]) if ids else None

    def dispose(self) -> None:
        with contextlib.suppress(Exception):
            self.page.call("dispose", timeout_s=10)


class BrowserCallingDriver:
    """The real SDK: `offline=True` in sandbox mode (the virtual clock on), `offline=False` live."""

    name = "browser"

    def __init__(
        self, *, offline: bool, virtual_clock: bool | None = None, cassette: SdkCassette | None = None
    ) -> None:
        """`cassette`: record what the SDK answers (record mode), or answer from it without a browser (replay)."""
        self.offline, self.cassette = offline, cassette
        self.virtual_clock = offline if virtual_clock is None else virtual_clock
        self._browser: CallingSdkBrowser | None = None
        self.pages: list[Any] = []
        if cassette is not None and cassette.record:
            cassette.offline, cassette.virtual_clock = offline, self.virtual_clock

    def browser(self) -> CallingSdkBrowser:
        if self._browser is None:
            self._browser = shared_browser(offline=self.offline, virtual_clock=self.virtual_clock)
        return self._browser

    def open_page(self) -> Any:
        """A page for one agent: the browser's, or the recording's."""
        real = lambda: self.browser().open_page()  # noqa: E731 - a page only when one is needed
        page = real() if self.cassette is None else self.cassette.open_page(real)
        self.pages.append(page)
        return page

    def create_teams_call_agent(self, acs_token: str) -> BrowserTeamsCallAgent:
        page = self.open_page()
        answer = checked(page.call("createTeamsCallAgent", acs_token), "createTeamsCallAgent")
        return BrowserTeamsCallAgent(page, offline=self.offline, created_ms=answer.get("ms"))

    def phone_network(self) -> None:
        if self.offline:
            raise NeedsLiveTenant(f"needs a live tenant: offline, no phone network can ring the {SDK}; {LIVE_HINT}")
        return None  # live: a Teams Phone user of the profile dials (CallingFlow.phone_dials)

    def teams_client(self) -> None:
        if self.offline:
            raise NeedsLiveTenant(f"needs a live tenant: offline there is no Teams organizer to act; {LIVE_HINT}")
        return None

    def close(self) -> None:
        for page in self.pages:  # a recording page keeps its transcript as it closes
            page.close()
        self.pages = []
        self._browser = None  # the shared browser stays up for the next scenario
