"""What a rejection means for the tenant and what fixes it: AADSTS codes and ACS errors -> remedies.

Meanings: Entra error-code reference (docs/contracts/identity.md §5.3, §6).
"""

from __future__ import annotations

from dataclasses import dataclass

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
        f'create it: New-AzureADServicePrincipal -AppId "{ACS_APP_ID}" (or az ad sp create --id {ACS_APP_ID})',
    ),
    500011: Diagnosis("the resource is not known in the tenant", "check the scope's resource URI"),
    90002: Diagnosis("the tenant does not exist", "check the tenant id in the profile"),
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


def for_aadsts(code: int | None) -> Diagnosis | None:
    return AADSTS.get(code) if code is not None else None


def for_acs(status: int | None, code: str | None) -> Diagnosis | None:
    return ACS.get((status or 0, code or ""))
