"""The real ACS Calling SDK (`@azure/communication-calling`) in headless Chromium, driven over a JSON
bridge on a page served from `http://localhost` (the SDK refuses 127.0.0.1 over http).

The SDK is installed from npm at set-up time (`make calling-sdk`) into `.cache/calling-sdk/` and
bundled there with esbuild; it is never committed (Microsoft's proprietary licence). SDK_VERSION is
the one place its version is pinned. Offline (every non-loopback request aborted), the SDK still
answers its client-side checks: docs/contracts/calling.md §4 (40231, 40238, 40210, 40209).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import http.server
import itertools
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.core.places import CACHE_DIR

SDK_VERSION = "2.0.0"
SDK_DIR = Path(os.environ.get("CTE_CALLING_SDK_DIR") or CACHE_DIR / "calling-sdk")
BUNDLE = SDK_DIR / "calling-sdk.js"
PAGE_DIR = Path(__file__).resolve().parent / "browser_page"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
]
OFFLINE_FLAGS = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
]
# A normal Chrome user agent: the SDK's environment check reports headless Chrome as unsupported.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36"


class BrowserUnavailable(Exception):
    """What the browser driver needs and does not have here, in one line."""


def check_available() -> None:
    if not Path(CHROMIUM).exists():
        raise BrowserUnavailable("Debian's chromium is not installed (apt-get install -y chromium)")
    if not BUNDLE.is_file():
        raise BrowserUnavailable(f"the Calling SDK {SDK_VERSION} is not installed in {SDK_DIR} (make calling-sdk)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise BrowserUnavailable("playwright is not installed (pip install -e '.[dev]')") from None


class _PageHandler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        name = urlsplit(path).path.lstrip("/") or "index.html"
        if name == "calling-sdk.js":
            return str(BUNDLE)
        return str(PAGE_DIR / Path(name).name)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return None


@dataclass
class SdkAnswer:
    """One bridge call's answer: ok, or the SDK's error (code, subCode, message); how long it took."""

    ok: bool
    code: int | None = None
    sub_code: int | None = None
    name: str | None = None
    message: str | None = None
    ms: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_bridge(cls, data: dict[str, Any]) -> SdkAnswer:
        error = data.get("error") or {}
        return cls(
            ok=bool(data.get("ok")),
            code=error.get("code"),
            sub_code=error.get("subCode"),
            name=error.get("name"),
            message=error.get("message"),
            ms=data.get("ms"),
            raw=data,
        )


class BridgeError(RuntimeError):
    """The bridge itself failed (not the SDK): a harness fault, never a verdict."""


VIRTUAL_STEP_MS = 500
REAL_POLL_MS = 25
# The bridge functions that answer at once (no promise): evaluated directly.
IMMEDIATE = frozenset({"view", "incomingCalls", "incomingCallView", "version", "transcript"})


def _one_line(err: BaseException) -> str:
    """Playwright's errors run to many lines (call logs): their first."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]


