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


class TokenVerifier:
    """validationTokens: signature by a trusted key, audience = our app, appid = Graph's notifier, not expired."""

    def __init__(self, keys: dict[str, Any], audience: str) -> None:
        self.keys, self.audience = keys, audience
        self._valid_until: dict[str, float] = {}

    def verify(self, token: str) -> None:
        if self._valid_until.get(token, 0) > time.time():
            return
        try:
            header = jwt.get_unverified_header(token)
            key = self.keys.get(str(header.get("kid")))
            if key is None:
                raise Rejected("validation token signed by an unknown key")
            claims = jwt.decode(
                token, key, algorithms=["RS256"], audience=self.audience, options={"require": ["exp", "aud"]}
            )
        except jwt.ExpiredSignatureError:
            raise Rejected("validation token expired") from None
        except jwt.InvalidAudienceError:
            raise Rejected("validation token for another audience") from None
        except jwt.InvalidTokenError as err:
            raise Rejected(f"validation token invalid ({type(err).__name__})") from None
        if claims.get("appid") != NOTIFICATION_APP_ID:
            raise Rejected("validation token not issued to Graph's notification app")
        self._valid_until[token] = float(claims["exp"])


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
