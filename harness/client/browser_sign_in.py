"""A Teams user signing in through a browser, as a partner's single-page app does: the OAuth 2.0
authorization code flow with PKCE (docs/contracts/identity.md §11).

Headless Chromium loads a tiny SPA page at the app's redirect URI (an http://localhost page). The page's
own JavaScript does what a SPA's sign-in library does: makes a PKCE verifier and its S256 challenge with
WebCrypto, sends the browser to the authorize endpoint, and, back from the sign-in page with `code` and
`state`, checks the state and redeems the code with `fetch` (the browser adds the Origin header Entra tells
a SPA by). The harness types the test user's name and password into the sign-in page.

Every request of the browser goes through Playwright's request interception: the page itself is served
from memory (nothing listens on the redirect URI's port), and the requests to the authority are sent by
this process (requests, through the profile's CA bundle and host routes) with the headers the browser set
that Entra reads (Content-Type, Origin), so that record and replay see them like any other request. A
replayed recording does not keep CORS headers: in replay the answer is shown to the page as readable.
In record and replay the page's randomness (verifier, state) is seeded, so that a recording replays.

The sign-in page is the sandbox's form (an email and a password field); Microsoft's own sign-in page
asks for the email first, then the password, then "Stay signed in?": the same steps drive it (not
exercised against a live tenant by the harness's tests).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from harness.client.auth import MAX_RETRY_WAIT_S, TRANSIENT_RETRIES, ObservingSession, retry_after_s
from harness.core.config import Secret, Tenant, UserCredentials
from harness.core.prerequisites import MissingPrerequisite
from harness.wire import contract, tokens

SIGN_IN_TIMEOUT_S = 45.0
AADSTS = re.compile(r"AADSTS(\d+):?\s*([^<\r\n]*)")
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


@dataclass
class BrowserSignIn:
    """One browser sign-in's outcome, as evidence: never the secrets themselves in a repr."""

    alias: str
    redirect_uri: str
    redeemed_by: str  # "browser": the page redeemed the code (with Origin); "server": this process did (without)
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
    requests: list[str] = field(default_factory=list)  # "METHOD path -> status", in order

    @property
    def ok(self) -> bool:
        return self.access_token is not None

    @property
    def oid(self) -> str | None:
        return self.claims.get("oid")


