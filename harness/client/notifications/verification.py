"""Which validationTokens the receiver trusts (docs/contracts/graph.md §4.4): the keys they may be
signed with (fixed ones and a JWKS URL, refreshed when Entra rotates them, rate-limited), and the
checks of a token's signature and claims. The receiver's own business: what a token's claims mean
is in harness.wire.notification_crypto, which the sandbox's Graph issues them with.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from harness.wire.notification_crypto import ISSUERS, Rejected, issued_to_notification_app, jwks_keys
from harness.wire.transport import LOOPBACK_NAMES

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
JWKS_REFRESH_BURST = 3  # an unknown kid refetches the key set at most this many times...
JWKS_REFRESH_WINDOW_S = 300.0  # ...in any window this long, whatever tokens an attacker sends
JWKS_MAX_AGE_S = 24 * 3600.0  # and the set is refetched anyway when it is older (Entra rotates keys)
TOKEN_CACHE = 4096  # verified tokens remembered until they expire (one per app and tenant, per hour)


class KeySet:
    """The keys validation tokens may be signed with: fixed ones, and those of a JWKS URL.

    The URL is fetched on first use, when the set is older than `max_age_s`, and when a token names a
    `kid` the set does not hold (Entra rotated its keys). The last is rate-limited: at most
    `refresh_burst` fetches in any `refresh_window_s`, so that a flood of tokens naming made-up kids
    costs the receiver (and Entra) a few requests, not one each. A failed fetch keeps the keys held.
    """

    def __init__(
        self,
        keys: dict[str, Any] | None = None,
        *,
        jwks_url: str | None = None,
        verify: Any = True,
        refresh_burst: int = JWKS_REFRESH_BURST,
        refresh_window_s: float = JWKS_REFRESH_WINDOW_S,
        max_age_s: float = JWKS_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if jwks_url is not None:
            parts = urllib.parse.urlsplit(jwks_url)
            if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK_NAMES):
                raise ValueError(f"the JWKS URL {jwks_url!r} is not https (plain http only on loopback): fix the URL")
        self.fixed: dict[str, Any] = dict(keys or {})
        self.fetched: dict[str, Any] = {}
        self.jwks_url = jwks_url
        self._verify = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        self.refresh_burst, self.refresh_window_s = refresh_burst, refresh_window_s
        self.max_age_s, self._clock = max_age_s, clock
        self.fetches = 0
        self.last_error: str | None = None
        self._fetched_at: float | None = None
        self._on_demand: deque[float] = deque()
        self._lock = threading.Lock()

    def update(self, keys: dict[str, Any]) -> None:
        self.fixed.update(keys)

    def get(self, kid: str) -> Any:
        if self.jwks_url and (self._fetched_at is None or self._clock() - self._fetched_at > self.max_age_s):
            self.refresh(on_demand=False)
        key = self.fixed.get(kid) or self.fetched.get(kid)
        if key is None and self.jwks_url and self.refresh():
            key = self.fetched.get(kid)
        return key

    def refresh(self, *, on_demand: bool = True) -> bool:
        """Fetch the JWKS again; on demand (an unknown kid) only within the rate limit. True if fetched."""
        with self._lock:
            now = self._clock()
            if on_demand:
                while self._on_demand and now - self._on_demand[0] >= self.refresh_window_s:
                    self._on_demand.popleft()
                if len(self._on_demand) >= self.refresh_burst:
                    return False
                self._on_demand.append(now)  # a failure counts too: an unreachable URL is not hammered
            self._fetched_at = now
            self.fetches += 1
            try:
                answer = httpx.get(str(self.jwks_url), timeout=10, verify=self._verify)
                answer.raise_for_status()
                self.fetched = jwks_keys(answer.json())
                self.last_error = None
            except (httpx.HTTPError, ValueError, TypeError, AttributeError, KeyError, jwt.InvalidKeyError) as err:
                self.last_error = f"{type(err).__name__}: {err}".splitlines()[0]
            return True

    def describe(self) -> str:
        if not self.jwks_url or self._fetched_at is None:
            return "the receiver trusts no other key"
        ago = self._clock() - self._fetched_at
        failed = f", and that fetch failed: {self.last_error}" if self.last_error else ""
        return (
            f"the key set at {self.jwks_url} was fetched {ago:.0f} s ago{failed}; an unknown kid refetches it at most "
            f"{self.refresh_burst} times in {self.refresh_window_s:.0f} s"
        )


class TokenVerifier:
    """validationTokens (docs/contracts/graph.md §4.4): RS256 signed by a trusted key (an unknown `kid`
    refreshes the key set, rate-limited), `aud` one of our app ids, not expired (nor not yet valid),
    issued to Graph's change-notification app (`appid` in v1.0 tokens, `azp` in v2.0 ones), `tid` a
    GUID and `iss` that tenant's issuer. Verified tokens are remembered, with their claims, until
    they expire."""

    def __init__(
        self, keys: KeySet | dict[str, Any], audience: str | list[str], *, issuers: tuple[str, ...] = ISSUERS
    ) -> None:
        self.keys = keys if isinstance(keys, KeySet) else KeySet(keys)
        self.audiences = [audience] if isinstance(audience, str) else list(audience)
        self.issuers = issuers
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def audience(self) -> str:
        return self.audiences[0]

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or Rejected naming what is wrong with it."""
        with self._lock:
            claims = self._verified.get(token)
        if claims is not None and claims["exp"] > time.time():
            return claims
        claims = self._check(token)
        with self._lock:
            self._verified[token] = claims
            while len(self._verified) > TOKEN_CACHE:
                self._verified.popitem(last=False)
        return claims

    def _check(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as err:
            raise Rejected(f"validation token invalid ({type(err).__name__})") from None
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) and len(kid) <= 256 else None
        if key is None:
            raise Rejected(f"validation token signed by an unknown key ({self.keys.describe()})")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audiences,
                options={"require": ["exp", "aud", "iss", "tid"]},
            )
        except jwt.ExpiredSignatureError:
            raise Rejected("validation token expired") from None
        except jwt.InvalidAudienceError:
            raise Rejected("validation token for another audience (aud is not this app's id)") from None
        except jwt.MissingRequiredClaimError as err:
            raise Rejected(f"validation token without its {err.claim!r} claim") from None
        except jwt.InvalidTokenError as err:
            raise Rejected(f"validation token invalid ({type(err).__name__})") from None
        if not issued_to_notification_app(claims):
            raise Rejected("validation token not issued to Graph's notification app (appid/azp)")
        tenant = claims.get("tid")
        if not isinstance(tenant, str) or not GUID.fullmatch(tenant):
            raise Rejected("validation token's tid is not a tenant id")
        if claims.get("iss") not in [issuer.format(tid=tenant) for issuer in self.issuers]:
            raise Rejected("validation token from another issuer (iss is not the tenant's Entra ID issuer)")
        if not isinstance(claims.get("exp"), int | float):
            raise Rejected("validation token's exp is not a time")
        return claims
