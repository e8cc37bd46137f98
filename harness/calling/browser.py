"""The real ACS Calling SDK (`@azure/communication-calling`) in headless Chromium, driven over a JSON
bridge on a page served from `http://localhost` (the SDK refuses 127.0.0.1 over http).

The SDK is installed from npm at set-up time (`make calling-sdk`) into `.cache/calling-sdk/` and
bundled there with esbuild; it is never committed (Microsoft's proprietary licence). SDK_VERSION is
the one place its version is pinned. Offline (every non-loopback request aborted), the SDK still
answers its client-side checks: contracts/calling.md §4 (40231, 40238, 40210, 40209).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SDK_VERSION = "2.0.0"
ROOT = Path(__file__).resolve().parents[2]
SDK_DIR = Path(os.environ.get("CTE_CALLING_SDK_DIR") or ROOT / ".cache" / "calling-sdk")
BUNDLE = SDK_DIR / "calling-sdk.js"
PAGE_DIR = Path(__file__).resolve().parent / "browser_page"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
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


class CallingSdkPage:
    """The SDK page in headless Chromium. `offline=True` aborts every request that is not to the page."""

    def __init__(self, *, offline: bool = True) -> None:
        check_available()
        self.offline = offline
        self.blocked_hosts: set[str] = set()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="cte-sdk-page", daemon=True)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> CallingSdkPage:
        from playwright.sync_api import sync_playwright

        self._thread.start()
        self._stack.callback(self._server.server_close)
        self._stack.callback(self._server.shutdown)
        playwright = self._stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        self._stack.callback(browser.close)
        context = browser.new_context(user_agent=USER_AGENT, permissions=["camera", "microphone"])
        if self.offline:
            context.route("**/*", self._only_loopback)
        self.page = context.new_page()
        started = time.perf_counter()
        self.page.goto(f"http://localhost:{self._server.server_address[1]}/index.html")
        self.page.wait_for_function("() => window.cteBridge && window.cteBridge.version().loaded", timeout=60_000)
        self.load_ms = (time.perf_counter() - started) * 1000
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _only_loopback(self, route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if host in ("localhost", "127.0.0.1"):
            route.continue_()
        else:
            self.blocked_hosts.add(host)
            route.abort()

    def call(self, function: str, *args: Any, timeout_ms: int = 90_000) -> SdkAnswer:
        self.page.set_default_timeout(timeout_ms)
        return SdkAnswer.from_bridge(self.page.evaluate(f"(args) => window.cteBridge.{function}(...args)", list(args)))

    def create_teams_call_agent(self, acs_token: str) -> SdkAnswer:
        return self.call("createTeamsCallAgent", acs_token)

    def join(self, locator: dict[str, Any]) -> SdkAnswer:
        return self.call("join", locator)

    def transcript(self) -> list[dict[str, Any]]:
        return self.page.evaluate("() => window.cteBridge.transcript()")


@functools.cache
def sdk_version_installed() -> str | None:
    package = SDK_DIR / "node_modules" / "@azure" / "communication-calling" / "package.json"
    return json.loads(package.read_text(encoding="utf-8"))["version"] if package.is_file() else None
