"""A Teams user signing in through a browser, as a partner's single-page app does: Microsoft's own
`@azure/msal-browser` runs the authorization code flow with PKCE (docs/contracts/identity.md §11).

The library is installed from npm at set-up time (`make msal-browser`, the version pinned here as
MSAL_BROWSER_VERSION) and bundled with esbuild into `.cache/msal-browser/`; it is never committed. Headless
Chromium loads a small SPA page at the app's redirect URI (an http://localhost page: a secure context, so
WebCrypto works). The page does what a partner's SPA does: a `PublicClientApplication` for the profile's
authority and app (an authority that is not one of Microsoft's hosts is named in `knownAuthorities`; the
authority's OpenID configuration, which the page reads once per visit, is handed over as `authorityMetadata`,
so that MSAL.js makes the same requests whatever the host: it has Microsoft's hosts' endpoints built in, and
a recording against a served authority replays at Microsoft's host name), `handleRedirectPromise()` on load,
`loginRedirect()` for the Teams scopes. MSAL.js makes the PKCE verifier, the state and the nonce, sends the
browser to the authorize endpoint, and back at the redirect URI checks the state, redeems the code with
`fetch` (Chromium adds the Origin header Entra tells a SPA by) and checks the ID token's nonce. The harness
types the test user's name and password into the sign-in page and observes the outcome twice: what MSAL.js
handed the app (a token, or the error it threw) from the page, and each answer of the authority on the wire.

Every request of the browser goes through Playwright's request interception: the page and the bundle are
served from memory (nothing listens on the redirect URI's port), and the requests to the authority are sent
by this process (requests, through the profile's CA bundle and host routes) with the headers the browser set
that Entra reads (Content-Type, Origin), so that record and replay see them like any other request. A
replayed recording does not keep CORS headers: in replay the answer is shown to the page as readable. A back
end redeeming the code (`redeem="server"`) is this process sending MSAL.js's redemption on without the
browser's Origin header, the answer relayed to the page. In record and replay the page's clock is pinned and
its randomness seeded, so that MSAL.js's state, nonce, verifier and correlation id are the same every run
and a recording replays.

The waits are event-driven: one `wait_for_function` (evaluated by the page at each animation frame, across
navigations) on a small state function installed in every page of the context says what the browser shows
(the sign-in form, an error, the app's answer); nothing sleeps or polls from here.

The sign-in page is the sandbox's form (an email and a password field); Microsoft's own sign-in page asks for
the email first, then the password, then "Stay signed in?": the same states drive it (not exercised against
a live tenant by the harness's tests).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import functools
import json
import os
import re
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from harness.client.auth import MAX_RETRY_WAIT_S, TRANSIENT_RETRIES, ObservingSession, retry_after_s
from harness.core.config import Secret, Tenant, UserCredentials
from harness.core.places import CACHE_DIR
from harness.core.prerequisites import MissingPrerequisite
from harness.wire import contract, tokens

# The one place the version is pinned: the Makefile's msal-browser target reads it from here.
MSAL_BROWSER_VERSION = "5.30.0"
MSAL_DIR = Path(os.environ.get("CTE_MSAL_BROWSER_DIR") or CACHE_DIR / "msal-browser")
MSAL_BUNDLE = MSAL_DIR / "msal-browser.js"
BUNDLE_PATH = "/.cte/msal-browser.js"  # where the SPA page loads the bundle from (served from memory)
SIGN_IN_TIMEOUT_S = 45.0
# Record and replay: the page's clock (the sandbox's model epoch) and the seed of its randomness.
PINNED_CLOCK = datetime.datetime(2026, 1, 5, 9, 0, 0, tzinfo=datetime.UTC)
SEED = 20260105
# Microsoft's own authority hosts, which MSAL.js knows; any other is named in knownAuthorities.
MICROSOFT_AUTHORITY_HOSTS = (
    contract.ENTRA_HOST,
    "login.microsoft.com",
    "login.windows.net",
    "sts.windows.net",
    "login.microsoftonline.us",
    "login-us.microsoftonline.com",
    "login.partner.microsoftonline.cn",
)
TOKEN_SUFFIX = "/oauth2/v2.0/token"
AUTHORIZE_SUFFIX = "/oauth2/v2.0/authorize"
AADSTS = re.compile(r"AADSTS(\d+):?\s*([^<\r\n]*)")
# Parameters whose values are secrets wherever they turn up (a URL in an error, the page's address).
SECRET_PARAMETER = re.compile(
    r"((?:^|[?#&\s])(?:code|code_verifier|id_token|access_token|refresh_token|client_info|password)=)[^&#\s\"']+"
)
# What the browser sets that Entra reads; the others (user agent, cookies, fetch metadata) stay in the browser.
FORWARDED_REQUEST_HEADERS = ("content-type", "origin", "accept")
RETURNED_HEADERS = (
    "content-type",
    "location",
    "cache-control",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    contract.EMULATOR_DEFINED_HEADER,
)
EMAIL_FIELD = "input[type=email]:visible, input[name=loginfmt]:visible"
PASSWORD_FIELD = "input[type=password]:visible"
STAY_SIGNED_IN_NO = "#idBtn_Back:visible"  # Microsoft's "Stay signed in?": No


@dataclass
class BrowserSignIn:
    """One browser sign-in's outcome, as evidence: never the secrets themselves in a repr."""

    alias: str
    redirect_uri: str
    redeemed_by: str  # "browser": the page redeemed the code (with Origin); "server": a back end did (without)
    stage: str = "authorize"  # how far it got: authorize | sign-in | redeem | done
    access_token: Secret | None = field(default=None, repr=False)
    claims: dict[str, Any] = field(default_factory=dict, repr=False)
    status: int | None = None
    error: str | None = None
    aadsts: int | None = None
    description: str | None = None
    request_id: str | None = None
    emulator_defined: str | None = None
    origin: str | None = None  # the Origin header the redemption carried
    app_saw: str | None = None  # what MSAL.js handed the app: "an access token (...)" or the error it threw
    requests: list[str] = field(default_factory=list)  # "METHOD path -> status", in order

    @property
    def ok(self) -> bool:
        return self.access_token is not None

    @property
    def oid(self) -> str | None:
        return self.claims.get("oid")


