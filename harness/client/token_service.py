"""A partner's token service, reached as a client app reaches it: hand it the user's Entra token, read the
ACS token it answers with. And the sandbox's exchange log: what reached ACS (a sandbox tenant only).

httpx, so record and replay capture it like every other request. Each request carries `x-cte-caller`
(the test user's alias): recordings match a request to its answer by it, so two users handed at once
replay each their own answer whatever order they arrived in.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.core import scrubbing
from harness.core.config import Secret
from harness.core.token_service import TokenServiceSpec
from harness.wire import contract, tokens
from harness.wire.tls import client_context

CALLER_HEADER = scrubbing.CALLER_HEADER
TIMEOUT_S = 30.0
MARK_SINCE = 2**31  # after every entry: the log's answer is only its position


@dataclass
class ServiceAnswer:
    """What the token service answered to one hand-over, as evidence (never a token in a repr)."""

    caller: str
    status: int | None = None
    acs_token: Secret | None = field(default=None, repr=False)
    expires_on: str | None = None
    message: str | None = None  # an error answer's text, a transport failure
    entra_token_in_answer: list[str] = field(default_factory=list)  # where an Entra token showed
    elapsed_ms: int = 0

    @property
    def served(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.acs_token is not None

    @property
    def acs_claims(self) -> dict[str, Any]:
        try:
            return tokens.claims(str(self.acs_token)) if self.acs_token else {}
        except ValueError:
            return {}


def is_entra_token(claims: dict[str, Any]) -> bool:
    """An Entra ID access token (for the Teams scopes, Graph or anything else), not an ACS token."""
    issuer = str(claims.get("iss", ""))
    return (
        "sts.windows.net" in issuer or "login.microsoftonline" in issuer or claims.get("aud") == contract.ACS_RESOURCE
    )


def _field(body: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body


class TokenServiceClient:
    def __init__(self, spec: TokenServiceSpec) -> None:
        self.spec = spec
        verify: Any = client_context(None) if spec.url.startswith("https:") else False
        self.client = httpx.Client(timeout=TIMEOUT_S, verify=verify, trust_env=False)

    def close(self) -> None:
        self.client.close()

    def hand(self, caller: str, entra_token: str) -> ServiceAnswer:
        """Hand `entra_token` to the service as the profile says a client does; read what comes back."""
        spec = self.spec
        headers = {CALLER_HEADER: caller, "accept": "application/json"}
        body: dict[str, Any] | None = None
        if spec.token_field:
            body = {spec.token_field: entra_token}
        elif (spec.token_header or "").lower() == "authorization":
            headers["authorization"] = f"Bearer {entra_token}"
        else:
            headers[str(spec.token_header)] = entra_token
        answer = ServiceAnswer(caller=caller)
        started = time.monotonic()
        try:
            response = self.client.request(spec.method, spec.url, headers=headers, json=body)
        except httpx.HTTPError as err:
            answer.message = f"the token service did not answer: {type(err).__name__}: {err}"
            return answer
        finally:
            answer.elapsed_ms = int((time.monotonic() - started) * 1000)
        answer.status = response.status_code
        text = response.text
        answer.entra_token_in_answer = self._entra_tokens(entra_token, text, response.headers)
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        value = _field(data, spec.acs_token_field)
        if 200 <= response.status_code < 300 and isinstance(value, str) and value:
            answer.acs_token = Secret(value)
            expires = _field(data, spec.expires_on_field)
            answer.expires_on = str(expires) if expires is not None else None
        else:
            answer.message = self._error_text(data, text)
        return answer

    @staticmethod
    def _entra_tokens(handed: str, text: str, headers: httpx.Headers) -> list[str]:
        """Where the answer carries an Entra token: the one handed over, or any JWT that is one."""
        found = []
        for where, content in (("body", text), *((f"header {k}", v) for k, v in headers.items())):
            if handed and handed in content:
                found.append(f"the {where} holds the Entra token handed to it")
                continue
            for candidate in tokens.JWT_PATTERN.findall(content):
                try:
                    claims = tokens.claims(candidate)
                except ValueError:
                    continue
                if is_entra_token(claims):
                    found.append(f"the {where} holds an Entra token (aud {claims.get('aud')})")
                    break
        return found

    @staticmethod
    def _error_text(data: Any, text: str) -> str:
        if isinstance(data, dict):
            error = data.get("error")
            if isinstance(error, dict):
                return str(error.get("message") or error.get("code") or error)
            for key in ("message", "error_description", "detail", "error"):
                if data.get(key):
                    return str(data[key])
        return tokens.JWT_PATTERN.sub("<JWT>", text.strip())[:300] or "(empty answer)"


class ExchangeLog:
    """The sandbox ACS resource's record of exchange requests (`contract.SANDBOX_EXCHANGE_LOG_PATH`)."""

    def __init__(self, url: str, ca_bundle: str | None) -> None:
        self.url = url
        self.client = httpx.Client(timeout=TIMEOUT_S, verify=client_context(ca_bundle), trust_env=False)

    def close(self) -> None:
        self.client.close()

    def _read(self, since: int) -> dict[str, Any]:
        response = self.client.get(self.url, params={"since": since})
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise ValueError(f"{self.url} answered something that is not an exchange log")
        return data

    def mark(self) -> int:
        """The log's position now: entries after it are what happens next."""
        return int(self._read(MARK_SINCE)["last"])

    def since(self, mark: int) -> list[dict[str, Any]]:
        return list(self._read(mark)["entries"])
