"""`cte doctor`: a preflight that walks the chain in order and stops at the first blocking problem.

profile complete -> authority reachable -> app registration and each user's sign-in (AADSTS codes
mapped to remedies) -> the Teams scopes consented -> the ACS resource reachable and the access key
accepted (clock skew reported) -> the exchange -> Graph's chat and meeting scopes -> each user's
Teams licence (the exchange per user) -> the redirect URI of a browser sign-in (when the profile names
one: AADSTS50011, 9002326, 9002327) -> the webhook URL (when one is configured).
"""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msal
import requests

from harness.client.auth import EntraSignIn, ObservingSession, SignIn
from harness.client.graph import GRAPH_SCOPES
from harness.client.identity import ACS_DATA_PLANE, AcsIdentity, entra_credential
from harness.conformance import diagnosis
from harness.conformance.flows.identity import exchange_time
from harness.core.config import Tenant
from harness.wire import contract, handshake, tokens, transport

GRAPH_NEEDED = {
    "send chat messages": ("ChatMessage.Send", "Chat.ReadWrite"),
    "read chat messages": ("Chat.Read", "Chat.ReadWrite"),
    "create chats": ("Chat.Create", "Chat.ReadWrite"),
    "create online meetings": ("OnlineMeetings.ReadWrite",),
}


# Where the scenarios are unsupported (docs/contracts/identity.md §10).
GOVERNMENT_CLOUDS_DOC = (
    "https://learn.microsoft.com/azure/communication-services/concepts/teams-interop#teams-in-government-clouds-gcc"
)
SOVEREIGN_CLOUDS = {  # cloud_instance_name -> the cloud
    "microsoftonline.us": "the US Government cloud (GCC High or DoD)",
    "partner.microsoftonline.cn": "Microsoft 365 operated by 21Vianet",
    "microsoftonline.de": "Microsoft Cloud Deutschland",
}
GOVERNMENT_SUB_SCOPES = {  # tenant_region_sub_scope -> the cloud
    "GCC": "Microsoft 365 GCC (Government Community Cloud)",
    "DODCON": "Microsoft 365 GCC High",
    "DOD": "Microsoft 365 DoD",
}


@dataclass
class Check:
    name: str
    status: str  # ok | fail | warn | n/a
    detail: str = ""
    remedy: str = ""


DETAIL_MAX = 240  # a check's detail is one line, at most this long


def one_line(text: str, limit: int = DETAIL_MAX) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def host_port(url: str) -> str:
    """`host:port` of a URL, the port always shown (443 for https when the URL names none)."""
    parts = urlsplit(url)
    host = parts.hostname or url
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port or (80 if parts.scheme == 'http' else 443)}"