class SdkPage:
    """One page, one CallClient, one TeamsCallAgent: the bridge functions as Python calls.

    With `virtual_clock`, the page's clock is paused once the page has loaded, and its timers (the
    SDK's retry back-offs) run only when the driver advances it: offline the SDK spends ~16 s of its
    own time retrying Microsoft's config services before it creates an agent; on the virtual clock
    that takes about a second. Only used offline, where no server is on the other end to be rushed.
    """

    def __init__(
        self,
        context: Any,
        url: str,
        *,
        virtual_clock: bool,
        on_close: Callable[[SdkPage], None] | None = None,
        start: float | None = None,
    ) -> None:
        """`start`: where a virtual clock begins (epoch seconds; None: now). The driver starts it when the
        agent's token was issued, so that the SDK's clock is its tenant's (a recording sandbox's is fixed)."""
        self.context, self.virtual_clock, self.on_close, self.closed = context, virtual_clock, on_close, False
        self._tickets = itertools.count(1)
        started = time.perf_counter()
        try:
            self.page = context.new_page()
            if virtual_clock:
                self.page.clock.install(**({"time": start} if start is not None else {}))
            self.page.goto(url)
            self.page.wait_for_function("() => window.cteBridge && window.cteBridge.version().loaded", timeout=60_000)
            if virtual_clock:
                self._pause_clock()
        except Exception as err:
            self.close()
            raise BridgeError(f"the Calling SDK page did not load: {_one_line(err)}") from None
        self.load_ms = (time.perf_counter() - started) * 1000

    def _pause_clock(self) -> None:
        """Pause the page's clock a second ahead of its own time (it runs on until paused, and cannot be sent
        back). Playwright for Python takes epoch seconds: a number in milliseconds would put the page some
        55,000 years ahead, where every token the SDK is given has long expired."""
        for attempt in range(3):
            try:
                self.page.clock.pause_at(self.page.evaluate("() => Date.now()") / 1000 + 1.0)
                return
            except Exception as err:  # the page's clock passed that second before the pause arrived
                if "past" not in str(err) or attempt == 2:
                    raise

    def call(self, function: str, *args: Any, timeout_s: float = 90.0) -> dict[str, Any]:
        """A bridge function's answer. One that returns a promise is started and its answer collected,
        advancing the virtual clock or waiting in real time, until `timeout_s` (page time) has passed:
        a promise the SDK never settles becomes a BridgeError, not a hung run."""
        try:
            if function in IMMEDIATE:
                return self.page.evaluate("([fn, args]) => window.cteBridge[fn](...args)", [function, list(args)])
            ticket = next(self._tickets)
            self.page.evaluate("([t, fn, args]) => window.cteBridge.start(t, fn, args)", [ticket, function, list(args)])
            step = VIRTUAL_STEP_MS if self.virtual_clock else REAL_POLL_MS
            waited = 0
            while (answer := self.page.evaluate("(t) => window.cteBridge.collect(t)", ticket)) is None:
                if waited >= timeout_s * 1000:
                    raise BridgeError(f"the SDK did not answer {function} within {timeout_s:.0f} s of page time")
                self.advance(step)
                waited += step
            return answer
        except BridgeError:
            raise
        except Exception as err:  # the page or browser went away, or Playwright failed
            raise BridgeError(f"the Calling SDK page failed during {function}: {_one_line(err)}") from None

    def expose_token_refresher(self, refresher: Callable[[], str | None]) -> None:
        """`window.cteTokenRefresher()` on the page: the tokenRefresher its credential calls (the bridge's
        createTeamsCallAgent with `{refresher: true}`) runs `refresher` here and gets its token back."""
        try:
            self.page.expose_function("cteTokenRefresher", refresher)
        except Exception as err:
            raise BridgeError(f"the token refresher could not be exposed to the page: {_one_line(err)}") from None

    def advance(self, ms: int) -> None:
        """Let page time pass: on the virtual clock by running it, else by waiting."""
        if self.virtual_clock:
            self.page.clock.run_for(ms)
        else:
            self.page.wait_for_timeout(ms)

    def transcript(self) -> list[dict[str, Any]]:
        return self.page.evaluate("() => window.cteBridge.transcript()")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self.context.close()
        if self.on_close is not None:
            with contextlib.suppress(ValueError):
                self.on_close(self)


