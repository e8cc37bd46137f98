"""The identity chain as scenarios drive it: sign in (MSAL) -> exchange (ACS) -> observation.

Steps call these functions and stay a few lines each; every observation comes from a real call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from harness.client import acs_chat
from harness.client.auth import SignIn, run_sign_ins
from harness.client.browser_sign_in import BrowserSignIn, sign_in_in_browser
from harness.client.identity import AcsIdentity, Exchange, entra_credential
from harness.conformance import diagnosis
from harness.conformance.flows import observe
from harness.conformance.verdicts import Observation, ObservationLog
from harness.core.config import Tenant
from harness.core.prerequisites import MissingPrerequisite
from harness.wire import contract

# A well-formed GUID that is nobody's object id or app id (a placeholder in every tenant).
FOREIGN_GUID = "00000000-0000-0000-0000-0000000d0001"
ACS_CHAT_STAGE = "ACS Chat: create thread"
SCOPE_SETS = {
    "with the Teams scopes": contract.TEAMS_SCOPES,
    "for Microsoft Graph only": (contract.GRAPH_USER_READ,),
}


def sign_in_observation(result: SignIn) -> Observation:
    evidence = {"suberror": result.suberror} if result.suberror and not result.ok else {}
    if result.cached:
        evidence["token"] = "from the run's token cache (MSAL acquire_token_silent): no request sent"
    return observe.answer(
        result,
        "sign-in",
        evidence,
        allowed=result.ok,
        status=result.status,
        code=f"AADSTS{result.aadsts}" if result.aadsts else None,
        message=result.error,
        found=diagnosis.for_aadsts(result.aadsts),
        retries=result.retries,
    )


# Where a browser sign-in was decided: the authorize request (its sign-in page), or the code's redemption.
BROWSER_STAGES = {"authorize": "authorize request", "sign-in": "authorize request", "redeem": "code redemption"}


def browser_sign_in_observation(result: BrowserSignIn) -> Observation:
    """A browser sign-in (authorization code + PKCE) as evidence: the redirect URI, who redeemed the code
    (the page, with its Origin, or a back end without one), and the requests the browser made."""
    redeemer = (
        f"the browser page (Origin: {result.origin})" if result.redeemed_by == "browser" else "a back end (no Origin)"
    )
    evidence: dict[str, object] = {"redirect_uri": result.redirect_uri, "code redeemed by": redeemer}
    evidence["requests"] = "; ".join(result.requests)
    if result.app_saw:
        evidence["MSAL.js returned"] = result.app_saw
    if result.ok:
        evidence["scp"] = result.claims.get("scp")
    elif result.description:
        evidence["error_description"] = result.description
    return observe.answer(
        result,
        BROWSER_STAGES.get(result.stage, "code redemption"),
        evidence,
        allowed=result.ok,
        status=result.status,
        code=f"AADSTS{result.aadsts}" if result.aadsts else result.error,
        message=result.error,
        found=diagnosis.for_redirect_uri(result.aadsts, result.redirect_uri),
    )


def exchange_time(result: Exchange) -> float:
    """When the service handled the exchange: its Date header (the sandbox's model clock, a recording's
    time in replay), else this machine's clock."""
    try:
        return parsedate_to_datetime(result.date).timestamp() if result.date else time.time()
    except (TypeError, ValueError):
        return time.time()


def exchange_observation(result: Exchange, entra_token: str | None = None) -> Observation:
    """`entra_token`: the Entra token sent, whose claims name the cause of a 401 InvalidAccessToken."""
    return observe.answer(
        result,
        result.operation,
        {"expiresOn": result.expires_on, "acs_auth": result.auth} if result.ok else {"acs_auth": result.auth},
        allowed=result.ok,
        status=result.status,
        code=result.code,
        message=result.message,
        target=result.target,
        found=diagnosis.for_exchange(result.status, result.code, entra_token, exchange_time(result)),
        retries=result.retries,
    )


