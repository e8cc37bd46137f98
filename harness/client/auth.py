"""Signing a Teams user in to Microsoft Entra ID with unmodified MSAL Python.

Test accounts use the password grant (ROPC), as Microsoft's own SDK live tests do; people use the
device-code flow. Tokens stay in memory: the MSAL cache is never written to disk.

A run signs in through `SignIns`: one MSAL application and token cache per authority and client id,
asked silently first, so that a user's token for a resource is requested once per run (and refreshed
when it expires) - smart lockout and throttling on a partner's tenant count every request.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import msal
import requests

from harness.core.config import Secret, Tenant, UserCredentials
from harness.wire import contract, tokens


def _host_and_port(authority: str | None) -> tuple[str, int] | None:
    """The authority's host and port, when its URL names a port that is not HTTPS's default."""
    if not authority:
        return None
    parts = urlsplit(authority)
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname or port in (None, 443):
        return None
    return parts.hostname.lower(), port


def is_well_known_authority(authority: str) -> bool:
    """Whether MSAL knows the authority's host (public and national Microsoft clouds): only those
    can be validated by instance discovery, which MSAL does at login.microsoftonline.com."""
    return (urlsplit(authority).hostname or "").lower() in msal.authority.WELL_KNOWN_AUTHORITY_HOSTS


class ObservingSession(requests.Session):
    """A requests session that keeps the last response's status and headers for evidence.

    MSAL returns an error's JSON body but not its headers; the request id and the sandbox's
    emulator-defined marker live in headers.

    It also keeps requests to the authority's host on the authority's port. A client-side workaround
    for an MSAL limitation (msal 1.39, msal/authority.py): `canonicalize()` keeps only the authority's
    hostname as `Authority.instance`, and `Authority.user_realm_discovery()` (the password grant's
    first request) builds `https://{instance}/common/userrealm/...` from it, dropping the port; so do
    the `https://{instance}/{tenant}` authorities msal/application.py rebuilds for silent and broker
    flows. For an authority with an explicit, non-default port (`cte sandbox serve`, a private or
    test authority), a URL `https://<authority host>/...` with no port therefore means the authority
    itself and is sent to `https://<authority host>:<port>/...`. URLs naming a port, other hosts and
    plain http are left alone. MSAL itself is not modified.
    """

    def __init__(self, ca_bundle: str | None, authority: str | None = None, *, use_proxy: bool = True) -> None:
        super().__init__()
        self.last_status: int | None = None
        self.last_headers: dict[str, str] = {}
        self.authority_port = _host_and_port(authority)
        # requests lets REQUESTS_CA_BUNDLE override Session.verify (docs/contracts/identity.md §5.1
        # gotcha 1), but not a verify given with the request: so the CA bundle goes with each request
        # and the environment's proxy settings still apply (a TLS-inspecting proxy needs both). The
        # embedded sandbox is reached in-process (use_proxy=False): never through a proxy.
        self.ca_bundle = ca_bundle
        self.trust_env = use_proxy
        self.token_requests = 0  # POSTs to a token endpoint: what Entra counts against a user and an app

    @staticmethod
    def is_token_request(method: str | bytes, url: str | bytes) -> bool:
        path = urlsplit(url if isinstance(url, str) else url.decode()).path
        return (method if isinstance(method, str) else method.decode()).upper() == "POST" and path.endswith("/token")

    def on_authority_port(self, url: str | bytes) -> str | bytes:
        """`url`, with the authority's port when it is a portless https URL of the authority's host."""
        if self.authority_port is None or not isinstance(url, str):
            return url
        host, port = self.authority_port
        parts = urlsplit(url)
        try:
            has_port = parts.port is not None
        except ValueError:  # not a valid port: requests will say so
            return url
        if parts.scheme.lower() != "https" or has_port or (parts.hostname or "").lower() != host:
            return url
        return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if self.ca_bundle and kwargs.get("verify") in (None, True):
            kwargs["verify"] = self.ca_bundle
        self.token_requests += self.is_token_request(method, url)
        response = super().request(method, self.on_authority_port(url), *args, **kwargs)
        self.last_status = response.status_code
        self.last_headers = dict(response.headers)
        return response


MSAL_DEFAULT_THROTTLE_S = 60.0  # how long MSAL caches a 429/5xx with no Retry-After (public client apps)


MAX_RETRY_WAIT_S = 61.0  # a service asking for a longer pause is not transiently unavailable: give up


def retry_after_s(headers: dict[str, str], *, default: float) -> float:
    """Seconds to wait before trying again: the response's Retry-After (whole seconds, as Entra
    sends it) plus a little, so that MSAL's cached copy of the failure has expired."""
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after", "").strip()
    return (int(value) if value.isascii() and value.isdecimal() else default) + 0.05


