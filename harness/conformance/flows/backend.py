"""A partner's token service under test (`cte backend check`): test users sign in, a client hands the
service their Entra tokens the way the profile says, and the answers are judged; where the tenant keeps
an exchange log (the sandbox), what the service sent to ACS is judged too.

What a token service must do comes from Microsoft's documents (docs/token-service.md): exchange the
Teams user's own Entra token with the client app's id (`appid`) and the user's object id (`oid`), hand
back an ACS token that expires with that Entra token, and refuse what it must not exchange.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.client.auth import SignIn, run_sign_ins
from harness.client.token_service import ExchangeLog, ServiceAnswer, TokenServiceClient
from harness.conformance.flows.identity import sign_in_observation
from harness.conformance.verdicts import Check, Observation, ObservationLog
from harness.core.config import Secret, Tenant, UserCredentials
from harness.core.prerequisites import MissingPrerequisite, token_wait
from harness.core.token_service import TokenServiceSpec
from harness.wire import contract

STAGE = "token service"
APP_ID_NOT_EXPECTED = contract.APP_ID_NOT_EXPECTED[2]  # "AAD application is not the expected one."
USER_ID_NOT_EXPECTED = contract.USER_ID_NOT_EXPECTED[2]
# The Entra tokens a scenario hands over, by kind: which app the user signs in to, for which scopes.
TOKEN_KINDS = ("Teams", "Graph", "other app's", "chats-only", "expired")


@dataclass(frozen=True)
class TokenServiceSetup:
    """What a run knows of the token service: its spec, the second tenant (if the profile names one)
    and where the tenant's exchange log is (None: the tenant keeps none)."""

    spec: TokenServiceSpec
    second_tenant: Tenant | None
    exchange_log_url: str | None


@dataclass
class Handover:
    """One hand-over: the token handed, who it belongs to, what came back, what reached ACS meanwhile."""

    caller: str
    sign_in: SignIn | None
    answer: ServiceAnswer
    forwarded: list[dict[str, Any]] | None  # the exchange log's entries meanwhile; None: no log

    @property
    def entra_exp(self) -> int | None:
        return self.sign_in.expires_at if self.sign_in is not None else None

    @property
    def acs_expiry(self) -> int | None:
        if self.answer.expires_on:
            try:
                return int(datetime.fromisoformat(self.answer.expires_on.replace("Z", "+00:00")).timestamp())
            except ValueError:
                pass
        exp = self.answer.acs_claims.get("exp")
        return int(exp) if exp is not None else None


def _forwarded_text(entries: Sequence[dict[str, Any]]) -> list[str]:
    """The exchange log's entries in words (ids stay ids: reports redact them)."""
    lines = []
    for e in entries:
        token = e.get("token") if isinstance(e.get("token"), dict) else {}
        lines.append(
            f"appId {e.get('app_id')}, userId {e.get('user_id')}; token aud {token.get('aud')}, appid "
            f"{token.get('appid')}, oid {token.get('oid')}, expired {token.get('expired')}; ACS answered "
            f"{e.get('status')} {e.get('code') or ''}".rstrip()
        )
    return lines


