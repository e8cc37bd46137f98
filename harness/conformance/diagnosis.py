"""What a rejection means for the tenant and what fixes it: AADSTS codes and ACS errors -> remedies.

Meanings: Entra error-code reference (docs/contracts/identity.md §5.3, §6).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.wire import contract, tokens

ACS_APP_ID = "1fd5118e-2576-4263-8130-9503064c837a"


@dataclass(frozen=True)
class Diagnosis:
    meaning: str
    remedy: str


AADSTS: dict[int, Diagnosis] = {
    50126: Diagnosis("wrong username or password", "check the test user's UPN and the password environment variable"),
    50034: Diagnosis(
        "the user does not exist in this tenant's directory",
        "check the test user's UPN, and that the profile's tenant (the authority) is the user's own",
    ),
    50020: Diagnosis(
        "the user belongs to another tenant and is not a guest in this one",
        "sign the user in at their home tenant's authority (a multi-tenant app needs that tenant's consent), "
        "or invite the user as a guest of this tenant",
    ),
    50076: Diagnosis(
        "multi-factor authentication is required for this user",
        "use a test account excluded from MFA/conditional access, or sign in with the device-code flow",
    ),
    50079: Diagnosis("the user must enrol in MFA", "complete MFA registration or exclude the test account"),
    53003: Diagnosis("blocked by conditional access", "exclude the test account or app from the policy"),
    65001: Diagnosis(
        "the app has no consent for the requested permissions",
        "grant consent for Teams.ManageCalls and Teams.ManageChats: "
        "https://login.microsoftonline.com/<tenant-id>/adminconsent?client_id=<client-id>",
    ),
    700016: Diagnosis(
        "the app registration does not exist in this tenant",
        "check the client id in the profile, or install/consent the multi-tenant app in this tenant",
    ),
    7000218: Diagnosis(
        "public client flows are disabled on the app registration",
        "set Authentication > Advanced settings > Allow public client flows = Yes",
    ),
    70011: Diagnosis(
        "a requested scope is not valid (or, for an app's own token, scopes of two resources were requested)",
        "request https://auth.msft.communication.azure.com/Teams.ManageCalls and .../Teams.ManageChats, and only "
        "one resource per token request",
    ),
    28000: Diagnosis(
        "scopes of more than one resource in one token request (the ACS Teams scopes and Graph's, say)",
        "make one token request per resource: the Teams scopes for the ACS exchange, Graph's scopes for chat; "
        "MSAL gets the second silently for the same account",
    ),
    650052: Diagnosis(
        "the tenant has no service principal for Azure Communication Services",
        # Microsoft Graph PowerShell or the Azure CLI (the AzureAD module's New-AzureADServicePrincipal is
        # retired): https://learn.microsoft.com/entra/identity/enterprise-apps/create-service-principal-cross-tenant
        f'create it as an Application Administrator: Connect-MgGraph -Scopes "Application.ReadWrite.All"; '
        f"New-MgServicePrincipal -AppId {ACS_APP_ID} (or az ad sp create --id {ACS_APP_ID})",
    ),
    500011: Diagnosis("the resource is not known in the tenant", "check the scope's resource URI"),
    90002: Diagnosis("the tenant does not exist", "check the tenant id in the profile"),
    # A browser sign-in's redirect URI (docs/contracts/identity.md §11); for_redirect_uri names the URI.
    50011: Diagnosis(
        "the redirect URI is not registered on the app registration (under any platform)",
        "add the app's redirect URI, exactly as the app sends it, under Authentication > Add a platform > "
        "Single-page application",
    ),
    9002326: Diagnosis(
        "a browser redeemed a code for a redirect URI registered under 'Mobile and desktop applications' or "
        "'Web', not 'Single-page application'",
        "register the redirect URI under 'Single-page application', not 'Mobile and desktop applications' or 'Web'",
    ),
    9002327: Diagnosis(
        "a non-browser (a back end, a native app, a script) redeemed a code for a redirect URI registered under "
        "'Single-page application'",
        "redeem the code in the browser (MSAL.js) as a single-page app does; a back end or native app needs its "
        "redirect URI under 'Web' or 'Mobile and desktop applications' instead",
    ),
    9002325: Diagnosis(
        "a browser redeemed a code for a 'Single-page application' redirect URI without PKCE (no code_challenge "
        "in the authorize request, or no code_verifier in the redemption)",
        "use PKCE (S256) as MSAL.js does: send code_challenge with the authorize request and the matching "
        "code_verifier with the redemption; a server-side sign-in needs its redirect URI under 'Web' instead",
    ),
}

ACS: dict[tuple[int, str], Diagnosis] = {
    (401, "InvalidAccessToken"): Diagnosis(
        "the ACS Identity service did not accept the Entra token",
        "send a current Entra token issued for https://auth.msft.communication.azure.com with both Teams scopes",
    ),
    (400, "ValidationError"): Diagnosis(
        "the exchange request is malformed or does not match the token",
        "send appId = the token's appid claim and userId = its oid claim",
    ),
    (401, "Denied"): Diagnosis(
        "the ACS resource rejected the request signature",
        "check the ACS connection string (access key) and the machine clock",
    ),
    (403, "Forbidden"): Diagnosis(
        "the Teams user is not allowed to use ACS as a Teams user", "assign the user a Microsoft Teams licence"
    ),
}


# ACS Chat refusing a Teams user's ACS token (docs/contracts/identity.md §9): ACS Chat is for ACS users;
# Microsoft states that Teams users chat through Graph (microsoft/MicrosoftCloud#29).
ACS_CHAT: dict[tuple[int, str], Diagnosis] = {
    (403, "Forbidden"): Diagnosis(
        "ACS Chat does not serve Teams users: their ACS token (from the exchange) is for calling only",
        "Teams users chat through Microsoft Graph: send and read with POST/GET /chats/{id}/messages and a "
        "delegated Graph token (ChatMessage.Send, Chat.Read); use ACS Chat (and CallWithChat) for ACS users only",
    ),
}


def for_acs_chat(status: int | None, code: str | None) -> Diagnosis | None:
    return ACS_CHAT.get((status or 0, code or ""))


def for_aadsts(code: int | None) -> Diagnosis | None:
    return AADSTS.get(code) if code is not None else None


def for_redirect_uri(code: int | None, redirect_uri: str) -> Diagnosis | None:
    """A browser sign-in's AADSTS code, the remedy naming the redirect URI and where to register it."""
    where = "Entra admin center > App registrations > the app > Authentication"
    if code == 50011:
        return Diagnosis(
            AADSTS[50011].meaning,
            f"register {redirect_uri} under 'Single-page application' ({where} > Add a platform), exactly as the "
            "app sends it",
        )
    if code == 9002326:
        return Diagnosis(
            AADSTS[9002326].meaning,
            f"register {redirect_uri} under 'Single-page application', not 'Mobile and desktop applications' "
            f"or 'Web' ({where}: remove it from the other platform)",
        )
    if code == 9002327:
        return Diagnosis(
            AADSTS[9002327].meaning,
            "redeem the code in the browser (MSAL.js), as a single-page app does; a back end or native app "
            f"redeeming it needs {redirect_uri} under 'Web' or 'Mobile and desktop applications', not "
            "'Single-page application'",
        )
    return for_aadsts(code)