def _causes(err: BaseException) -> list[BaseException]:
    """`err` and what it wraps, outermost first: (azure-core ->) requests -> urllib3 -> ssl/socket errors."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain and len(chain) < 12:
        chain.append(current)
        reason = getattr(current, "reason", None)  # urllib3's MaxRetryError
        inner = getattr(current, "inner_exception", None)  # azure-core's errors
        first = current.args[0] if current.args else None
        current = next(
            (
                e
                for e in (reason, inner, first, current.__cause__, current.__context__)
                if isinstance(e, BaseException) and e not in chain
            ),
            None,
        )
    return chain


def failed_url(err: BaseException) -> str | None:
    """The URL being fetched when `err` happened, when the exception says (requests' do)."""
    for cause in _causes(err):
        request = getattr(cause, "request", None)
        url = getattr(request, "url", None)
        if isinstance(url, str) and url:
            return url
    return None


def _why(err: BaseException) -> str:
    """The innermost reason: `certificate verify failed: ...`, `[Errno 111] Connection refused`."""
    for cause in reversed(_causes(err)):
        message = getattr(cause, "verify_message", None)
        if message:
            return f"certificate verify failed: {message}"
        if str(cause):
            return str(cause)
    return type(err).__name__


def _is_certificate_failure(err: BaseException) -> bool:
    return any(isinstance(c, (requests.exceptions.SSLError, ssl.SSLError)) for c in _causes(err))


def _rejection(result: SignIn, found: diagnosis.Diagnosis | None) -> str:
    """A refused sign-in in one line: its AADSTS code and meaning, else whatever MSAL returned."""
    if result.aadsts is not None:
        return one_line(
            f"AADSTS{result.aadsts} {result.error}: {found.meaning if found else 'see the Entra error reference'}"
        )
    return one_line(f"{result.error or f'HTTP {result.status}'}: {result.description or 'no token issued'}")


@dataclass
class Doctor:
    tenant: Tenant
    users: list[str]
    webhook_url: str | None = None
    webhook_port: int = 0  # the loopback port the tunnel in front of webhook_url forwards to
    checks: list[Check] = field(default_factory=list)
    signed: dict[str, SignIn] = field(default_factory=dict)
    acs_principal: str | None = None  # the object id the Entra credential for ACS authenticates as
    openid: dict[str, Any] = field(default_factory=dict)  # the authority's OpenID configuration

    @property
    def blocked(self) -> bool:
        return any(c.status == "fail" for c in self.checks)

    def _add(self, name: str, status: str, detail: str = "", remedy: str = "") -> bool:
        self.checks.append(Check(name, status, detail, remedy))
        return status != "fail"

    def run(self) -> list[Check]:
        """Every check in order, up to the first blocking one. Never raises: an exception in a check
        is that check failing, with a one-line detail and a remedy."""
        authority, acs = self.tenant.authority, self.tenant.acs_endpoint
        steps: list[tuple[str, Callable[[], bool], str | None]] = [  # name, check, the URL it asks ("": none)
            ("authority reachable", self.authority, authority),
            ("cloud", self.cloud, ""),
            ("sign-in", self.sign_ins, authority),
            ("Teams scopes consented", self.teams_scopes, authority),
            *([("ACS credential", self.acs_credential, authority)] if self.tenant.acs_credential else []),
            (self._acs_check, self.acs_resource, acs),
            ("exchange", self.exchanges, acs),
            ("Graph scopes for chat and meetings", self.graph_scopes, authority),
            ("redirect URI", self.redirect_uri, authority),
            ("webhook URL", self.webhook, self.webhook_url),
            ("calling driver", self.calling_driver, ""),
        ]
        for name, step, asks in steps:
            try:
                passed = step()
            except Exception as err:  # noqa: BLE001 (the doctor reports, it does not crash)
                passed = self._failed(name, err, asks=asks)
            if not passed:
                break
        return self.checks

    def _failed(self, name: str, err: BaseException, *, asks: str | None = None, untrusted: str | None = None) -> bool:
        """A failed check for an exception: what went wrong in one line, and what to do about it,
        naming the host that failed: the one of the URL being fetched when the exception says, else
        `asks` (the URL the check talks to; None: the tenant's authority; "": none).

        `untrusted`: the remedy for a certificate failure of a host whose trust [tenant].ca_bundle
        does not govern (the webhook's); else that setting is the remedy."""
        url = failed_url(err) or (self.tenant.authority if asks is None else asks)
        where = host_port(url) if url else "the host it contacted"
        why = one_line(_why(err), DETAIL_MAX - len(type(err).__name__) - 2)
        detail = f"{type(err).__name__}: {why}"
        if _is_certificate_failure(err):
            if untrusted is None:
                given = f" (the profile's ca_bundle {self.tenant.ca_bundle} does not)" if self.tenant.ca_bundle else ""
                remedy = (
                    f"this machine does not trust the TLS certificate of {where}{given}: set [tenant].ca_bundle "
                    f"in the profile to the PEM file of the CA that issued {where}'s certificate (for example a "
                    "TLS-inspecting corporate proxy's CA)"
                )
            else:
                remedy = f"this machine does not trust the TLS certificate of {where}: {untrusted}"
        elif isinstance(err, (requests.ConnectionError, requests.Timeout)) or any(
            isinstance(c, (ConnectionError, TimeoutError)) for c in _causes(err)
        ):
            remedy = (
                f"could not reach {where}: check the network path to it (DNS, proxy, firewall) and "
                f"{self._setting_for(where)} in the profile"
            )
        elif isinstance(err, msal.exceptions.MsalServiceError):
            remedy = f"{where} answered with a server error: try again later"
        elif isinstance(err, ValueError) and where == host_port(self.tenant.authority) and failed_url(err) is None:
            # MSAL's authority discovery: the OpenID configuration was not found or not readable.
            remedy = (
                f"check [tenant].authority_host ({host_port(self.tenant.authority)}) and [tenant].tenant_id in "
                "the profile: MSAL could not read the authority's OpenID configuration"
            )
        elif url:
            remedy = f"an unexpected error while talking to {where}: run the doctor again; if it persists, report it"
        else:
            remedy = "an unexpected error in this check: run the doctor again; if it persists, report it"
        return self._add(name, "fail", detail, remedy)

    def _setting_for(self, where: str) -> str:
        """The profile setting that names the host `where`."""
        for setting, url in (
            ("[tenant].authority_host and [tenant].tenant_id", self.tenant.authority),
            ("[tenant].acs_endpoint", self.tenant.acs_endpoint),
            ("[tenant].graph_base_url", self.tenant.graph_base_url),
        ):
            if host_port(url) == where:
                return setting
        return "the URL for it"

    def redirect_uri(self) -> bool:
        """The redirect URI the profile names ([app] redirect_uri and platform): the authorization code flow
        started for it in headless Chromium, the first user signed in, the code redeemed as that platform
        does (spa: by the page, with its Origin; publicClient, web: without). AADSTS50011, 9002326 and 9002327
        name the fix (docs/contracts/identity.md §11). No URI named: nothing to check."""
        uri, platform = self.tenant.redirect_uri, self.tenant.redirect_platform or "spa"
        if not uri:
            return self._add("redirect URI", "n/a", "the profile names no [app] redirect_uri (no browser sign-in)")
        from harness.client.browser_sign_in import sign_in_in_browser
        from harness.core.prerequisites import MissingPrerequisite

        alias = self.users[0]
        try:
            result = sign_in_in_browser(
                self.tenant,
                self.tenant.user(alias),
                redirect_uri=uri,
                redeem="browser" if platform == "spa" else "server",
            )
        except MissingPrerequisite as missing:
            return self._add(
                "redirect URI", "warn", one_line(str(missing)), "the redirect URI is not checked until then"
            )
        redeemer = "the browser (with Origin)" if platform == "spa" else "a back end (no Origin)"
        if result.ok:
            return self._add(
                "redirect URI", "ok", f"{uri} ({platform}): {alias} signed in; code redeemed by {redeemer}"
            )
        found = diagnosis.for_redirect_uri(result.aadsts, uri)
        said = f"AADSTS{result.aadsts} {result.error}" if result.aadsts else (result.error or "no answer")
        where = "the authorize request" if result.stage in ("authorize", "sign-in") else f"redemption by {redeemer}"
        return self._add(
            "redirect URI",
            "fail",
            one_line(f"{uri} ({platform}): {said} at {where}" + (f": {found.meaning}" if found else "")),
            found.remedy if found else f"check [app] redirect_uri and platform against the app registration ({uri})",
        )

    def calling_driver(self) -> bool:
        """The calling rows' driver can run here (the browser driver: chromium and the SDK bundle)."""
        if self.tenant.calling_driver != "browser":
            return self._add("calling driver", "ok", f"{self.tenant.calling_driver} (the sandbox's calling model)")
        from harness.client.calling.browser import SDK_VERSION, BrowserUnavailable, check_available

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
            with ObservingSession(self.tenant.ca_bundle, use_proxy=not self.tenant.host_routes) as session:
                response = session.get(url, timeout=15)
        except requests.RequestException as err:
            return self._failed("authority reachable", err)
        if response.status_code != 200:
            return self._add(
                "authority reachable",
                "fail",
                f"HTTP {response.status_code} from {host_port(url)}",
                "check the tenant id in the profile ([tenant].tenant_id)"
                + ("" if response.status_code == 404 else " and [tenant].authority_host"),
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        self.openid = body if isinstance(body, dict) else {}
        return self._add("authority reachable", "ok", "OpenID configuration found")

    def cloud(self) -> bool:
        """The tenant's cloud, as its OpenID configuration names it: the scenarios need the public cloud
        (docs/contracts/identity.md §10). Azure Communication Services' Teams interoperability "isn't
        compatible with Teams deployments using Microsoft 365 government clouds (GCC)" (GOVERNMENT_CLOUDS_DOC):
        GCC (the public cloud, sub-scope GCC), GCC High and DoD (the US Government cloud) alike."""
        instance = str(self.openid.get("cloud_instance_name") or "")
        scope = str(self.openid.get("tenant_region_scope") or "")
        sub_scope = str(self.openid.get("tenant_region_sub_scope") or "")
        if not instance:
            return self._add("cloud", "warn", "the OpenID configuration names no cloud_instance_name", "")
        named = f"cloud_instance_name {instance}, tenant_region_scope {scope or '-'}" + (
            f", tenant_region_sub_scope {sub_scope}" if sub_scope else ""
        )
        cloud = SOVEREIGN_CLOUDS.get(instance) or GOVERNMENT_SUB_SCOPES.get(sub_scope.upper())
        if cloud is None and scope.upper() in ("USG", "USGOV"):
            cloud = "the US Government cloud"
        if cloud is None:
            return self._add("cloud", "ok", f"the public cloud ({named})")
        return self._add(
            "cloud",
            "fail",
            f"the tenant is in {cloud} ({named})",
            "Teams users on Azure Communication Services are not available there: Microsoft states that ACS Teams "
            f"interoperability isn't compatible with Microsoft 365 government clouds ({GOVERNMENT_CLOUDS_DOC}); "
            "use a tenant of the public (commercial) cloud",
        )

    def sign_ins(self) -> bool:
        """App registration and each test user, by signing in for the Teams scopes."""
        if not self.users:
            return self._add(
                "sign-in", "fail", "no test users to sign in", "add a [users.<alias>] table to the profile"
            )
        ok = True
        for alias in self.users:
            try:
                result = EntraSignIn(self.tenant).with_password(alias, contract.TEAMS_SCOPES)
            except Exception as err:  # noqa: BLE001 (discovery, TLS, the network: the same for every user)
                return self._failed(f"sign-in of {alias}", err)
            self.signed[alias] = result
            if result.ok:
                self._add(f"sign-in of {alias}", "ok", "token issued for the Teams scopes")
                continue
            found = diagnosis.for_aadsts(result.aadsts)
            self._add(
                f"sign-in of {alias}",
                "fail",
                _rejection(result, found),
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

    @property
    def _acs_check(self) -> str:
        return "ACS resource and role assignment" if self.tenant.acs_credential else "ACS resource and access key"

    def acs_credential(self) -> bool:
        """The profile's Entra ID credential for ACS gets a token for https://communication.azure.com."""
        from azure.core.exceptions import ClientAuthenticationError

        spec = self.tenant.acs_credential
        assert spec is not None
        try:
            token = entra_credential(self.tenant).get_token(f"{ACS_DATA_PLANE}//.default")
        except ClientAuthenticationError as err:
            found = re.search(r"AADSTS(\d+)", str(err))
            code = int(found.group(1)) if found else None
            return self._add(
                "ACS credential",
                "fail",
                one_line(next((line for line in str(err).splitlines() if "AADSTS" in line), str(err))),
                _credential_remedy(code, spec.kind, spec.client_id, self.tenant.tenant_id),
            )
        claims = tokens.claims(token.token)
        self.acs_principal = str(claims.get("oid", "")) or None
        return self._add(
            "ACS credential",
            "ok",
            f"{spec.kind}: a token for {ACS_DATA_PLANE} issued to the service principal {self.acs_principal}",
        )

    def acs_resource(self) -> bool:
        name = self._acs_check
        responses: list[Any] = []
        identity = AcsIdentity(self.tenant)
        try:
            identity.client.create_user(raw_response_hook=responses.append)
        except Exception as err:  # noqa: BLE001 (the SDK raises many kinds; each is a finding here)
            status = getattr(err, "status_code", None)
            if status is None:  # no answer at all: TLS, the network (azure-core's ServiceRequestError)
                return self._failed(name, err, asks=self.tenant.acs_endpoint)
            code = getattr(getattr(err, "error", None), "code", None)
            found = diagnosis.for_acs(status, code)
            remedy = found.remedy if found else "check [tenant].acs_endpoint and the connection string"
            if self.tenant.acs_credential is not None and status in (401, 403):
                principal = self.acs_principal or "of the profile's [acs] credential"
                remedy = (
                    f"assign the Contributor role on the ACS resource {self.tenant.acs_endpoint} to the service "
                    f"principal with object id {principal} (Azure portal: the Communication Services resource > "
                    "Access control (IAM) > Add role assignment), then run the doctor again"
                    if status == 403
                    else f"ACS did not accept the Entra token: check that [tenant].acs_endpoint is a resource of "
                    f"tenant {self.tenant.tenant_id}'s subscriptions and that the credential is that tenant's"
                )
            return self._add(name, "fail", f"{status} {code or type(err).__name__}", remedy)
        date = responses[-1].http_response.headers.get("date") if responses else None
        skew = ""
        if date:
            seconds = abs(parsedate_to_datetime(date).timestamp() - time.time())
            skew = f"; clock skew {seconds:.0f} s"
            if seconds > 240:
                self._add("clock skew", "warn", f"{seconds:.0f} s", "sync this machine's clock: ACS allows 5 minutes")
        if self.tenant.acs_credential is not None:
            return self._add(name, "ok", f"Entra ID bearer token accepted (Azure RBAC){skew}")
        return self._add(name, "ok", f"HMAC accepted{skew}")

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
            found = diagnosis.for_exchange(result.status, result.code, str(signed.access_token), exchange_time(result))
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
        try:
            result = EntraSignIn(self.tenant).with_password(alias, GRAPH_SCOPES)
        except Exception as err:  # noqa: BLE001 (each is a finding here)
            return self._failed("Graph sign-in", err)
        if not result.ok:
            found = diagnosis.for_aadsts(result.aadsts)
            detail = f"AADSTS{result.aadsts}" if result.aadsts is not None else one_line(f"{result.error}")
            return self._add("Graph sign-in", "fail", detail, found.remedy if found else "")
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
        from harness.client.notifications.service import ReceiverService

        # The receiver as a run starts it, on the port the tunnel forwards to: the handshake must come
        # back through the public URL. A loopback URL (a tenant served on this machine) reaches the
        # receiver itself, whose own CA is then the one to trust.
        receiver = ReceiverService.start(
            audience=self.tenant.client_id, trusted_keys={}, public_url=self.webhook_url, port=self.webhook_port
        )
        loopback = transport.is_loopback(self.webhook_url)
        try:
            problem = probe_handshake(
                f"{self.webhook_url}/notifications", verify=str(receiver.certificates.ca_bundle) if loopback else True
            )
        except requests.RequestException as err:
            if _is_certificate_failure(err):
                return self._failed(
                    "webhook URL",
                    err,
                    asks=self.webhook_url,
                    untrusted="Graph calls only a webhook with a publicly trusted certificate; check the tunnel's URL",
                )
            return self._add(
                "webhook URL",
                "fail",
                one_line(f"{type(err).__name__}: {_why(err)}"),
                "start the tunnel in front of the receiver and check CTE_NOTIFICATION_URL "
                f"({host_port(self.webhook_url)})",
            )
        finally:
            receiver.stop()
        if problem is not None:
            remedy = problem.remedy
            if problem.kind == "status":
                remedy = "the URL must reach the harness's receiver (it answers Graph's handshake)"
            return self._add("webhook URL", "fail", one_line(f"{problem.seen} ({host_port(self.webhook_url)})"), remedy)
        return self._add(
            "webhook URL", "ok", "answers Graph's validation handshake (200, text/plain, decoded, in time)"
        )


# A validation token as Graph sends one (docs/contracts/graph.md §4.3), with what the endpoint must URL-decode:
# spaces (sent as '+'), ':' and a literal '+', '/' and '=' (sent as %2B, %2F, %3D).
PROBE_TOKEN = "Validation: Testing client application reachability for subscription Request-Id: cte+doctor/probe=="


def probe_handshake(
    url: str, *, verify: str | bool, token: str = PROBE_TOKEN, limit_s: float = handshake.LIMIT_S
) -> handshake.Problem | None:
    """Send Graph's validation request to `url` and judge the answer as Graph does (harness.wire.handshake):
    None when Graph would accept it. Raises requests.RequestException when nothing answers."""
    started = time.monotonic()
    try:
        response = requests.post(
            handshake.query(url, token),
            headers={"Content-Type": "text/plain; charset=utf-8"},
            timeout=(10, limit_s + 1),  # connect; then how long an answer may take before it is surely late
            verify=verify,
        )
    except requests.ReadTimeout:
        return handshake.judge(0, "", "", token, time.monotonic() - started, limit_s)
    return handshake.judge(
        response.status_code,
        response.headers.get("content-type", ""),
        response.content.decode("utf-8", "replace"),
        token,
        time.monotonic() - started,
        limit_s,
    )


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


def _credential_remedy(code: int | None, kind: str, client_id: str, tenant_id: str) -> str:
    """What to do when Entra ID refuses the profile's credential for ACS (its AADSTS code)."""
    app = f"app {client_id}" if client_id else "the app"
    if code == 7000222:
        return (
            f"the client secret of {app} has expired: create a new one (Entra admin center > App registrations > "
            "Certificates & secrets) and export its Value in the variable [acs].client_secret_env names"
        )
    if code == 7000215:
        return (
            f"the client secret is not one of {app}'s: export the secret's Value (not its Secret ID) in the "
            "variable [acs].client_secret_env names"
        )
    if code == 700016:
        return f"{app} is not registered in tenant {tenant_id}: check [acs].client_id and [tenant].tenant_id"
    if code == 500011:
        return (
            f"tenant {tenant_id} has no service principal for Azure Communication Services "
            f"({ACS_DATA_PLANE}): create the Communication Services resource in a subscription of this tenant, "
            "or check [tenant].tenant_id"
        )
    found = diagnosis.for_aadsts(code) if code else None
    if found:
        return found.remedy
    if kind == "managed-identity":
        return "DefaultAzureCredential found no usable identity on this machine: run where a managed identity is"
    return "check the [acs] credential in the profile (client id, and the secret or certificate it names)"