@dataclass
class BackendFlow(ObservationLog):
    tenant: Tenant
    setup: TokenServiceSetup
    sleep: Callable[[float], None] = time.sleep
    observations: list[Observation] = field(default_factory=list)
    handovers: list[Handover] = field(default_factory=list)
    signed_in: dict[str, SignIn] = field(default_factory=dict)  # by caller
    current: str = "licensed"  # who signed in last: the user a step about "the Entra token" means

    def __post_init__(self) -> None:
        self.service = TokenServiceClient(self.setup.spec)
        self.log = (
            ExchangeLog(self.setup.exchange_log_url, self.tenant.ca_bundle) if self.setup.exchange_log_url else None
        )

    def close(self) -> None:
        self.service.close()
        if self.log is not None:
            self.log.close()

    # -- signing in ----------------------------------------------------------------------------------

    def _tenant_of(self, who: str) -> tuple[Tenant, str]:
        if who != "second-tenant":
            return self.tenant, who
        if self.setup.second_tenant is None:
            raise MissingPrerequisite(
                f"profile {self.tenant.profile!r} names no [backend.second_tenant]; add tenant_id, upn, "
                "password_env and expected (serve or refuse) for a user of another tenant that bought your app"
            )
        return self.setup.second_tenant, "second-tenant"

    def sign_in(self, who: str, kind: str = "Teams") -> Observation:
        """A fresh sign-in (never from the run's token cache: each hand-over carries a token the service
        has not seen) for the kind of token a scenario hands over."""
        tenant, alias = self._tenant_of(who)
        second = self.setup.spec.second_tenant
        if who == "second-tenant" and second is not None and not str(tenant.users[alias].password):
            raise MissingPrerequisite(
                f"[backend.second_tenant].password_env names {second.password_env}, which is not set; export it"
            )
        scopes: Sequence[str] = contract.TEAMS_SCOPES
        if kind == "Graph":
            scopes = (contract.GRAPH_USER_READ,)
        elif kind == "other app's":
            tenant = tenant.with_client(self.setup.spec.client_id("other_client_id", tenant.profile))
        elif kind == "chats-only":
            tenant = tenant.with_client(self.setup.spec.client_id("chats_only_client_id", tenant.profile))
            scopes = (contract.TEAMS_MANAGE_CHATS,)
        signed = run_sign_ins().with_password(tenant, alias, scopes, fresh=True)
        self.signed_in[who] = signed
        self.current = who
        self.observations.append(sign_in_observation(signed))
        return self.last

    def _token(self, who: str, kind: str) -> tuple[str, SignIn | None]:
        if kind == "expired":
            if not self.tenant.expired_teams_token:
                raise MissingPrerequisite(
                    f"profile {self.tenant.profile!r} provides no expired Teams token; set "
                    "[secrets].expired_teams_token_env to a variable holding one"
                )
            return str(self.tenant.expired_teams_token), None
        signed = self.signed_in[who]
        return str(signed.access_token or ""), signed

    # -- handing tokens over ---------------------------------------------------------------------------

    def hand(self, whos: Sequence[str], kind: str = "Teams") -> Observation:
        """Hand each user's token to the service, all at once when there are several."""
        if self.blocked:
            return self.blocking
        mark = self.log.mark() if self.log is not None else None
        tokens = {who: self._token(who, kind) for who in whos}
        answers: dict[str, ServiceAnswer] = {}

        def one(who: str) -> None:
            answers[who] = self.service.hand(who, tokens[who][0])

        if len(whos) == 1:
            one(whos[0])
        else:
            threads = [threading.Thread(target=one, args=(who,)) for who in whos]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        forwarded = self.log.since(mark) if self.log is not None and mark is not None else None
        handed = [Handover(who, tokens[who][1], answers[who], forwarded) for who in whos]
        self.handovers += handed
        self.observations.append(self._observation(handed, kind))
        return self.last

    def _observation(self, handed: list[Handover], kind: str) -> Observation:
        spec = self.setup.spec
        failed = [h for h in handed if not h.answer.served]
        first = failed[0] if failed else handed[0]
        evidence: dict[str, Any] = {
            "token_service": spec.handed_as,
            "handed": f"{kind} Entra token of " + " and ".join(h.caller for h in handed),
            "answers": [
                f"{h.caller}: {h.answer.status or 'no answer'}"
                + (f", ACS token expiring {h.answer.expires_on}" if h.answer.served else f" ({h.answer.message})")
                + f" in {h.answer.elapsed_ms} ms"
                for h in handed
            ],
        }
        forwarded = handed[0].forwarded
        if forwarded is None:
            evidence["exchange_log"] = (
                "not kept by this tenant (only the sandbox keeps one): what the service sent to ACS cannot be seen"
            )
        else:
            evidence["sent_to_acs"] = _forwarded_text(forwarded) or ["nothing: the service did not ask ACS"]
        outcome = "rejected" if failed else "allowed"
        meaning, remedy = self._diagnose(first) if failed else (None, None)
        return Observation(
            outcome,
            STAGE,
            status=first.answer.status,
            message=first.answer.message if failed else None,
            diagnosis=meaning,
            remedy=remedy,
            evidence=evidence,
        )

    def _diagnose(self, handed: Handover) -> tuple[str | None, str | None]:
        """Why a token the service should have exchanged was not: from what reached ACS (the sandbox's
        log) or, without one, from the words the service passed on."""
        said = handed.answer.message or ""
        entries = handed.forwarded or []
        token_of = (handed.sign_in.claims if handed.sign_in is not None else {}) or {}
        sent_app = next((e.get("app_id") for e in entries), None)
        sent_user = next((e.get("user_id") for e in entries), None)
        if (entries and str(sent_app).lower() != str(token_of.get("appid", "")).lower()) or APP_ID_NOT_EXPECTED in said:
            return (
                "the service passed ACS an appId that is not the app the user signed in to (ACS: "
                f"{APP_ID_NOT_EXPECTED!r})",
                "pass the client app's id, the appid claim of the user's Entra token, as appId (not the service's "
                "own app id)",
            )
        if (entries and str(sent_user).lower() != str(token_of.get("oid", "")).lower()) or USER_ID_NOT_EXPECTED in said:
            return (
                f"the service passed ACS a userId that is not the user's object id (ACS: {USER_ID_NOT_EXPECTED!r})",
                "pass the oid claim of the user's Entra token as userId (not the tenant id or the upn)",
            )
        if handed.forwarded is not None and not entries:
            return (
                "the service refused a valid token without asking ACS",
                "check the service's own token validation: issuer per customer tenant (multi-tenant), audience "
                f"{contract.ACS_RESOURCE}, the two Teams scopes",
            )
        if handed.answer.status is None:
            return ("the token service did not answer", "check that it runs and listens at the URL given")
        return (None, "read the service's log for the request; the evidence lists what it answered")

    def expected_for_second_tenant(self) -> str:
        """serve or refuse: what the profile says the service does with the second tenant's users."""
        self._tenant_of("second-tenant")  # none named: a SKIP naming the table to add
        assert self.setup.spec.second_tenant is not None
        return self.setup.spec.second_tenant.expected

    # -- checks ----------------------------------------------------------------------------------------

    def last_handovers(self, count: int = 1) -> list[Handover]:
        return self.handovers[-count:]

    def own_token_checks(self, count: int = 1) -> list[Check]:
        """Each answer's ACS token is the user's own (skypeid orgid:<oid>) and expires with their Entra token."""
        checks = []
        for handed in self.last_handovers(count):
            oid = handed.sign_in.oid if handed.sign_in is not None else None
            skypeid = handed.answer.acs_claims.get("skypeid")
            checks.append(
                Check(
                    f"{handed.caller}'s ACS token is theirs",
                    skypeid == f"orgid:{oid}",
                    f"skypeid {skypeid!r}, user {oid!r}",
                )
            )
            checks.append(
                Check(
                    f"{handed.caller}'s ACS token expires with their Entra token",
                    handed.acs_expiry is not None and handed.acs_expiry == handed.entra_exp,
                    f"ACS expiresOn {handed.answer.expires_on} vs Entra exp {handed.entra_exp}",
                )
            )
        return checks

    def no_entra_token_checks(self, count: int = 1) -> list[Check]:
        return [
            Check(
                f"the answer to {h.caller} carries no Entra token",
                not h.answer.entra_token_in_answer,
                "; ".join(h.answer.entra_token_in_answer) or "none found in its body or headers",
            )
            for h in self.last_handovers(count)
        ]

    def not_forwarded_check(self) -> Check | None:
        """The refused token never reached ACS (only where the tenant keeps an exchange log)."""
        handed = self.last_handovers(1)[0]
        if handed.forwarded is None:
            return None
        sent = _forwarded_text(handed.forwarded)
        return Check("the service did not send the token to ACS", not sent, "; ".join(sent) or "ACS was not asked")

    def refused_as_client_error_check(self) -> Check:
        status = self.last_handovers(1)[0].answer.status
        return Check(
            "the service refused with a 4xx status (not a failure of its own)",
            status is not None and 400 <= status < 500,
            f"status {status}",
        )

    def fresh_token_checks(self) -> list[Check]:
        """After the first Entra token expired: the second hand-over got a new ACS token, expiring with the new one."""
        before, after = self.handovers[-2], self.handovers[-1]
        return [
            Check(
                "a new ACS token, not the first one again",
                str(after.answer.acs_token) != str(before.answer.acs_token),
                "the same token as before the first Entra token expired"
                if str(after.answer.acs_token) == str(before.answer.acs_token)
                else "a different token",
            ),
            *self.own_token_checks(1),
        ]

    # -- waiting for a token to expire -----------------------------------------------------------------

    def wait_for_expiry(self, who: str) -> None:
        """Wait until `who`'s Entra token has expired (a SKIP when it lives longer than the profile allows)."""
        expires, limit = self.signed_in[who].expires_at, self.setup.spec.max_expiry_wait_s
        self.sleep(token_wait(f"{who}'s Entra token", expires, time.time(), limit, "[backend].max_expiry_wait_s"))


def second_tenant(tenant: Tenant, spec: TokenServiceSpec, env: Mapping[str, str]) -> Tenant | None:
    """The profile's second tenant as a tenant: same app and endpoints, its own authority and one user
    (password from the variable the profile names; a replay signs in with the recordings' placeholder)."""
    second = spec.second_tenant
    if second is None:
        return None
    password = env.get(second.password_env, "")
    if not password and tenant.mode == "replay":
        password = str(next(iter(tenant.users.values())).password)  # every replayed user's is the placeholder
    authority_host = tenant.authority.rsplit("/", 1)[0]
    user = UserCredentials("second-tenant", second.upn, Secret(password), second.oid)
    return tenant.for_tenant(f"{authority_host}/{second.tenant_id}", second.tenant_id, {"second-tenant": user})