def check_available() -> None:
    """Chromium and Playwright, or MissingPrerequisite naming what to install."""
    from harness.client.calling.browser import CHROMIUM

    if not os.path.exists(CHROMIUM):
        raise MissingPrerequisite("the browser sign-in needs Chromium: apt-get install -y chromium (make chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise MissingPrerequisite("the browser sign-in needs playwright: pip install -e '.[dev]'") from None


def sign_in_in_browser(
    tenant: Tenant,
    user: UserCredentials,
    scopes: Sequence[str] = contract.TEAMS_SCOPES,
    *,
    redirect_uri: str | None = None,
    redeem: str = "browser",
    response_mode: str = "query",
) -> BrowserSignIn:
    """Sign `user` in through the browser at `redirect_uri` (default: the profile's [app] redirect_uri);
    the code redeemed by the page (`redeem="browser"`, as a SPA does) or by this process without an Origin
    header (`redeem="server"`, as a back end or a native app does)."""
    uri = redirect_uri or tenant.redirect_uri
    if not uri:
        raise MissingPrerequisite(
            f"profile {tenant.profile!r} names no redirect URI for a browser sign-in; set [app] redirect_uri "
            '(and platform = "spa") to the URI your app registration lists'
        )
    check_available()
    from harness.client.calling.browser import CHROMIUM, playwright

    result = BrowserSignIn(user.alias, uri, redeem)
    config = {
        "authority": tenant.authority,
        "clientId": tenant.client_id,
        "redirectUri": uri,
        "scope": " ".join([*scopes, "openid", "profile", "offline_access"]),
        "redeem": redeem,
        "responseMode": response_mode,
        # Record and replay: the same verifier and state every time (a recording must replay).
        "seed": 20260105 if tenant.mode in ("record", "replay") else None,
    }
    proxy = _AuthorityProxy(tenant, uri, result)
    # One Chromium per process, a new context (its own cookies and storage: a first visit) per sign-in:
    # launching the browser is most of a sign-in's time.
    context = _browser(lambda: playwright().chromium.launch(executable_path=CHROMIUM, headless=True)).new_context(
        service_workers="block"
    )
    try:
        context.add_init_script(_INIT_SCRIPT.replace("__CONFIG__", json.dumps(config)))
        context.route("**/*", proxy.handle)
        page = context.new_page()
        page.goto(uri)
        outcome = _drive(page, proxy, user)
    finally:
        with contextlib.suppress(Exception):
            context.close()
        proxy.close()
    _conclude(result, outcome, proxy, tenant, uri)
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
    """Answers the browser's requests: the SPA page from memory, the authority's through this process."""

    def __init__(self, tenant: Tenant, redirect_uri: str, result: BrowserSignIn) -> None:
        self.tenant, self.result = tenant, result
        self.page_origin = _origin(redirect_uri)
        self.page_path = urllib.parse.urlsplit(redirect_uri).path or "/"
        self.authority_origin = _origin(tenant.authority)
        self.session = ObservingSession(tenant.ca_bundle, tenant.authority, use_proxy=not tenant.host_routes)
        self.exchanges: list[tuple[str, str, int, dict[str, str], str]] = []  # method, path, status, headers, text
        self.failure: str | None = None

    def close(self) -> None:
        self.session.close()

    def handle(self, route: Any) -> None:
        request = route.request
        origin = _origin(request.url)
        try:
            if origin == self.page_origin:
                route.fulfill(status=200, content_type="text/html; charset=utf-8", body=_SPA_PAGE)
            elif origin == self.authority_origin:
                self._forward(route, request)
            elif self.tenant.mode == "live":
                route.continue_()  # Microsoft's sign-in page loads its scripts and styles from its CDN
            else:
                route.abort()
        except Exception as err:  # noqa: BLE001 (a failed request is the outcome, not a crash of the harness)
            self.failure = f"{type(err).__name__}: {err}".splitlines()[0][:300]
            with contextlib.suppress(Exception):
                route.abort()

    def _forward(self, route: Any, request: Any) -> None:
        sent = request.all_headers()
        headers = {k: v for k, v in sent.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
        path = urllib.parse.urlsplit(request.url).path
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
        self.result.requests.append(f"{request.method} {path} -> {response.status_code}")
        returned = {k: v for k, v in response.headers.items() if k.lower() in RETURNED_HEADERS}
        if "origin" in {k.lower() for k in headers} and self.tenant.mode == "replay":
            # A recording keeps no CORS headers: what the page read when it was recorded, it reads again.
            returned.setdefault("access-control-allow-origin", "*")
        route.fulfill(status=response.status_code, headers=returned, body=response.content)

    def last(self, suffix: str) -> tuple[str, str, int, dict[str, str], str] | None:
        return next((e for e in reversed(self.exchanges) if e[1].endswith(suffix)), None)


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _drive(page: Any, proxy: _AuthorityProxy, user: UserCredentials) -> dict[str, Any]:
    """Type the user's credentials into the sign-in page until the SPA page has its answer, the sign-in
    page shows an error, or the time is up. The page's answer, or what stopped it."""
    deadline = time.monotonic() + SIGN_IN_TIMEOUT_S
    typed_email = submitted = False
    while time.monotonic() < deadline:
        if proxy.failure:
            return {"stage": "proxy", "ok": False, "error": proxy.failure}
        try:
            if _origin(page.url) == proxy.page_origin:
                answer = page.evaluate("() => window.cteResult || null")
                if answer:
                    return answer
            elif _origin(page.url) == proxy.authority_origin:
                password = page.locator("input[type=password]:visible")
                email = page.locator("input[type=email]:visible, input[name=loginfmt]:visible")
                text = page.inner_text("body", timeout=2000)
                if "AADSTS" in text and (submitted or password.count() == 0):
                    return {"stage": "sign-in" if submitted else "authorize", "ok": False, "page": text}
                if email.count() and not typed_email:
                    email.first.fill(user.upn)
                    typed_email = True
                    if password.count() == 0:
                        email.first.press("Enter")
                        continue
                if password.count() and not submitted:
                    password.first.fill(str(user.password))
                    submitted = True
                    password.first.press("Enter")
                    continue
                stay = page.locator("#idBtn_Back:visible")  # Microsoft's "Stay signed in?": No
                if stay.count():
                    stay.first.click()
        except Exception:  # noqa: BLE001,S110 (a navigation under way: look again)
            pass
        page.wait_for_timeout(100)
    return {"stage": "timeout", "ok": False, "error": f"no answer within {SIGN_IN_TIMEOUT_S:.0f} s at {page.url}"}


def _conclude(
    result: BrowserSignIn, outcome: dict[str, Any], proxy: _AuthorityProxy, tenant: Tenant, redirect_uri: str
) -> None:
    stage = outcome.get("stage")
    if stage in ("authorize", "sign-in"):
        result.stage = stage
        last = proxy.last("/oauth2/v2.0/authorize")
        _from_page(result, last, outcome.get("page", ""))
        return
    if stage == "redirect-error":  # the authorize endpoint redirected back with error (consent, scope)
        result.stage = "sign-in"
        result.error = outcome.get("error")
        result.description = outcome.get("error_description")
        result.aadsts = _code(result.description)
        last = proxy.last("/oauth2/v2.0/authorize")
        result.status = last[2] if last else None
        result.emulator_defined = _emulated(last)
        return
    if stage in ("proxy", "timeout", "page", "state"):
        result.stage = "sign-in" if stage != "page" else "redeem"
        result.error = outcome.get("error") or stage
        return
    result.stage = "redeem"
    if outcome.get("redeem") == "server":
        _redeem_here(result, tenant, redirect_uri, outcome, proxy)
        return
    result.origin = outcome.get("origin")
    last = proxy.last("/oauth2/v2.0/token")
    _from_token_answer(result, outcome.get("status"), outcome.get("body"), last)


def _redeem_here(
    result: BrowserSignIn, tenant: Tenant, redirect_uri: str, outcome: dict[str, Any], proxy: _AuthorityProxy
) -> None:
    """Redeem the page's code from this process, as a back end would: no Origin header."""
    body = {
        "client_id": tenant.client_id,
        "grant_type": "authorization_code",
        "code": outcome.get("code", ""),
        "redirect_uri": redirect_uri,
        "code_verifier": outcome.get("verifier", ""),
        "scope": outcome.get("scope", ""),
    }
    with ObservingSession(tenant.ca_bundle, tenant.authority, use_proxy=not tenant.host_routes) as session:
        try:
            response = session.post(f"{tenant.authority}/oauth2/v2.0/token", data=body, timeout=30)
        except requests.RequestException as err:
            result.error = f"{type(err).__name__}: {err}".splitlines()[0][:300]
            return
    result.requests.append(f"POST {urllib.parse.urlsplit(response.url).path} -> {response.status_code} (no Origin)")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    entry = ("POST", "/token", response.status_code, dict(response.headers), response.text)
    _from_token_answer(result, response.status_code, answer, entry)


def _from_token_answer(
    result: BrowserSignIn, status: Any, body: Any, entry: tuple[str, str, int, dict[str, str], str] | None
) -> None:
    result.status = int(status) if isinstance(status, int) else (entry[2] if entry else None)
    result.request_id = _header(entry, "x-ms-request-id")
    result.emulator_defined = _emulated(entry)
    body = body if isinstance(body, dict) else {}
    if result.status == 200 and body.get("access_token"):
        result.access_token = Secret(str(body["access_token"]))
        result.claims = tokens.claims(str(body["access_token"]))
        result.stage = "done"
        return
    result.error = body.get("error") or (f"HTTP {result.status}" if result.status else "no answer")
    result.description = body.get("error_description")
    codes = body.get("error_codes") or []
    result.aadsts = int(codes[0]) if codes else _code(result.description)


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


def _code(text: str | None) -> int | None:
    found = AADSTS.search(text or "")
    return int(found.group(1)) if found else None


# Runs before the page's own script on every page of the context: the sign-in's settings and, in record and
# replay, a seeded crypto.getRandomValues (mulberry32), so that the verifier and the state are the same.
_INIT_SCRIPT = """
window.__cteSignIn = __CONFIG__;
if (window.__cteSignIn.seed !== null && location.protocol === "http:") {
  let s = window.__cteSignIn.seed >>> 0;
  const next = () => { s = (s + 0x6D2B79F5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0); };
  Object.defineProperty(crypto, "getRandomValues", { value: (array) => {
    const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    for (let i = 0; i < bytes.length; i++) bytes[i] = next() & 0xff;
    return array; } });
}
"""

# The SPA: start the authorization code flow with PKCE, or finish it back at the redirect URI.
_SPA_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>CTE single-page app</title></head>
<body><p id="status">signing in</p><script>
(async () => {
  const cfg = window.__cteSignIn;
  const done = (answer) => { window.cteResult = answer;
    document.getElementById("status").textContent = JSON.stringify({ stage: answer.stage, ok: answer.ok }); };
  const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\\+/g, "-").replace(/\\//g, "_")
    .replace(/=+$/, "");
  try {
    const params = new URLSearchParams(location.search.length > 1 ? location.search.slice(1) : location.hash.slice(1));
    if (!params.has("code") && !params.has("error")) {
      const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
      const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
      sessionStorage.setItem("cte-pkce", JSON.stringify({ verifier, state }));
      const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
      const query = new URLSearchParams({
        client_id: cfg.clientId, response_type: "code", redirect_uri: cfg.redirectUri, scope: cfg.scope,
        state, code_challenge: b64url(new Uint8Array(digest)), code_challenge_method: "S256",
        response_mode: cfg.responseMode,
      });
      location.assign(cfg.authority + "/oauth2/v2.0/authorize?" + query.toString());
      return;
    }
    const saved = JSON.parse(sessionStorage.getItem("cte-pkce") || "null");
    if (!saved || params.get("state") !== saved.state) {
      return done({ stage: "state", ok: false, error: "the state returned is not the one sent" });
    }
    if (params.has("error")) {
      return done({ stage: "redirect-error", ok: false, error: params.get("error"),
        error_description: params.get("error_description") });
    }
    const code = params.get("code");
    if (cfg.redeem === "server") {
      return done({ stage: "redirect", ok: true, redeem: "server", code, verifier: saved.verifier, scope: cfg.scope });
    }
    const body = new URLSearchParams({
      client_id: cfg.clientId, grant_type: "authorization_code", code, redirect_uri: cfg.redirectUri,
      code_verifier: saved.verifier, scope: cfg.scope,
    });
    const response = await fetch(cfg.authority + "/oauth2/v2.0/token", {
      method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body,
    });
    let answer = null;
    try { answer = await response.json(); } catch (e) { answer = null; }
    done({ stage: "redeem", ok: response.ok, redeem: "browser", status: response.status, body: answer,
      origin: location.origin });
  } catch (e) {
    done({ stage: "page", ok: false, error: String(e) });
  }
})();
</script></body></html>"""
