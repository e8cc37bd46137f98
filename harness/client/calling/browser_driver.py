"""The browser calling driver: the real ACS Calling SDK (in headless Chromium) behind the driver protocol.

Each TeamsCallAgent gets its own page (one CallClient each) in one browser.

- Live, the SDK talks to Microsoft and every row can run. A call that ends with one of the SDK's
  network-failure codes (490/4525 and the like), or an agent the SDK cannot create for want of
  Microsoft's services, says nothing about the row: NeedsLiveTenant, naming the firewall list.
- Offline (every request that is not to the page is aborted: against the sandbox, or on a live
  profile whose machine cannot reach Microsoft's calling services, `[calling] offline = true`) the
  SDK still answers its client-side checks synchronously (docs/contracts/calling.md §4: 40231, 40238,
  40210, 40209); anything it accepts, it then cannot take further, so the operation ends in
  NeedsLiveTenant (a SKIP saying so), never in an observation a verdict could be drawn from.
  Against the sandbox the sandbox model answers beside it (harness.client.calling.cross_check); on a live
  profile there is no model, and the driver judges the SDK's errors itself.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from harness.client.calling.browser import SDK_VERSION, BridgeError, CallingSdkBrowser, SdkPage, shared_browser
from harness.client.calling.credential import TokenCredential
from harness.client.calling.protocol import (
    NEEDS_CALLING_SERVICES,
    SETTLED,
    ActionResult,
    CallingCommunicationError,
    CallView,
    EndReason,
    Locator,
    NeedsLiveTenant,
    Target,
    call_view,
    locator_data,
    same_caller,
    target_data,
)
from harness.client.calling.sdk_cassette import SdkCassette

SDK = f"real SDK (@azure/communication-calling {SDK_VERSION})"
LIVE_HINT = "run it against a live tenant (a live profile, --mode live)"
FIREWALL_LIST = (
    'the firewall list in the README ("A live tenant: what a partner provides", "A machine": *.microsoft.com, '
    "*.skype.com, *.azure.com, *.office.com on TCP 443 and 80, media to 20.202.0.0/16 on UDP 3478-3481)"
)
FIREWALL_HINT = (
    f"check that this machine may reach them: {FIREWALL_LIST}; or set [calling] offline = true in the profile "
    "to judge only what the SDK decides on the client"
)
OFFLINE_LIVE_HINT = (
    "only what the SDK decides on the client can be judged here; run the row on a machine that reaches "
    f"Microsoft's signalling and media services ({FIREWALL_LIST}) with [calling] offline = false"
)
# How long (page time) an offline call may take to give up on Microsoft's services: offline the
# SDK ends a started call with 490/4525 (network failure) after its own retries.
OFFLINE_SETTLE_S = 120.0
VIRTUAL_WAIT_STEP_MS = 2000
PASS_TIME_STEP_MS = 5000  # letting time pass on the virtual clock (CallingDriver.pass_time)
# The checks the SDK makes on the client, synchronously (docs/contracts/calling.md §4, reproduced).
CLIENT_SIDE_SUBCODES = frozenset({40231, 40238, 40210, 40209})
# The SDK's codes for traffic that did not get through (its 2.0.0 error catalogue [bundle];
# docs/contracts/calling.md §2: "490/491/496/497/498 network"): by code, with the subcodes it names.
NETWORK_FAILURE_CODES = frozenset({490, 491, 496, 497, 498})
NETWORK_FAILURES = {
    4502: "network error",
    4520: "local HTTP stack error",
    4522: "host name not resolved",
    4523: "connection refused",
    4524: "TLS error",
    4525: "request failed: CORS or network",
    4526: "offline",
    4104: "network request timed out",
    4125: "network request cancelled",
}
# What the page says when the SDK never settled a promise (harness.client.calling.browser.SdkPage.call,
# kept word for word in recordings).
NO_ANSWER = "the SDK did not answer {function} within"


def network_failure(code: int | None, sub_code: int | None) -> str | None:
    """What a network-failure code means (None: not one)."""
    if code not in NETWORK_FAILURE_CODES and sub_code not in NETWORK_FAILURES:
        return None
    return NETWORK_FAILURES.get(sub_code or 0, "network failure")


def sandbox_offline(happened: str) -> NeedsLiveTenant:
    """Offline against the sandbox: what the SDK did, and that the row needs a live tenant."""
    return NeedsLiveTenant(f"needs a live tenant: {happened}; the row {NEEDS_CALLING_SERVICES}: {LIVE_HINT}")


def live_offline(happened: str) -> NeedsLiveTenant:
    """A live profile with `[calling] offline = true`: the SDK ran offline, this machine cannot reach Microsoft."""
    return NeedsLiveTenant(
        f"{NEEDS_CALLING_SERVICES}, which this machine cannot reach: offline ([calling] offline = true), "
        f"{happened}; {OFFLINE_LIVE_HINT}"
    )


def unreachable(happened: str) -> NeedsLiveTenant:
    """Live, the SDK's traffic did not get through to Microsoft's calling services."""
    return NeedsLiveTenant(f"{NEEDS_CALLING_SERVICES}, which this machine could not reach: {happened}; {FIREWALL_HINT}")


def judged(err: CallingCommunicationError, what: str, *, offline: bool, live_tenant: bool) -> Exception:
    """What an SDK error amounts to where no sandbox model answers beside the SDK (a live profile):
    offline, anything but its client-side checks comes from the services it could not reach; live,
    a network-failure code says the services were not reached. Anything else is the observation.
    Against the sandbox the error goes to harness.client.calling.cross_check as it is."""
    said = f"{err.code}/{err.sub_code} ({err.message})"
    if not live_tenant:
        return err
    if offline and err.sub_code not in CLIENT_SIDE_SUBCODES:
        return live_offline(f"the {SDK} failed {what} with {said}, not one of its client-side checks")
    if not offline and (failure := network_failure(err.code, err.sub_code)):
        return unreachable(f"the {SDK} failed {what} with {said}: {failure}")
    return err


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
    """A call on one page. `live`: the SDK is talking to Microsoft, so a call that ends with a
    network-failure code means the services were not reached (NeedsLiveTenant), not a refusal."""

    def __init__(self, page: SdkPage, call_id: str, *, live: bool = False, what: str = "the call") -> None:
        self._page, self.id, self.live, self.what = page, call_id, live, what

    def view(self) -> CallView:
        answer = checked(self._page.call("view", self.id), "call.view")
        try:
            return call_view(answer)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise BridgeError(f"call.view answered something that is not a call: {str(answer)[:200]}") from None

    def _wait(self, states: frozenset[str], timeout: float) -> CallView:
        # On the virtual clock page time costs nothing but the polling: long steps (the timers still
        # fire in order within each); on the real clock, a short poll.
        waited, step_ms = 0.0, VIRTUAL_WAIT_STEP_MS if self._page.virtual_clock else 250
        while (view := self.view()).state not in states and waited < timeout:
            self._page.advance(step_ms)
            waited += step_ms / 1000
        return view

    def wait_until(self, states: frozenset[str] = SETTLED, timeout: float = 30.0) -> CallView:
        view = self._wait(states, timeout)
        end = view.end_reason
        if self.live and view.state == "Disconnected" and end and (failure := network_failure(end.code, end.sub_code)):
            raise unreachable(
                f"the {SDK}'s {self.what} ended {end.code}/{end.sub_code} ({failure}; {' → '.join(view.state_history)})"
            )
        return view

    def hang_up(self) -> CallView:
        if self.view().state != "Disconnected":
            checked(self._page.call("hangUp", self.id), "call.hangUp")
        return self._wait(frozenset({"Disconnected"}), 30.0)

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
    def __init__(self, page: SdkPage, call_id: str, caller: str = "", *, live: bool = False) -> None:
        self._page, self.id, self.caller, self.live = page, call_id, caller, live
        self.taken = False  # accepted or rejected here

    def accept(self) -> BrowserCall:
        self.taken = True
        answer = checked(self._page.call("accept", self.id), "incomingCall.accept")
        return BrowserCall(self._page, call_id(answer, "incomingCall.accept"), live=self.live, what="accepted call")

    def reject(self) -> None:
        self.taken = True
        checked(self._page.call("reject", self.id), "incomingCall.reject")

    def wait_until_ended(self, timeout: float = 30.0) -> EndReason | None:
        """The callEndReason of its `callEnded` event (the bridge keeps it), once it ended elsewhere."""
        waited = 0.0
        while True:
            view = checked(self._page.call("incomingCallView", self.id), "incomingCall.view")
            end = view.get("callEndReason")
            if self.taken or view.get("state") != "Ringing" or waited >= timeout:
                if self.taken or not isinstance(end, dict) or not isinstance(end.get("code"), int):
                    return None
                return EndReason(end["code"], end.get("subCode"))
            self._page.advance(250)
            waited += 0.25


class BrowserTeamsCallAgent:
    def __init__(self, page: SdkPage, *, offline: bool, created_ms: float | None, live_tenant: bool = False) -> None:
        self.page, self.offline, self.live_tenant = page, offline, live_tenant
        self.identity = "TeamsCallAgent"
        took = f" in {created_ms / 1000:.1f} s of page time" if created_ms is not None else ""
        self.evidence = {SDK: f"TeamsCallAgent created{took}" + (" (offline)" if offline else "")}

    def _cannot_go_on(self, happened: str) -> NeedsLiveTenant:
        """Offline: the SDK can go no further (`happened` says how far it got)."""
        return live_offline(happened) if self.live_tenant else sandbox_offline(f"offline, {happened}")

    def _started(self, answer: dict[str, Any], what: str) -> BrowserCall:
        try:
            started = call_id(checked(answer, what), what)
        except CallingCommunicationError as err:
            raise judged(err, what, offline=self.offline, live_tenant=self.live_tenant) from None
        call = BrowserCall(self.page, started, live=not self.offline, what=what)
        if not self.offline:
            return call
        # Offline: the SDK accepted it client-side; whatever the service would say cannot be known.
        view = call._wait(frozenset({"Disconnected"}), OFFLINE_SETTLE_S if self.page.virtual_clock else 0)
        if view.state != "Disconnected":
            with contextlib.suppress(Exception):
                call.hang_up()
        end = f"{view.end_reason.code}/{view.end_reason.sub_code}" if view.end_reason else view.state
        raise self._cannot_go_on(
            f"the {SDK} accepted {what} (no client-side error), then could not "
            f"reach Microsoft ({' → '.join(view.state_history)}, {end})"
        )

    def start_call(self, targets: Target | list[Target], thread_id: str | None = None) -> BrowserCall:
        many = targets if isinstance(targets, list) else [targets]
        options = {"threadId": thread_id} if thread_id else {}
        return self._started(self.page.call("startCall", [target_data(t) for t in many], options), "startCall")

    def join(self, locator: Locator) -> BrowserCall:
        return self._started(self.page.call("join", locator_data(locator)), "join")

    def wait_for_incoming_call(self, timeout: float = 30.0, caller: str | None = None) -> BrowserIncomingCall | None:
        """The first incoming call from `caller` (None: anyone): the bridge gives each ringing call's
        caller rawId (`callerInfo.identifier.rawId`); calls from anyone else are left ringing."""
        if self.offline:
            raise self._cannot_go_on(f"no call can reach the {SDK}")
        waited = 0.0
        while True:
            ringing = self.page.call("incomingCalls")
            for incoming, raw_id in itertools.zip_longest(ringing.get("ids") or [], ringing.get("callers") or []):
                if incoming and (caller is None or same_caller(raw_id, caller)):
                    return BrowserIncomingCall(self.page, incoming, raw_id or "", live=True)
            if waited >= timeout:
                return None
            self.page.advance(250)
            waited += 0.25

    def token_in_use(self) -> int | None:
        """What the SDK's credential gives the SDK now (`getToken()`): the token's expiry, from the page."""
        answer = checked(self.page.call("tokenInUse"), "credential.getToken")
        return int(answer["expiresOn"]) if isinstance(answer.get("expiresOn"), int | float) else None

    def dispose(self) -> None:
        with contextlib.suppress(Exception):
            self.page.call("dispose", timeout_s=10)


class BrowserCallingDriver:
    """The real SDK: `offline=True` in sandbox mode (the virtual clock on), `offline=False` live.
    `live_tenant`: the profile is a live tenant's (no sandbox model answers beside the SDK): offline
    there means this machine cannot reach Microsoft's calling services ([calling] offline = true)."""

    name = "browser"

    def __init__(
        self,
        *,
        offline: bool,
        virtual_clock: bool | None = None,
        cassette: SdkCassette | None = None,
        live_tenant: bool = False,
    ) -> None:
        """`cassette`: record what the SDK answers (record mode), or answer from it without a browser (replay)."""
        self.offline, self.cassette, self.live_tenant = offline, cassette, live_tenant
        self.virtual_clock = offline if virtual_clock is None else virtual_clock
        self._browser: CallingSdkBrowser | None = None
        self.pages: list[Any] = []
        if cassette is not None and cassette.record:
            cassette.offline, cassette.virtual_clock, cassette.live_tenant = offline, self.virtual_clock, live_tenant

    def browser(self) -> CallingSdkBrowser:
        if self._browser is None:
            self._browser = shared_browser(offline=self.offline, virtual_clock=self.virtual_clock)
        return self._browser

    def open_page(self, start: float | None = None) -> Any:
        """A page for one agent: the browser's, or the recording's. `start`: where its virtual clock begins."""
        real = lambda: self.browser().open_page(start)  # noqa: E731 - a page only when one is needed
        page = real() if self.cassette is None else self.cassette.open_page(real)
        self.pages.append(page)
        return page

    def create_teams_call_agent(self, credential: TokenCredential | str) -> BrowserTeamsCallAgent:
        """A bare token: `new AzureCommunicationTokenCredential(token)`. A credential with a refresher:
        `{token, tokenRefresher, refreshProactively: true}`, the refresher calling back into `credential`
        (which re-acquires and re-exchanges here, in Python) through a function exposed to the page."""
        if not isinstance(credential, TokenCredential):
            credential = TokenCredential(credential)
        # On a virtual clock the SDK lives when its token was issued: the tenant's time (a recording sandbox's
        # clock is fixed), so that the credential judges the token's expiry as the service does.
        page = self.open_page(start=credential.issued_at if self.virtual_clock else None)
        what = "createTeamsCallAgent"
        args: tuple[Any, ...] = (credential.token,)
        if credential.token_refresher is not None:
            page.expose_token_refresher(self._refresher(credential))
            args = (credential.token, {"refresher": True})
        try:
            answer = checked(page.call(what, *args), what)
        except CallingCommunicationError as err:
            raise judged(err, what, offline=self.offline, live_tenant=self.live_tenant) from None
        except BridgeError as err:
            # Live, an SDK that never creates the agent is one that could not reach Microsoft's services.
            if self.live_tenant and not self.offline and NO_ANSWER.format(function=what) in str(err):
                raise unreachable(f"the {SDK} did not create a TeamsCallAgent ({err})") from None
            raise
        return BrowserTeamsCallAgent(
            page, offline=self.offline, created_ms=answer.get("ms"), live_tenant=self.live_tenant
        )

    def _refresher(self, credential: TokenCredential) -> Callable[[], str | None]:
        """What the page's tokenRefresher runs: a new token from the credential's refresher, handed back to
        the SDK. Offline, the hosts the SDK then sends it to are noted (the token itself stays here)."""

        def refresh() -> str | None:
            if not credential.refresh("the SDK's tokenRefresher asked for one (refreshProactively)"):
                return None
            if self.offline and self._browser is not None:
                self._browser.watch(credential.token, credential.current.sent_to)
            return credential.token

        return refresh

    def pass_time(self, seconds: float) -> None:
        """On the virtual clock each page's time runs on, in steps (its timers fire: a credential's proactive
        refresh, whose call into Python is answered between two steps, as it would be within seconds); on
        the real clock one page waits, so that the pages' calls into Python are answered as they come."""
        if not self.virtual_clock:
            if self.pages:
                self.pages[0].advance(int(seconds * 1000))
            return
        left = int(seconds * 1000)
        while left > 0:
            step = min(left, PASS_TIME_STEP_MS)
            for page in self.pages:
                page.advance(step)
            left -= step

    def _cannot_go_on(self, happened: str) -> NeedsLiveTenant:
        return live_offline(happened) if self.live_tenant else sandbox_offline(f"offline, {happened}")

    def phone_network(self) -> None:
        if self.offline:
            raise self._cannot_go_on(f"no phone network can ring the {SDK}")
        return None  # live: a Teams Phone user of the profile dials (CallingFlow.phone_dials)

    def teams_client(self) -> None:
        if self.offline:
            raise self._cannot_go_on("there is no Teams organizer to act")
        return None

    def close(self) -> None:
        for page in self.pages:  # a recording page keeps its transcript as it closes
            page.close()
        self.pages = []
        self._browser = None  # the shared browser stays up for the next scenario