@dataclass
class SignIn:
    """The outcome of one sign-in, as evidence: never the secrets themselves in a repr."""

    alias: str
    scopes: tuple[str, ...]
    access_token: Secret | None = field(default=None, repr=False)
    claims: dict[str, Any] = field(default_factory=dict, repr=False)
    oid: str | None = None
    status: int | None = None
    error: str | None = None
    aadsts: int | None = None
    suberror: str | None = None
    description: str | None = None
    request_id: str | None = None
    emulator_defined: str | None = None
    retries: list[str] = field(default_factory=list)  # transient failures retried on the way
    cached: bool = False  # served by MSAL's token cache (acquire_token_silent): no request was sent
    granted: tuple[str, ...] = ()  # the scopes Entra granted (its answer's `scope`)

    @property
    def ok(self) -> bool:
        return self.access_token is not None

    @property
    def expires_at(self) -> int | None:
        exp = self.claims.get("exp")
        return int(exp) if exp is not None else None


# A cached token with less life left is refreshed first: an ACS token exchanged for it expires with it
# (MSAL's own margin is 5 minutes, shorter than a live calling scenario may take).
CACHED_TOKEN_MIN_LIFE_S = 15 * 60

# A transient Entra failure (429, 5xx, a dropped connection) is tried again at most this many times.
TRANSIENT_RETRIES = 2


