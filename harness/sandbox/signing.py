"""RS256 signing keys for the emulated token issuers (Entra ID and ACS), with their JWKS."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Signer:
    def __init__(self, name: str) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self._key.public_key().public_numbers()
        self._jwk = {"kty": "RSA", "use": "sig", "e": _b64url_uint(numbers.e), "n": _b64url_uint(numbers.n)}
        self.kid = hashlib.sha256(f"{name}:{self._jwk['n']}".encode()).hexdigest()[:27]
        self._jwk["kid"] = self.kid

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})

    def verify(self, token: str) -> dict[str, Any]:
        """Claims of a token this signer issued; raises jwt.InvalidTokenError otherwise.

        Expiry is not checked here: the services check it against the sandbox clock.
        """
        return jwt.decode(
            token,
            self._key.public_key(),
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
        )

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self._jwk)]}