def for_acs(status: int | None, code: str | None) -> Diagnosis | None:
    return ACS.get((status or 0, code or ""))


# The exchange's 401 InvalidAccessToken: ACS answers an expired token, a token for another audience and one
# without a Teams scope with the same body (docs/contracts/identity.md §1.3), so the cause is read from the
# Entra token the client sent (its exp, aud and scp, unverified) at the time of the exchange.
ACS_AUDIENCES = (contract.ACS_RESOURCE, ACS_APP_ID)  # a v1 token names the resource URI, a v2 token its app id
TEAMS_SCOPE_NAMES = tuple(scope.rsplit("/", 1)[-1] for scope in contract.TEAMS_SCOPES)
EXCHANGE_REMEDIES = {
    "not a JWT": "send the Entra access token MSAL returned (the access_token of its result) as it is, not an empty "
    "or altered string",
    "not Entra": "exchange the Teams user's Entra access token (from MSAL), not an ACS token or another JWT",
    "expired": "sign in again or refresh (MSAL acquire_token_silent) and exchange the new token; never exchange "
    "a cached Entra token past its exp",
    "audience": f"request the token for the ACS Teams scopes ({contract.TEAMS_MANAGE_CALLS} and "
    f"{contract.TEAMS_MANAGE_CHATS}), not for Graph or another API: one token request per resource",
    "scopes": "add the missing Azure Communication Services permission (Teams.ManageCalls, Teams.ManageChats) to "
    "the app registration, grant consent, and request both scopes at sign-in",
}


def exchange_token_causes(entra_token: str, at: float) -> list[tuple[str, str]]:
    """What in the Entra token sent to the exchange (read, never verified) makes ACS refuse it at `at`
    (epoch seconds: the exchange's time), as (cause, what was seen); empty when exp, aud and scp are fine."""
    try:
        claims = tokens.claims(entra_token)
    except ValueError:
        return [("not a JWT", "the token sent is not a JWT" + (" (it is empty)" if not entra_token else ""))]
    if "aud" not in claims:
        kind = "an ACS token" if "skypeid" in claims or "acsScope" in claims else "a JWT without an aud claim"
        return [("not Entra", f"the token sent is not an Entra ID access token ({kind})")]
    causes = []
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and exp <= at:
        causes.append(
            ("expired", f"the Entra token had expired (exp {tokens.utc(exp)}, the exchange at {tokens.utc(at)})")
        )
    if claims["aud"] not in ACS_AUDIENCES:
        causes.append(("audience", f"the Entra token is for {claims['aud']!r}, not for {contract.ACS_RESOURCE}"))
    granted = str(claims.get("scp", "")).split()
    missing = [s for s in TEAMS_SCOPE_NAMES if s not in granted]
    if missing and claims["aud"] in ACS_AUDIENCES:  # another API's token lacks them as a matter of course
        causes.append(("scopes", f"the Entra token lacks {', '.join(missing)} (its scp: {' '.join(granted)!r})"))
    return causes


def for_exchange(status: int | None, code: str | None, entra_token: str | None, at: float) -> Diagnosis | None:
    """An exchange's rejection; for the 401 InvalidAccessToken, the cause seen in the token sent and its remedy."""
    found = for_acs(status, code)
    if (status, code) != (401, "InvalidAccessToken") or entra_token is None or found is None:
        return found
    causes = exchange_token_causes(entra_token, at)
    if not causes:
        return Diagnosis(
            "the Entra token's exp, aud and scp are as ACS requires: ACS refused it for what the client cannot "
            "read (its signature or issuer, or a tenant ACS does not serve)",
            found.remedy,
        )
    return Diagnosis("; ".join(seen for _, seen in causes), "; ".join(EXCHANGE_REMEDIES[c] for c, _ in causes))