class EntraSignIn:
    """One MSAL public client application for a tenant, with an in-memory token cache.

    Transient failures are retried here, in step with MSAL rather than against it: MSAL raises on a
    5xx, returns a 429 as an error result, and caches both (per URL, client, scope and user) for their
    `Retry-After` (60 s without one, for a public client), answering from that cache until it expires; it does not retry
    itself when given its own HTTP client. So a retry waits out `Retry-After` first, and there are
    at most TRANSIENT_RETRIES of them; each one is listed in `retries`.
    """

    def __init__(self, tenant: Tenant, *, token_cache: msal.TokenCache | None = None) -> None:
        self.tenant = tenant
        self.session = ObservingSession(tenant.ca_bundle, tenant.authority, use_proxy=not tenant.host_routes)
        self.app = msal.PublicClientApplication(
            tenant.client_id,
            authority=tenant.authority,
            http_client=self.session,
            # MSAL validates an authority host it does not know by asking login.microsoftonline.com
            # (instance discovery), which knows neither a private authority nor every sovereign one,
            # and is not reachable from every cloud: such an authority is trusted as the profile gives
            # it. A well-known Microsoft host keeps MSAL's default (None).
            instance_discovery=None if is_well_known_authority(tenant.authority) else False,
            token_cache=token_cache if token_cache is not None else msal.TokenCache(),
        )
        self.retries: list[str] = []
        self.sleep: Callable[[float], None] = time.sleep

    def _acquire(self, attempt: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        for tries in range(TRANSIENT_RETRIES + 1):
            last = tries == TRANSIENT_RETRIES
            try:
                result = attempt()
            except msal.exceptions.MsalServiceError as exc:  # how MSAL reports a 5xx
                why, wait = str(exc), retry_after_s(self.session.last_headers, default=MSAL_DEFAULT_THROTTLE_S)
                if last or not why.startswith("HTTP Error: 5") or wait > MAX_RETRY_WAIT_S:
                    raise
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                if last:
                    raise
                why, wait = f"connection dropped ({type(exc).__name__})", 0.5  # nothing cached: a short pause
            else:
                if self.session.last_status != 429 or "access_token" in result or last:
                    return result
                why, wait = "HTTP 429", retry_after_s(self.session.last_headers, default=MSAL_DEFAULT_THROTTLE_S)
                if wait > MAX_RETRY_WAIT_S:
                    return result
            self.retries.append(f"token request: {why}; retried after {wait:g} s")
            self.sleep(wait)
        raise AssertionError("unreachable")

    def with_password(
        self,
        alias: str,
        scopes: Sequence[str] = contract.TEAMS_SCOPES,
        *,
        wrong_password: bool = False,
        user: UserCredentials | None = None,
    ) -> SignIn:
        """The password grant for `alias` (`user`: the account, when another tenant object names it)."""
        user = user or self.tenant.user(alias)
        password = str(user.password) + ("-not-the-password" if wrong_password else "")
        before = len(self.retries)
        with warnings.catch_warnings():
            # ROPC is deprecated for people; test accounts without MFA are what it is for.
            warnings.simplefilter("ignore", DeprecationWarning)
            result = self._acquire(
                lambda: self.app.acquire_token_by_username_password(user.upn, password, scopes=list(scopes))
            )
        observed = self._observe(alias, scopes, result)
        observed.retries = self.retries[before:]
        return observed

    def silently(
        self, alias: str, user: UserCredentials, scopes: Sequence[str], *, force_refresh: bool = False
    ) -> SignIn | None:
        """`user`'s token for `scopes` from MSAL's cache (acquire_token_silent: refreshed with the
        refresh token when it is about to expire, or at once with `force_refresh`: the service said
        the token had expired); None when MSAL has none to give."""
        accounts = self.app.get_accounts(username=user.upn)
        if not accounts:
            return None
        try:  # a refresh that fails for any reason is no answer: the caller signs in with the password
            result = self.app.acquire_token_silent(list(scopes), account=accounts[0], force_refresh=force_refresh) or {}
            if result.get("token_source") == "cache" and int(result.get("expires_in", 0)) < CACHED_TOKEN_MIN_LIFE_S:
                result = self.app.acquire_token_silent(list(scopes), account=accounts[0], force_refresh=True) or {}
        except (msal.exceptions.MsalServiceError, requests.RequestException):
            return None
        if "access_token" not in result:
            return None
        cached = result.get("token_source") == "cache"  # no request sent: nothing answered to observe
        observed = self._observe(alias, scopes, result, answered=not cached)
        observed.cached = cached
        return observed

    def with_device_code(
        self, scopes: Sequence[str] = contract.TEAMS_SCOPES, prompt: Callable[[str], None] = print
    ) -> SignIn:
        """For a person: show the code, wait until they have signed in in a browser."""
        flow = self.app.initiate_device_flow(scopes=list(scopes))
        if "user_code" not in flow:
            return self._observe("device-code", scopes, flow)
        prompt(flow["message"])
        result = self.app.acquire_token_by_device_flow(flow)
        return self._observe("device-code", scopes, result)

    def start_device_code(self, scopes: Sequence[str] = contract.TEAMS_SCOPES) -> dict[str, Any]:
        return self.app.initiate_device_flow(scopes=list(scopes))

    def finish_device_code(self, flow: dict[str, Any], scopes: Sequence[str] = contract.TEAMS_SCOPES) -> SignIn:
        return self._observe("device-code", scopes, self.app.acquire_token_by_device_flow(flow))

    def _observe(self, alias: str, scopes: Sequence[str], result: dict[str, Any], *, answered: bool = True) -> SignIn:
        headers = {k.lower(): v for k, v in self.session.last_headers.items()} if answered else {}
        observed = SignIn(
            alias=alias,
            scopes=tuple(scopes),
            status=self.session.last_status if answered else None,
            request_id=headers.get("x-ms-request-id"),
            emulator_defined=headers.get(contract.EMULATOR_DEFINED_HEADER),
        )
        if "access_token" in result:
            observed.access_token = Secret(result["access_token"])
            try:
                observed.claims = tokens.claims(result["access_token"])
            except ValueError:
                observed.claims = {}
            observed.oid = (result.get("id_token_claims") or {}).get("oid") or observed.claims.get("oid")
            observed.granted = tuple(str(result.get("scope") or "").split())
            return observed
        observed.error = result.get("error")
        observed.suberror = result.get("suberror")
        observed.description = result.get("error_description")
        codes = result.get("error_codes") or []
        observed.aadsts = int(codes[0]) if codes else None
        return observed


RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})  # MSAL adds them; never a resource's


