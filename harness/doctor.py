"""`cte doctor`: a preflight that walks the chain in order and stops at the first blocking problem.

profile complete -> authority reachable -> app registration and each user's sign-in (AADSTS codes
mapped to remedies) -> the Teams scopes consented -> the ACS resource reachable and the access key
accepted (clock skew reported) -> the exchange -> Graph's chat and meeting scopes -> each user's
Teams licence (the exchange per user) -> the webhook URL (when one is configured).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests

from harness import contract, diagnosis
from harness.auth import EntraSignIn, SignIn
from harness.config import Tenant
from harness.graph import GRAPH_SCOPES
from harness.identity import AcsIdentity

GRAPH_NEEDED = {
    "send chat messages": ("ChatMessage.Send", "Chat.ReadWrite"),
    "read chat messages": ("Chat.Read", "Chat.ReadWrite"),
    "create chats": ("Chat.Create", "Chat.ReadWrite"),
    "create online meetings": ("OnlineMeetings.ReadWrite",),
}


@dataclass
class Check:
    name: str
    status: str  # ok | fail | warn | n/a
    detail: str = ""
    remedy: str = ""


@dataclass
class Doctor:
    tenant: Tenant
    users: list[str]
    webhook_url: str | None = None
    checks: list[Check] = field(default_factory=list)
    signed: dict[str, SignIn] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        return any(c.status == "fail" for c in self.checks)

    def _add(self, name: str, status: str, detail: str = "", remedy: str = "") -> bool:
        self.checks.append(Check(name, status, detail, remedy))
        return status != "fail"

    def run(self) -> list[Check]:
        steps: list[Callable[[], bool]] = [
            self.authority,
            self.sign_ins,
            self.teams_scopes,
            self.acs_resource,
            self.exchanges,
            self.graph_scopes,
            self.webhook,
            self.calling_driver,
        ]
        for step in steps:
            if not step():
                break
        return self.checks

    def calling_driver(self) -> bool:
        """The calling rows' driver can run here (the browser driver: chromium and the SDK bundle)."""
        if self.tenant.calling_driver != "browser":
            return self._add("calling driver", "ok", f"{self.tenant.calling_driver} (the sandbox's calling model)")
        from harness.calling.browser import SDK_VERSION, BrowserUnavailable, check_available

        try:
            check_available()
        except BrowserUnavailable as missing:
            return self._add(
                "calling driver", "warn", f"browser: {missing}", "the calling rows will skip until it is installed"
            )
        return self._add("calling driver", "ok", f"browser: @azure/communication-calling {SDK_VERSION} in chromium")

    # -- the chain ---------------------------------------------------------------------------------

    def authority(self) -> bool:
        url = f"{self.tenant.authority}/v2.0/.well-known/openid-configuration"
        try:
            session = requests.Session()
            if self.tenant.ca_bundle:
                session.verify, session.trust_env = self.tenant.ca_bundle, False
            response = session.get(url, timeout=15)
        except requests.RequestException as err:
            return self._add(
                "authority reachable",
                "fail",
                f"{type(err).__name__}",
                "check the network path to login.microsoftonline.com and the tenant id",
            )
        if response.status_code != 200:
            return self._add(
                "authority reachable",
                "fail",
                f"HTTP {response.status_code}",
                "check the tenant id in the profile ([tenant].tenant_id)",
            )
        return self._add("authority reachable", "ok", "OpenID configuration found")

    def sign_ins(self) -> bool:
        """App registration and each test user, by signing in for the Teams scopes."""
        ok = True
        for alias in self.users:
            result = EntraSignIn(self.tenant).with_password(alias, contract.TEAMS_SCOPES)
            self.signed[alias] = result
            if result.ok:
                self._add(f"sign-in of {alias}", "ok", "token issued for the Teams scopes")
                continue
            found = diagnosis.for_aadsts(result.aadsts)
            self._add(
                f"sign-in of {alias}",
                "fail",
                f"AADSTS{result.aadsts} {result.error}: {found.meaning if found else 'see the Entra error reference'}",
                found.remedy if found else "",
            )
            ok = False
            if result.aadsts in (700016, 7000218, 650052, 65001, 90002):
                break  # a problem of the tenant or the app: every user would fail the same way
        return ok

    def teams_scopes(self) -> bool:
        result = next(iter(self.signed.values()))
        granted = set(str(result.claims.get("scp", "")).split())
        missing = [s.rsplit("/", 1)[1] for s in contract.TEAMS_SCOPES if s.rsplit("/", 1)[1] not in granted]
        if missing:
            return self._add(
                "Teams scopes consented",
                "fail",
                f"the token lacks {', '.join(missing)}",
                "add the Azure Communication Services delegated permissions Teams.ManageCalls and "
                "Teams.ManageChats to the app registration and grant consent",
            )
        return self._add("Teams scopes consented", "ok", "Teams.ManageCalls and Teams.ManageChats")

    def acs_resource(self) -> bool:
        responses: list[Any] = []
        identity = AcsIdentity(self.tenant)
        try:
            identity.client.create_user(raw_response_hook=responses.append)
        except Exception as err:  # noqa: BLE001 (the SDK raises many kinds; each is a finding here)
            status = getattr(err, "status_code", None)
            code = getattr(getattr(err, "error", None), "code", None)
            found = diagnosis.for_acs(status, code)
            return self._add(
                "ACS resource and access key",
                "fail",
                f"{status} {code or type(err).__name__}",
                found.remedy if found else "check [tenant].acs_endpoint and the connection string",
            )
        date = responses[-1].http_response.headers.get("date") if responses else None
        skew = ""
        if date:
            seconds = abs(parsedate_to_datetime(date).timestamp() - time.time())
            skew = f"; clock skew {seconds:.0f} s"
            if seconds > 240 and not self.tenant.ca_bundle:
                self._add("clock skew", "warn", f"{seconds:.0f} s", "sync this machine's clock: ACS allows 5 minutes")
        return self._add("ACS resource and access key", "ok", f"HMAC accepted{skew}")

    def exchanges(self) -> bool:
        """The exchange for each signed-in user: also how an unlicensed user shows."""
        ok = True
        for alias, signed in self.signed.items():
            if not signed.ok:
                continue
            result = AcsIdentity(self.tenant).exchange(
                str(signed.access_token), self.tenant.client_id, signed.oid or ""
            )
            if result.ok:
                self._add(f"exchange for {alias}", "ok", "ACS token issued")
                continue
            found = diagnosis.for_acs(result.status, result.code)
            self._add(
                f"exchange for {alias}",
                "fail",
                f"{result.status} {result.code}: {result.message}",
                found.remedy if found else "",
            )
            ok = False
        return ok

    def graph_scopes(self) -> bool:
        alias = next(iter(self.signed))
        result = EntraSignIn(self.tenant).with_password(alias, GRAPH_SCOPES)
        if not result.ok:
            found = diagnosis.for_aadsts(result.aadsts)
            return self._add("Graph sign-in", "fail", f"AADSTS{result.aadsts}", found.remedy if found else "")
        granted = set(str(result.claims.get("scp", "")).split())
        missing = {need: options for need, options in GRAPH_NEEDED.items() if not granted & set(options)}
        if missing:
            detail = "; ".join(f"{need}: none of {', '.join(options)}" for need, options in missing.items())
            first = next(iter(missing.values()))[0]
            return self._add(
                "Graph scopes for chat and meetings",
                "fail",
                detail,
                f"add the Microsoft Graph delegated permission {first} (and the others named) to the "
                "app registration and grant consent",
            )
        return self._add(
            "Graph scopes for chat and meetings",
            "ok",
            ", ".join(sorted(granted & {o for options in GRAPH_NEEDED.values() for o in options})),
        )

    def webhook(self) -> bool:
        if not self.webhook_url:
            return self._add("webhook URL", "n/a", "no public notification URL configured (sandbox: local receiver)")
        token = "cte-doctor-validation"
        try:
            response = requests.post(
                f"{self.webhook_url}/notifications",
                params={"validationToken": token},
                headers={"Content-Type": "text/plain"},
                timeout=10,
            )
        except requests.RequestException as err:
            return self._add(
                "webhook URL",
                "fail",
                type(err).__name__,
                "start the tunnel in front of the receiver and check CTE_NOTIFICATION_URL",
            )
        if response.status_code != 200 or response.text != token:
            return self._add(
                "webhook URL",
                "fail",
                f"HTTP {response.status_code}",
                "the URL must reach the harness's receiver (it answers Graph's handshake)",
            )
        return self._add("webhook URL", "ok", "answers Graph's validation handshake")


def write(checks: list[Check], path: Path, profile: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blocked = any(c.status == "fail" for c in checks)
    path.write_text(
        json.dumps({"profile": profile, "blocked": blocked, "checks": [asdict(c) for c in checks]}, indent=2) + "\n",
        encoding="utf-8",
    )


def table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status.upper():<5} {c.name:<{width}}  {c.detail}")
        if c.remedy:
            lines.append(f"{'':<5} {'':<{width}}  remedy: {c.remedy}")
    return "\n".join(lines)