@dataclass
class IdentityFlow(ObservationLog):
    """Sign a Teams user in, then exchange their Entra token for an ACS token."""

    tenant: Tenant
    sign_in: SignIn | None = None
    exchange: Exchange | None = None
    acs_user: Exchange | None = None
    browser_sign_in: BrowserSignIn | None = None
    observations: list[Observation] = field(default_factory=list)

    def sign_in_with_password(
        self, alias: str, scopes: Sequence[str] = contract.TEAMS_SCOPES, *, wrong_password: bool = False
    ) -> Observation:
        """Signed in once per run for these scopes (the run's token cache); a wrong password always asks Entra."""
        self.sign_in = run_sign_ins().with_password(self.tenant, alias, scopes, wrong_password=wrong_password)
        self.observations.append(sign_in_observation(self.sign_in))
        return self.last

    def sign_in_in_browser(self, alias: str, *, redeem: str = "browser") -> Observation:
        """Sign the user in through headless Chromium at the profile's redirect URI, the code redeemed by
        the page (a SPA) or by a back end (`redeem="server"`)."""
        user = self.tenant.user(alias)
        self.browser_sign_in = sign_in_in_browser(self.tenant, user, redeem=redeem)
        sent = sum(1 for line in self.browser_sign_in.requests if "/oauth2/v2.0/token" in line)
        run_sign_ins().count(user.alias, contract.TEAMS_SCOPES, sent)  # Entra asked outside MSAL: counted too
        self.observations.append(browser_sign_in_observation(self.browser_sign_in))
        return self.last

    def browser_token_has_teams_scopes(self) -> tuple[bool, str]:
        assert self.browser_sign_in is not None
        granted = set(str(self.browser_sign_in.claims.get("scp", "")).split())
        wanted = {s.rsplit("/", 1)[1] for s in contract.TEAMS_SCOPES}
        return wanted <= granted, f"scp {' '.join(sorted(granted)) or '(none)'}"

    def create_acs_user(self) -> Observation:
        self.acs_user = self._acs().create_user_with_token(("voip",))
        self.observations.append(exchange_observation(self.acs_user))
        return self.last

    def exchange_token(
        self, token: str = "signed-in", app_id: str = "matching", user_id: str = "matching"
    ) -> Observation:
        if self.blocked:
            return self.blocking
        assert self.sign_in is not None, "sign a user in before exchanging their token"
        sent = self._token(token)
        self.exchange = self._acs().exchange(
            sent, self._id(app_id, self.tenant.client_id), self._id(user_id, self.sign_in.oid or "")
        )
        observation = exchange_observation(self.exchange, sent)
        if self.exchange.ok:
            observation.evidence["entra_exp"] = self.sign_in.expires_at
        self.observations.append(observation)
        return self.last

    def renew(self, alias: str) -> str | None:
        """A new ACS token for `alias` after the one in use expired, as an app's token refresher gets it: a
        fresh Entra token (MSAL with the refresh token, forced; the password grant where each sign-in stands
        alone) exchanged again. None, with the rejection recorded, when either step is refused."""
        signed = run_sign_ins().again(self.tenant, alias, contract.TEAMS_SCOPES)
        self.observations.append(sign_in_observation(signed))
        if not signed.ok:
            return None
        self.sign_in = signed
        self.exchange = None
        observed = self.exchange_token()
        return str(self.exchange.token) if observed.outcome == "allowed" and self.exchange is not None else None

    def chat_through_acs(self) -> Observation:
        """Start an ACS Chat thread with the exchanged ACS token, as an app that assumes ACS Chat serves
        Teams users would (azure-communication-chat's ChatClient)."""
        if self.blocked:
            return self.blocking
        assert self.exchange is not None and self.exchange.token, "exchange a token before chatting with it"
        attempt = acs_chat.create_thread(self.tenant, str(self.exchange.token))
        observation = observe.answer(
            attempt,
            ACS_CHAT_STAGE,
            {"thread": "created"} if attempt.ok else {},
            allowed=attempt.ok,
            status=attempt.status,
            code=attempt.code,
            message=attempt.message,
            found=diagnosis.for_acs_chat(attempt.status, attempt.code),
        )
        self.observations.append(observation)
        return self.last

    def _acs(self) -> AcsIdentity:
        """ACS Identity; reached with an Entra ID credential, one per run and tenant (it caches its app token)."""
        tenant, spec = self.tenant, self.tenant.acs_credential
        if spec is None:
            return AcsIdentity(tenant)
        key = ("acs", spec.kind, spec.authority_host, spec.tenant_id, spec.client_id, str(tenant.ca_bundle or ""))
        return AcsIdentity(tenant, credential=run_sign_ins().kept(key, lambda: entra_credential(tenant)))

    def _token(self, kind: str) -> str:
        assert self.sign_in is not None
        if kind == "signed-in":
            return str(self.sign_in.access_token or "")
        if kind == "expired":
            if not self.tenant.expired_teams_token:
                raise MissingPrerequisite(
                    f"profile {self.tenant.profile!r} provides no expired Teams token; set "
                    "[secrets].expired_teams_token_env to a variable holding one"
                )
            return str(self.tenant.expired_teams_token)
        if kind == "acs-user":
            assert self.acs_user is not None and self.acs_user.token, "create an ACS user first"
            return str(self.acs_user.token)
        return {"empty": "", "garbage": "invalid"}[kind]

    def _id(self, kind: str, matching: str) -> str:
        assert self.sign_in is not None
        return {
            "matching": matching,
            "empty": "",
            "malformed": "invalid",
            "foreign": FOREIGN_GUID,
            "user-oid": self.sign_in.oid or "",
        }[kind]

    # -- checks a scenario makes on a successful exchange ------------------------------------------

    def expiry_matches(self) -> tuple[bool, str]:
        assert self.exchange is not None and self.sign_in is not None
        acs, entra = self.exchange.expires_epoch, self.sign_in.expires_at
        return acs == entra, f"ACS expiresOn {self.exchange.expires_on} vs Entra exp {entra}"

    def calling_sdk_claims(self) -> tuple[bool, str]:
        """The claims the Calling SDK reads before it creates a TeamsCallAgent (docs/contracts/calling.md §2)."""
        assert self.exchange is not None
        claims = self.exchange.claims
        scopes = str(claims.get("acsScope", "")).split(",")
        problems = []
        if not ({"voip", "voip.join"} & set(scopes)):
            problems.append(f"acsScope {claims.get('acsScope')!r} has no voip")
        if not (claims.get("resourceId") or claims.get("skypeid")):
            problems.append("neither resourceId nor skypeid")
        if not claims.get("tid"):
            problems.append("no tid (the SDK would treat it as an ACS user)")
        return not problems, "; ".join(problems) or "acsScope has voip, resourceId/skypeid and tid present"

    def acs_user_token_is_not_teams(self) -> tuple[bool, str]:
        assert self.acs_user is not None
        claims = self.acs_user.claims
        return not claims.get("tid"), "an ACS-user token carries no tid" if not claims.get("tid") else "it has a tid"
