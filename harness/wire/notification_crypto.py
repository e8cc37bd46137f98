"""Graph's change notifications with resource data, as both ends of the seam read and write them:
the encryption of resource data (docs/contracts/graph.md §4.5), and the claims of validationTokens
(§4.4). The sandbox's Graph seals and signs with these; the receiver (harness.client.notifications,
which also decides which keys to trust: `verification`) opens and checks with them; replays and
forgeries seal with them too.

Encrypt: a fresh 32-byte AES key; AES-CBC, PKCS7, IV = the key's first 16 bytes; HMAC-SHA256 of the
ciphertext with that key as `dataSignature`; the key wrapped with RSA-OAEP (SHA-1) for the
subscription's certificate as `dataKey`.

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
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

NOTIFICATION_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"  # Graph's change-notification app (§4.4)
OAEP_SHA1 = asymmetric.OAEP(mgf=asymmetric.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
# Issuers of Graph's validation tokens, by token version, with the token's own `tid` in place of
# {tid}: v1.0 tokens (what Graph sends, per the resource-data page's example) come from the v1
# endpoint, v2.0 tokens from the v2 one (docs/contracts/graph.md §4.4).
ISSUERS = ("https://sts.windows.net/{tid}/", "https://login.microsoftonline.com/{tid}/v2.0")


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


def seal(certificate_b64: str, plaintext: bytes) -> dict[str, str]:
    """`plaintext` sealed for the holder of `certificate_b64`: data, dataSignature, dataKey and the
    certificate's thumbprint; the sender adds the subscription's `encryptionCertificateId`."""
    certificate = x509.load_der_x509_certificate(base64.b64decode(certificate_b64))
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("the encryption certificate's key is not RSA")
    symmetric = os.urandom(32)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(symmetric), modes.CBC(symmetric[:16])).encryptor()
    data = encryptor.update(padder.update(plaintext) + padder.finalize()) + encryptor.finalize()
    thumbprint = hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER))  # noqa: S324 (Graph's format)
    return {
        "data": base64.b64encode(data).decode(),
        "dataSignature": base64.b64encode(hmac.new(symmetric, data, hashlib.sha256).digest()).decode(),
        "dataKey": base64.b64encode(public_key.encrypt(symmetric, OAEP_SHA1)).decode(),
        "encryptionCertificateThumbprint": thumbprint.hexdigest().upper(),
    }


def encrypt(certificate_b64: str, plaintext: bytes, certificate_id: str) -> dict[str, str]:
    """The `encryptedContent` Graph sends for `plaintext` to the holder of `certificate_b64`, in the
    order of Graph's example (for replays and forgeries)."""
    sealed = seal(certificate_b64, plaintext)
    thumbprint = sealed.pop("encryptionCertificateThumbprint")
    return {**sealed, "encryptionCertificateId": certificate_id, "encryptionCertificateThumbprint": thumbprint}


def validation_token_claims(
    audience: str,
    tenant_id: str,
    *,
    lifetime_s: int = 3600,
    appid: str = NOTIFICATION_APP_ID,
    now: int | None = None,
    backdate_s: int = 60,
    idtyp: str | None = None,
) -> dict[str, Any]:
    """The claims of a validation token as Graph's notification app is issued one (v1.0 token): valid
    from `backdate_s` before `now` (default: this machine's time) for `lifetime_s` after it; `idtyp`
    (an app token's "app") is added when given."""
    now = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": ISSUERS[0].format(tid=tenant_id),
        "iat": now - backdate_s,
        "nbf": now - backdate_s,
        "exp": now + lifetime_s,
        "appid": appid,
        "azp": appid,
        "tid": tenant_id,
        "ver": "1.0",
    }
    if idtyp is not None:
        claims["idtyp"] = idtyp
    return claims


def issued_to_notification_app(claims: dict[str, Any]) -> bool:
    """Whether verified claims name Graph's notification app as the token's holder: `appid` in v1.0
    tokens, `azp` in v2.0 ones, and with no version claim whichever of the two the token carries."""
    version = claims.get("ver")
    publishers = [claims.get("azp")] if version == "2.0" else [claims.get("appid")] if version == "1.0" else []
    if not publishers:
        publishers = [claims[c] for c in ("appid", "azp") if c in claims]
    return bool(publishers) and all(publisher == NOTIFICATION_APP_ID for publisher in publishers)


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
