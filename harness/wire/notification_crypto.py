"""The receiving side of Graph's resource-data encryption (docs/contracts/graph.md §4.5), the check of
validationTokens (§4.4), and the sealing that replays and forgeries need.

Decrypt: find the private key by encryptionCertificateId; unwrap `dataKey` with RSA-OAEP (SHA-1);
HMAC-SHA256 of the decoded `data` with that key must equal `dataSignature`, else stop; AES-CBC,
PKCS7, IV = the key's first 16 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import ssl
import threading
import time
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

NOTIFICATION_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"  # Graph's change-notification app (§4.4)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
OAEP_SHA1 = asymmetric.OAEP(mgf=asymmetric.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


class Rejected(Exception):
    """A notification that must not be trusted; the message says why."""


@dataclass
class EncryptionKey:
    """The key pair whose certificate a subscription carries (in memory only)."""

    id: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate_b64: str

    @classmethod
    def generate(cls, key_id: str, bits: int = 2048) -> EncryptionKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cte-conformance notifications")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=2))
            .sign(key, hashes.SHA256())
        )
        der = certificate.public_bytes(serialization.Encoding.DER)
        return cls(key_id, key, base64.b64encode(der).decode())


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(f"{what} is not base64") from None


def decrypt(content: dict[str, Any], keys: dict[str, EncryptionKey]) -> bytes:
    key = keys.get(str(content.get("encryptionCertificateId")))
    if key is None:
        raise Rejected("unknown encryptionCertificateId")
    try:
        symmetric = key.private_key.decrypt(_b64(content.get("dataKey"), "dataKey"), OAEP_SHA1)
    except ValueError:
        raise Rejected("dataKey does not decrypt with our key") from None
    data = _b64(content.get("data"), "data")
    expected = hmac.new(symmetric, data, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64(content.get("dataSignature"), "dataSignature")):
        raise Rejected("dataSignature does not match the data")
    if len(symmetric) not in (16, 24, 32) or len(data) % 16:
        raise Rejected("encrypted data has the wrong shape")
    decryptor = Cipher(algorithms.AES(symmetric), modes.CBC(symmetric[:16])).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise Rejected("encrypted data has bad padding") from None


def encrypt(certificate_b64: str, plaintext: bytes, certificate_id: str) -> dict[str, str]:
    """What Graph sends for `plaintext` to the holder of `certificate_b64` (for replays and forgeries)."""
    certificate = x509.load_der_x509_certificate(base64.b64decode(certificate_b64))
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    symmetric = os.urandom(32)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(symmetric), modes.CBC(symmetric[:16])).encryptor()
    data = encryptor.update(padder.update(plaintext) + padder.finalize()) + encryptor.finalize()
    return {
        "data": base64.b64encode(data).decode(),
        "dataSignature": base64.b64encode(hmac.new(symmetric, data, hashlib.sha256).digest()).decode(),
        "dataKey": base64.b64encode(public_key.encrypt(symmetric, OAEP_SHA1)).decode(),
        "encryptionCertificateId": certificate_id,
        "encryptionCertificateThumbprint": hashlib.sha1(  # noqa: S324 (Graph's thumbprint format)
            certificate.public_bytes(serialization.Encoding.DER)
        )
        .hexdigest()
        .upper(),
    }


# Issuers of Graph's validation tokens, by token version, with the token's own `tid` in place of
# {tid}: v1.0 tokens (what Graph sends, per the resource-data page's example) come from the v1
# endpoint, v2.0 tokens from the v2 one (docs/contracts/graph.md §4.4).
ISSUERS = ("https://sts.windows.net/{tid}/", "https://login.microsoftonline.com/{tid}/v2.0")
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
        version = claims.get("ver")
        publishers = [claims.get("azp")] if version == "2.0" else [claims.get("appid")] if version == "1.0" else []
        if not publishers:  # no version claim: whichever of the two it carries
            publishers = [claims[c] for c in ("appid", "azp") if c in claims]
        if not publishers or any(publisher != NOTIFICATION_APP_ID for publisher in publishers):
            raise Rejected("validation token not issued to Graph's notification app (appid/azp)")
        tenant = claims.get("tid")
        if not isinstance(tenant, str) or not GUID.fullmatch(tenant):
            raise Rejected("validation token's tid is not a tenant id")
        if claims.get("iss") not in [issuer.format(tid=tenant) for issuer in self.issuers]:
            raise Rejected("validation token from another issuer (iss is not the tenant's Entra ID issuer)")
        if not isinstance(claims.get("exp"), int | float):
            raise Rejected("validation token's exp is not a time")
        return claims


def validation_token_claims(
    audience: str, tenant_id: str, *, lifetime_s: int = 3600, appid: str = NOTIFICATION_APP_ID
) -> dict[str, Any]:
    """The claims of a validation token as Graph's notification app is issued one (v1.0 token)."""
    now = int(time.time())
    return {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + lifetime_s,
        "appid": appid,
        "azp": appid,
        "tid": tenant_id,
        "ver": "1.0",
    }


class TokenSigner:
    """Signs validation tokens: the replay of recorded notifications, and forgeries in tests."""

    def __init__(self, kid: str = "cte-replay") -> None:
        self.kid = kid
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def public_key(self) -> Any:
        return self._key.public_key()

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def token(self, audience: str, tenant_id: str, *, lifetime_s: int = 3600, appid: str = NOTIFICATION_APP_ID) -> str:
        return self.sign(validation_token_claims(audience, tenant_id, lifetime_s=lifetime_s, appid=appid))


def jwks_keys(jwks: dict[str, Any]) -> dict[str, Any]:
    """kid -> public key, from a JWKS document."""
    keys = {}
    for entry in jwks.get("keys", []):
        if entry.get("kty") == "RSA" and entry.get("kid"):
            keys[entry["kid"]] = jwt.algorithms.RSAAlgorithm.from_jwk(entry)
    return keys