def check_available() -> None:
    """Chromium, Playwright and the msal-browser bundle, or MissingPrerequisite naming what to install."""
    from harness.client.calling.browser import CHROMIUM

    if not os.path.exists(CHROMIUM):
        raise MissingPrerequisite("the browser sign-in needs Chromium: apt-get install -y chromium (make chromium)")
    installed = msal_browser_installed()
    if not MSAL_BUNDLE.is_file() or installed != MSAL_BROWSER_VERSION:
        found = f" (found {installed})" if installed and MSAL_BUNDLE.is_file() else ""
        raise MissingPrerequisite(
            f"the browser sign-in needs @azure/msal-browser {MSAL_BROWSER_VERSION} bundled in {MSAL_DIR}{found} "
            "(make msal-browser)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise MissingPrerequisite("the browser sign-in needs playwright: pip install -e '.[dev]'") from None


@functools.cache
def msal_browser_installed() -> str | None:
    """The version of @azure/msal-browser npm installed next to the bundle, if any."""
    package = MSAL_DIR / "node_modules" / "@azure" / "msal-browser" / "package.json"
    return json.loads(package.read_text(encoding="utf-8")).get("version") if package.is_file() else None


@functools.cache
def _bundle() -> bytes:
    return MSAL_BUNDLE.read_bytes()


def sign_in_in_browser(
    tenant: Tenant,
    user: UserCredentials,
    scopes: Sequence[str] = contract.TEAMS_SCOPES,
    *,
    redirect_uri: str | None = None,
    redeem: str = "browser",
) -> BrowserSignIn:
    """Sign `user` in through MSAL.js in the browser at `redirect_uri` (default: the profile's [app]
    redirect_uri); the code redeemed by the page (`redeem="browser"`, as a SPA does) or by a back end without
    the browser's Origin header (`redeem="server"`, as a back end or a native app does)."""
    uri = redirect_uri or tenant.redirect_uri
    if not uri:
        raise MissingPrerequisite(
            f"profile {tenant.profile!r} names no redirect URI for a browser sign-in; set [app] redirect_uri "
            '(and platform = "spa") to the URI your app registration lists'
        )
    check_available()
    from harness.client.calling.browser import CHROMIUM, playwright

    result = BrowserSignIn(user.alias, uri, redeem)
    pinned = tenant.mode in ("record", "replay")
    authority_host = (urllib.parse.urlsplit(tenant.authority).hostname or "").lower()
    config = {
        "authority": tenant.authority,
        "knownAuthorities": [] if authority_host in MICROSOFT_AUTHORITY_HOSTS else [_host(tenant.authority)],
        "clientId": tenant.client_id,
        "redirectUri": uri,
        "scopes": list(scopes),
        "pageOrigin": _js_origin(uri),
        "seed": SEED if pinned else None,  # record and replay: the same state, nonce and verifier every time
    }
    proxy = _AuthorityProxy(tenant, uri, result)
    # One Chromium per process, a new context (its own cookies and storage: a first visit) per sign-in:
    # launching the browser is most of a sign-in's time.
    context = _browser(lambda: playwright().chromium.launch(executable_path=CHROMIUM, headless=True)).new_context(
        service_workers="block"
    )
    try:
        if pinned:
            context.clock.set_fixed_time(PINNED_CLOCK)  # MSAL.js's ids are UUIDv7: time, then randomness
        context.add_init_script(_INIT_SCRIPT.replace("__CONFIG__", json.dumps(config)))
        context.route("**/*", proxy.handle)
        page = context.new_page()
        page.goto(uri, wait_until="commit")
        outcome = _drive(page, proxy, user)
    finally:
        with contextlib.suppress(Exception):
            context.close()
        proxy.close()
    _conclude(result, outcome, proxy)
    return result


_BROWSERS: list[Any] = []  # the process's Chromium for sign-ins, launched on first use, closed at exit


def _browser(launch: Any) -> Any:
    if not _BROWSERS or not _BROWSERS[0].is_connected():
        _BROWSERS[:] = [launch()]
        atexit.register(_close_browser)  # before Playwright itself stops (atexit runs last-registered first)
    return _BROWSERS[0]


def _close_browser() -> None:
    while _BROWSERS:
        with contextlib.suppress(Exception):
            _BROWSERS.pop().close()


class _AuthorityProxy:
    """Answers the browser's requests: the SPA page and the bundle from memory, the authority's through this
    process (a back end's redemption without the browser's Origin header)."""

    def __init__(self, tenant: Tenant, redirect_uri: str, result: BrowserSignIn) -> None:
        self.tenant, self.result = tenant, result
        self.page_origin = _origin(redirect_uri)
        self.authority_origin = _origin(tenant.authority)
        self.session = ObservingSession(tenant.ca_bundle, tenant.authority, use_proxy=not tenant.host_routes)
        self.exchanges: list[tuple[str, str, int, dict[str, str], str]] = []  # method, path, status, headers, text
        self.redemption_origin: str | None = None  # the Origin header the last code redemption carried
        self.failure: str | None = None

    def close(self) -> None:
        self.session.close()

    def handle(self, route: Any) -> None:
        request = route.request
        origin = _origin(request.url)
        try:
            if origin == self.page_origin:
                if urllib.parse.urlsplit(request.url).path == BUNDLE_PATH:
                    route.fulfill(status=200, content_type="text/javascript; charset=utf-8", body=_bundle())
                else:
                    route.fulfill(status=200, content_type="text/html; charset=utf-8", body=_SPA_PAGE)
            elif origin == self.authority_origin:
                self._forward(route, request)
            elif self.tenant.mode == "live":
                route.continue_()  # Microsoft's sign-in page loads its scripts and styles from its CDN
            else:
                route.abort()
        except Exception as err:  # noqa: BLE001 (a failed request is the outcome, not a crash of the harness)
            self.failure = _redacted(f"{type(err).__name__}: {err}".splitlines()[0])[:300]
            with contextlib.suppress(Exception):
                if request.is_navigation_request():  # a page that says so, which the state function reads
                    route.fulfill(status=502, content_type="text/html; charset=utf-8", body=_PROXY_FAILURE_PAGE)
                else:
                    route.abort()

    def _forward(self, route: Any, request: Any) -> None:
        sent = request.all_headers()
        headers = {k: v for k, v in sent.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
        path = urllib.parse.urlsplit(request.url).path
        browser_origin = next((v for k, v in headers.items() if k.lower() == "origin"), None)
        redemption = request.method == "POST" and path.endswith(TOKEN_SUFFIX)
        by_back_end = redemption and self.result.redeemed_by == "server"
        if by_back_end:  # the page hands the code to its back end, which redeems it: no browser, no Origin
            headers = {k: v for k, v in headers.items() if k.lower() != "origin"}
        if redemption:
            self.redemption_origin = None if by_back_end else browser_origin
        for tries in range(TRANSIENT_RETRIES + 1):
            # A transient failure of the authority (throttled, unavailable, a dropped connection) is the
            # network's, not the sign-in's: waited out and tried again, as the harness's other clients do.
            last = tries == TRANSIENT_RETRIES
            try:
                response = self.session.request(
                    request.method,
                    request.url,
                    data=request.post_data_buffer,
                    headers=headers,
                    allow_redirects=False,
                    timeout=30,
                )
            except requests.ConnectionError:
                if last:
                    raise
                self.result.requests.append(f"{request.method} {path}: connection dropped; tried again")
                time.sleep(0.5)
                continue
            wait = retry_after_s(dict(response.headers), default=MAX_RETRY_WAIT_S + 1)
            if last or response.status_code not in (429, 503) or wait > MAX_RETRY_WAIT_S:
                break
            self.result.requests.append(f"{request.method} {path} -> {response.status_code}; waited {wait:g} s")
            time.sleep(wait)
        self.exchanges.append((request.method, path, response.status_code, dict(response.headers), response.text))
        self.result.requests.append(
            f"{request.method} {path} -> {response.status_code}" + (" (no Origin)" if by_back_end else "")
        )
        location = response.headers.get("location")
        if response.is_redirect and location and request.is_navigation_request():
            # Playwright does not route a redirect's next hop (it goes to the network, where nothing listens on
            # the redirect URI's port: refused, then Chromium's reload a second later): the browser is sent on
            # by a page that navigates there at once, and that navigation is routed like the first.
            target = json.dumps(urllib.parse.urljoin(request.url, location)).replace("</", "<\\/")
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=_REDIRECT_PAGE % target)
            return
        returned = {k: v for k, v in response.headers.items() if k.lower() in RETURNED_HEADERS}
        if browser_origin and (by_back_end or self.tenant.mode == "replay"):
            # The back end relays its answer to the page; a recording keeps no CORS headers: either way the
            # page reads what the authority answered.
            returned.setdefault("access-control-allow-origin", "*")
        route.fulfill(status=response.status_code, headers=returned, body=response.content)

    def last(self, suffix: str, method: str | None = None) -> tuple[str, str, int, dict[str, str], str] | None:
        return next(
            (e for e in reversed(self.exchanges) if e[1].endswith(suffix) and method in (None, e[0])),
            None,
        )


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _js_origin(url: str) -> str:
    """`location.origin` of a page at `url` (the default port left out)."""
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{(parts.hostname or '').lower()}{port}"


def _host(url: str) -> str:
    """host[:port] of `url`, as MSAL.js's knownAuthorities compares it."""
    return urllib.parse.urlsplit(url).netloc.lower()


def _drive(page: Any, proxy: _AuthorityProxy, user: UserCredentials) -> dict[str, Any]:
    """Wait for what the browser shows, act on the sign-in form, until the SPA page has MSAL.js's answer, the
    sign-in page shows an error, or the time is up. The page's answer, or what stopped it."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    deadline = time.monotonic() + SIGN_IN_TIMEOUT_S
    handled: list[str] = []  # the form states acted on: the page may still show them while it navigates
    while (left_ms := (deadline - time.monotonic()) * 1000) > 0:
        try:
            state = page.wait_for_function(_STATE_WAIT, arg=handled, timeout=left_ms).json_value()
        except PlaywrightTimeout:
            break
        except PlaywrightError as err:
            return {"stage": "page", "ok": False, "error": _redacted(str(err).splitlines()[0])[:300]}
        kind = state["state"]
        if kind == "done":
            return state["answer"]
        if kind == "proxy":
            return {"stage": "proxy", "ok": False, "error": proxy.failure or "the authority could not be reached"}
        if kind == "error":
            submitted = "credentials" in handled or "password" in handled
            return {"stage": "sign-in" if submitted else "authorize", "ok": False, "page": state["text"]}
        handled.append(kind)
        with contextlib.suppress(PlaywrightError):  # a navigation under way: the next state says what follows
            if kind in ("credentials", "email"):
                page.locator(EMAIL_FIELD).first.fill(user.upn)
            if kind in ("credentials", "password"):
                page.locator(PASSWORD_FIELD).first.fill(str(user.password))
            if kind == "kmsi":
                page.locator(STAY_SIGNED_IN_NO).first.click()
            else:
                page.locator(PASSWORD_FIELD if kind != "email" else EMAIL_FIELD).first.press("Enter")
    error = proxy.failure or f"no answer within {SIGN_IN_TIMEOUT_S:.0f} s at {_redacted(page.url)}"
    return {"stage": "proxy" if proxy.failure else "timeout", "ok": False, "error": error}


def _conclude(result: BrowserSignIn, outcome: dict[str, Any], proxy: _AuthorityProxy) -> None:
    stage = outcome.get("stage")
    if stage in ("authorize", "sign-in"):  # the sign-in page showed an error: it never went back to the app
        result.stage = stage
        _from_page(result, proxy.last(AUTHORIZE_SUFFIX), outcome.get("page", ""))
        return
    if stage in ("proxy", "timeout", "page"):
        result.stage = "sign-in"
        result.error = outcome.get("error") or stage
        return
    # MSAL.js answered the app: a token, or the error it threw.
    result.app_saw = _what_the_app_saw(outcome)
    redemption = proxy.last(TOKEN_SUFFIX, "POST")
    if redemption is None:  # the authorize request came back with an error (consent, scope), or MSAL.js stopped
        result.stage = "sign-in"
        result.error = proxy.failure or outcome.get("errorCode") or "no answer"
        result.description = _redacted(outcome.get("errorMessage") or "") or None
        result.aadsts = _code(result.description)
        last = proxy.last(AUTHORIZE_SUFFIX)
        result.status = last[2] if last else None
        result.emulator_defined = _emulated(last)
        return
    result.stage = "redeem"
    result.origin = proxy.redemption_origin
    result.status = redemption[2]
    result.request_id = _header(redemption, "x-ms-request-id")
    result.emulator_defined = _emulated(redemption)
    try:
        body = json.loads(redemption[4])
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    if outcome.get("ok") and outcome.get("accessToken"):
        token = str(outcome["accessToken"])
        result.access_token = Secret(token)
        result.claims = tokens.claims(token)
        result.stage = "done"
        return
    if result.status == 200:  # the authority issued the tokens, MSAL.js refused them (a nonce, a state)
        result.error = outcome.get("errorCode") or "no token"
        result.description = _redacted(outcome.get("errorMessage") or "") or None
        return
    result.error = body.get("error") or f"HTTP {result.status}"
    result.description = body.get("error_description")
    codes = body.get("error_codes") or []
    result.aadsts = int(codes[0]) if codes else _code(result.description)


def _what_the_app_saw(outcome: dict[str, Any]) -> str:
    if outcome.get("ok"):
        scopes = " ".join(str(s).rsplit("/", 1)[-1] for s in outcome.get("scopes") or [])
        return f"an access token ({scopes})" if scopes else "an access token"
    found = _code(outcome.get("errorMessage"))
    said = " ".join(str(p) for p in (outcome.get("name"), outcome.get("errorCode")) if p)
    return f"{said or 'an error'}" + (f" (AADSTS{found})" if found else "")


def _from_page(result: BrowserSignIn, entry: tuple[str, str, int, dict[str, str], str] | None, text: str) -> None:
    """An error the sign-in page showed (it cannot redirect to an unknown URI; a wrong password stays on it)."""
    result.status = entry[2] if entry else None
    result.request_id = _header(entry, "x-ms-request-id")
    result.emulator_defined = _emulated(entry)
    found = AADSTS.search(text or (entry[4] if entry else ""))
    if found:
        result.aadsts = int(found.group(1))
        result.description = f"AADSTS{found.group(1)}: {found.group(2).strip()}"
    error = re.search(r'data-error="([^"]+)"', entry[4]) if entry else None
    result.error = error.group(1) if error else ("invalid_request" if result.aadsts else "sign-in page error")


def _header(entry: tuple[str, str, int, dict[str, str], str] | None, name: str) -> str | None:
    if entry is None:
        return None
    return next((v for k, v in entry[3].items() if k.lower() == name), None)


def _emulated(entry: tuple[str, str, int, dict[str, str], str] | None) -> str | None:
    return _header(entry, contract.EMULATOR_DEFINED_HEADER.lower())


def _redacted(text: str) -> str:
    """`text` (an error, a URL) without the values of secret parameters: evidence never holds a code."""
    return SECRET_PARAMETER.sub(r"\1<redacted>", text)


def _code(text: str | None) -> int | None:
    found = AADSTS.search(text or "")
    return int(found.group(1)) if found else None


# Runs before any script of every page of the context (the SPA's and the sign-in page's): the sign-in's
# settings; in record and replay, a seeded crypto.getRandomValues (mulberry32) in the SPA page, so that MSAL.js's
# verifier, state, nonce and ids are the same every time; and the state function the harness waits on.
_INIT_SCRIPT = """
window.__cteSignIn = __CONFIG__;
(() => {
  const cfg = window.__cteSignIn;
  if (cfg.seed !== null && location.origin === cfg.pageOrigin) {
    let s = cfg.seed >>> 0;
    const next = () => { s = (s + 0x6D2B79F5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0); };
    Object.defineProperty(crypto, "getRandomValues", { value: (array) => {
      const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
      for (let i = 0; i < bytes.length; i++) bytes[i] = next() & 0xff;
      return array; } });
  }
  const visible = (selector) => Array.from(document.querySelectorAll(selector))
    .some((e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden");
  // What the browser shows: the app's answer, a sign-in form to fill, an error, or nothing to act on yet.
  window.__cteState = () => {
    if (window.cteAnswer) return { state: "done", answer: window.cteAnswer };
    if (document.getElementById("cte-proxy-failure")) return { state: "proxy" };
    if (location.origin === cfg.pageOrigin || !document.body) return null;
    const text = document.body.innerText || "";
    if (/AADSTS\\d+/.test(text)) return { state: "error", text: text.slice(0, 4000) };
    const email = visible("input[type=email], input[name=loginfmt]");
    const password = visible("input[type=password]");
    if (email && password) return { state: "credentials" };
    if (password) return { state: "password" };
    if (email) return { state: "email" };
    if (visible("#idBtn_Back")) return { state: "kmsi" };
    return null;
  };
})();
"""

# What the harness waits on: a state it has not acted on yet.
_STATE_WAIT = """(handled) => {
  const found = window.__cteState ? window.__cteState() : null;
  return found && !handled.includes(found.state) ? found : null;
}"""

# The SPA: a partner's app as MSAL.js's documentation has it, the library from the bundle.
_SPA_PAGE = f"""<!doctype html><html><head><meta charset="utf-8"><title>CTE single-page app</title>
<script src="{BUNDLE_PATH}"></script></head>
<body><p id="status">signing in</p><script>
(async () => {{
  const cfg = window.__cteSignIn;
  const done = (answer) => {{ window.cteAnswer = answer;
    document.getElementById("status").textContent = answer.ok ? "signed in" : "not signed in"; }};
  try {{
    // The authority's OpenID configuration, read once per visit and handed to MSAL.js (authorityMetadata):
    // the same requests whatever the authority's host (MSAL.js has Microsoft's hosts' endpoints built in).
    let metadata = sessionStorage.getItem("cte.authorityMetadata");
    if (!metadata) {{
      const response = await fetch(cfg.authority + "/v2.0/.well-known/openid-configuration");
      metadata = await response.text();
      if (!response.ok) {{
        return done({{ stage: "error", ok: false, name: "OpenIdConfiguration", errorCode: `HTTP ${{response.status}}`,
          errorMessage: metadata.slice(0, 2000) }});
      }}
      sessionStorage.setItem("cte.authorityMetadata", metadata);
    }}
    const app = new msal.PublicClientApplication({{
      auth: {{ clientId: cfg.clientId, authority: cfg.authority, knownAuthorities: cfg.knownAuthorities,
        authorityMetadata: metadata, redirectUri: cfg.redirectUri }},
      cache: {{ cacheLocation: "sessionStorage" }},
    }});
    await app.initialize();
    const result = await app.handleRedirectPromise();
    if (result) {{
      return done({{ stage: "done", ok: true, accessToken: result.accessToken, scopes: result.scopes }});
    }}
    await app.loginRedirect({{ scopes: cfg.scopes }});
  }} catch (e) {{
    done({{ stage: "error", ok: false, name: e && e.name, errorCode: e && e.errorCode,
      errorMessage: (e && (e.errorMessage || e.message)) || String(e), subError: e && e.subError }});
  }}
}})();
</script></body></html>"""

# An authority's redirect (its Location, JSON-quoted), as the browser is given it (see _AuthorityProxy._forward).
_REDIRECT_PAGE = """<!doctype html><html><head><title>Redirecting</title></head>
<body><script>location.replace(%s);</script></body></html>"""

_PROXY_FAILURE_PAGE = """<!doctype html><html><head><title>Not reached</title></head>
<body><p id="cte-proxy-failure">The harness could not reach the authority for this request.</p></body></html>"""