class CallingSdkBrowser:
    """Chromium with the SDK page server; `offline=True` aborts every request that is not to the page.

    Each `open_page()` is a fresh browser context (its own storage), for one TeamsCallAgent.
    """

    def __init__(self, *, offline: bool = True, virtual_clock: bool = False) -> None:
        check_available()
        self.offline, self.virtual_clock = offline, virtual_clock
        self.blocked_hosts: set[str] = set()
        self._watched: list[tuple[str, set[str]]] = []  # a token, and the hosts it was sent to
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="cte-sdk-page", daemon=True)
        self._stack = contextlib.ExitStack()
        self.pages: list[SdkPage] = []

    @property
    def url(self) -> str:
        return f"http://localhost:{self._server.server_address[1]}/index.html"

    def __enter__(self) -> CallingSdkBrowser:
        self._thread.start()
        self._stack.callback(self._server.server_close)
        self._stack.callback(self._server.shutdown)
        # Offline, names other than localhost do not resolve: no WebSocket or WebRTC leaves either.
        args = [*FLAGS, *OFFLINE_FLAGS] if self.offline else FLAGS
        try:
            self.browser = playwright().chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        except Exception as err:
            self._stack.close()
            raise BridgeError(f"chromium did not start: {_one_line(err)}") from None
        self._stack.callback(self.browser.close)
        return self

    def __exit__(self, *exc: object) -> None:
        for page in list(self.pages):
            page.close()
        self._stack.close()

    def open_page(self, start: float | None = None) -> SdkPage:
        """`start`: where the page's virtual clock begins (SdkPage)."""
        context = self.browser.new_context(
            user_agent=USER_AGENT, permissions=["camera", "microphone"], service_workers="block"
        )
        if self.offline:
            context.route("**/*", self._only_loopback)
            context.route_web_socket(re.compile(r"^(?!wss?://(localhost|127\.0\.0\.1)[:/]).*"), self._no_socket)
        page = SdkPage(context, self.url, virtual_clock=self.virtual_clock, on_close=self.pages.remove, start=start)
        self.pages.append(page)
        return page

    def watch(self, token: str, sent_to: set[str]) -> None:
        """Offline: add to `sent_to` every host the SDK sends `token` to (in a header or a body) from now on.
        The token is compared here and kept nowhere else; only host names come out."""
        self._watched.append((token, sent_to))

    def _no_socket(self, socket: Any) -> None:
        self.blocked_hosts.add(urlsplit(socket.url).hostname or "")
        socket.close()

    def _only_loopback(self, route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if self._watched:
            request = route.request
            headers = " ".join(request.headers.values())
            try:
                body = request.post_data_buffer or b""
            except Exception:  # a body Playwright cannot hand over: the headers still count
                body = b""
            for token, hosts in self._watched:
                if token in headers or token.encode() in body:
                    hosts.add(host)
        if host in ("localhost", "127.0.0.1"):
            route.continue_()
        else:
            self.blocked_hosts.add(host)
            route.abort()


_PLAYWRIGHT: list[Any] = []  # one Playwright per process: its sync API allows no second one in a thread
_SHARED: dict[tuple[bool, bool], CallingSdkBrowser] = {}


def playwright() -> Any:
    """The process's Playwright (sync API), started on first use, stopped at exit: use it, never a second one."""
    if not _PLAYWRIGHT:
        from playwright.sync_api import sync_playwright

        _PLAYWRIGHT.append(sync_playwright().start())
        atexit.register(_stop_playwright)
    return _PLAYWRIGHT[0]


def _stop_playwright() -> None:
    close_shared_browsers()
    if _PLAYWRIGHT:
        with contextlib.suppress(Exception):
            _PLAYWRIGHT.pop().stop()


def shared_browser(*, offline: bool, virtual_clock: bool) -> CallingSdkBrowser:
    """One browser per process (and kind) for every driver: launching Chromium for each scenario
    would cost ~0.7 s each. Each agent still gets a fresh browser context of its own."""
    key = (offline, virtual_clock)
    if key not in _SHARED:
        _SHARED[key] = CallingSdkBrowser(offline=offline, virtual_clock=virtual_clock).__enter__()
    return _SHARED[key]


def close_shared_browsers() -> None:
    while _SHARED:
        _, browser = _SHARED.popitem()
        with contextlib.suppress(Exception):
            browser.__exit__(None, None, None)


class CallingSdkPage(CallingSdkBrowser):
    """A browser with one SDK page: the offline checks in a few calls (tests, benchmarks)."""

    def __enter__(self) -> CallingSdkPage:
        super().__enter__()
        try:
            self.sdk = self.open_page()
        except Exception:
            self.__exit__()
            raise
        self.page, self.load_ms = self.sdk.page, self.sdk.load_ms
        return self

    def call(self, function: str, *args: Any, timeout_ms: int = 90_000) -> SdkAnswer:
        return SdkAnswer.from_bridge(self.sdk.call(function, *args, timeout_s=timeout_ms / 1000))

    def create_teams_call_agent(self, acs_token: str) -> SdkAnswer:
        return self.call("createTeamsCallAgent", acs_token)

    def join(self, locator: dict[str, Any]) -> SdkAnswer:
        return self.call("join", locator)

    def transcript(self) -> list[dict[str, Any]]:
        return self.sdk.transcript()


@functools.cache
def sdk_version_installed() -> str | None:
    package = SDK_DIR / "node_modules" / "@azure" / "communication-calling" / "package.json"
    return json.loads(package.read_text(encoding="utf-8"))["version"] if package.is_file() else None