def resource_of(scopes: Sequence[str]) -> str:
    """The resource a sign-in asks a token for: its scopes' URL (a bare scope is Microsoft Graph's)."""
    scope = next((s for s in scopes if s not in RESERVED_SCOPES), "")
    return scope.rsplit("/", 1)[0] if "://" in scope else f"https://{contract.GRAPH_HOST}"


T = TypeVar("T")


class SignIns:
    """A run's sign-ins: Entra is asked no more than the run needs (smart lockout and throttling on a
    partner's tenant count every token request).

    Reused (`reuse=True`: sandbox and live runs): one EntraSignIn - an MSAL PublicClientApplication -
    per authority and client id, kept for the run with its in-memory token cache. A user signing in
    for scopes the run already got a token for is answered by acquire_token_silent (a request only to
    refresh a token about to expire). Never from the cache:
    - a first sign-in for a set of scopes: the password grant, as the scenario reads;
    - a sign-in with a wrong password: a fresh application and its own request (the scenario is
      about Entra's answer);
    - any sign-in that failed: failures are not cached, so a scenario about a rejected sign-in (MFA
      required, consent missing, an undefined scope, a misconfigured app) asks Entra each time; the
      kept application is replaced after one (its token cache stays), so that MSAL's own cache of a
      400 answer (60 s) never answers for Entra.
    Not reused (`reuse=False`: record and replay): each sign-in is its own application and request, so
    that a scenario's cassette holds every sign-in it makes and replays on its own.

    Per process: with -n each worker keeps its own cache. Sharing one would put tokens on disk (or a
    key to them in every worker's environment); the cost is one request per worker, user and resource.

    `requests` counts the token requests sent, by the user's alias and the resource (a sign-in served
    from the cache counts none; retries and refreshes count each).
    """

    def __init__(self, *, reuse: bool = True) -> None:
        self.reuse = reuse
        self.requests: Counter[tuple[str, str]] = Counter()
        self._untaken: Counter[tuple[str, str]] = Counter()
        self._apps: dict[tuple[str, str, str], EntraSignIn] = {}
        self._caches: dict[tuple[str, str, str], msal.TokenCache] = {}
        # (authority, client id, trust anchor, upn) -> (scopes asked, scopes granted) of each token the run was given
        self._granted: dict[tuple[str, str, str, str], list[tuple[frozenset[str], tuple[str, ...]]]] = {}
        self._kept: dict[Any, Any] = {}
        self._app_tokens: dict[tuple[Any, str], set[str]] = {}  # the app-only tokens handed out, per credential
        self._lock = threading.RLock()

    def with_password(
        self,
        tenant: Tenant,
        alias: str,
        scopes: Sequence[str] = contract.TEAMS_SCOPES,
        *,
        wrong_password: bool = False,
        fresh: bool = False,
    ) -> SignIn:
        """`fresh`: a new token whatever the cache holds (a token service under test must see a token it
        has not seen before)."""
        user = tenant.user(alias)
        if wrong_password or fresh or not self.reuse:
            return self._sign_in(EntraSignIn(tenant), alias, user, scopes, wrong_password=wrong_password)
        # An application is kept per authority, client id and trust anchor: two sandboxes in one process
        # (the plain tests start many) share the canonical authority but never a CA, nor their tokens.
        key = (tenant.authority.rstrip("/").lower(), tenant.client_id, str(tenant.ca_bundle or ""))
        with self._lock:  # sign-ins are few and short: one at a time keeps the bookkeeping simple
            if (entra := self._apps.get(key)) is None:
                entra = self._apps[key] = EntraSignIn(
                    tenant, token_cache=self._caches.setdefault(key, msal.TokenCache())
                )
            tokens_of = self._granted.setdefault((*key, user.upn.lower()), [])
            asked = frozenset(scopes)
            granted = next((g for a, g in tokens_of if asked <= a | set(g)), None)
            if granted is not None:
                before = entra.session.token_requests
                signed = entra.silently(alias, user, granted)
                self.count(user.alias, scopes, entra.session.token_requests - before)
                if signed is not None:
                    signed.scopes = tuple(scopes)
                    return signed
            signed = self._sign_in(entra, alias, user, scopes)
            if signed.ok:
                tokens_of.append((asked, tuple(s for s in signed.granted or scopes if s not in RESERVED_SCOPES)))
            else:
                del self._apps[key]
            return signed

    def again(self, tenant: Tenant, alias: str, scopes: Sequence[str]) -> SignIn:
        """A new token for `alias` after a service said theirs had expired: the kept application's refresh
        token (MSAL acquire_token_silent, forced), as an app does; without one (record and replay, where
        each sign-in stands alone) the password grant again."""
        user = tenant.user(alias)
        key = (tenant.authority.rstrip("/").lower(), tenant.client_id, str(tenant.ca_bundle or ""))
        with self._lock:
            entra = self._apps.get(key) if self.reuse else None
            if entra is not None:
                before = entra.session.token_requests
                signed = entra.silently(alias, user, scopes, force_refresh=True)
                self.count(user.alias, scopes, entra.session.token_requests - before)
                if signed is not None:
                    signed.scopes = tuple(scopes)
                    return signed
        return self._sign_in(EntraSignIn(tenant), alias, user, scopes)

    def _sign_in(
        self, entra: EntraSignIn, alias: str, user: UserCredentials, scopes: Sequence[str], **options: bool
    ) -> SignIn:
        before = entra.session.token_requests
        try:
            return entra.with_password(alias, scopes, user=user, **options)
        finally:
            self.count(user.alias, scopes, entra.session.token_requests - before)

    def count(self, alias: str, scopes: Sequence[str], sent: int) -> None:
        """Token requests `alias` sent for `scopes` (MSAL's, and those outside it: a browser redeeming a code)."""
        if sent:
            with self._lock:
                self.requests[alias, resource_of(scopes)] += sent
                self._untaken[alias, resource_of(scopes)] += sent

    def take(self) -> list[tuple[str, str, int]]:
        """The token requests counted since the last take: (alias, resource, count), for the run's report
        (with -n, each worker hands its own to the controller this way)."""
        with self._lock:
            taken = [(alias, resource, n) for (alias, resource), n in sorted(self._untaken.items())]
            self._untaken.clear()
        return taken

    def app_token(self, key: Any, make: Callable[[], Any], scope: str) -> str:
        """An app-only token for `scope` from the credential `make` makes (kept per `key` like `kept`). A
        token request it sent (a token not seen before) counts for the user "app"."""
        credential = self.kept(key, make)
        token = credential.get_token(scope).token
        with self._lock:
            seen = self._app_tokens.setdefault((key, scope), set())
            if token not in seen:
                seen.add(token)
                self.count("app", [scope], 1)
        return str(token)

    def kept(self, key: Any, make: Callable[[], T]) -> T:
        """What `make` makes (an azure-identity credential, which caches its own token), once per run
        and `key` when reused; a new one each time otherwise."""
        if not self.reuse:
            return make()
        with self._lock:
            if key not in self._kept:
                self._kept[key] = make()
            return self._kept[key]  # type: ignore[no-any-return]


_RUN: list[SignIns] = []  # the SignIns of the run in this process (harness.run.session installs it)


def install(sign_ins: SignIns) -> None:
    _RUN.append(sign_ins)


def uninstall(sign_ins: SignIns) -> None:
    if sign_ins in _RUN:
        _RUN.remove(sign_ins)


def run_sign_ins() -> SignIns:
    """The run's SignIns; outside a run (a flow a test drives), one that reuses nothing, as before."""
    return _RUN[-1] if _RUN else SignIns(reuse=False)
