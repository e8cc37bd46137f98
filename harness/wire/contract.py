"""Wire facts shared by the client side and the sandbox (neither imports the other; both import this).

Sources: `docs/contracts/identity.md`.
"""

from __future__ import annotations

ACS_RESOURCE = "https://auth.msft.communication.azure.com"
TEAMS_MANAGE_CALLS = f"{ACS_RESOURCE}/Teams.ManageCalls"
TEAMS_MANAGE_CHATS = f"{ACS_RESOURCE}/Teams.ManageChats"
TEAMS_SCOPES = (TEAMS_MANAGE_CALLS, TEAMS_MANAGE_CHATS)
GRAPH_USER_READ = "https://graph.microsoft.com/User.Read"

ENTRA_HOST = "login.microsoftonline.com"
GRAPH_HOST = "graph.microsoft.com"
ACS_HOST_SUFFIX = ".communication.azure.com"
# The sandbox calling model's own API (there is no public Microsoft REST API for call signalling).
SANDBOX_CALLING_HOST = "calling.cte-sandbox.invalid"
CANONICAL_HOSTS = (ENTRA_HOST, GRAPH_HOST, f"*{ACS_HOST_SUFFIX}", SANDBOX_CALLING_HOST)

# A meeting link of Teams for personal use (teams.live.com): the Calling SDK refuses any such
# link before contacting a service, so any link of that form serves in every mode.
PERSONAL_USE_MEETING_LINK = "https://teams.live.com/meet/9398765432101?p=CteSandbox1"

# Set by the sandbox on every answer whose behaviour Microsoft does not document. Its value says
# which behaviour was emulated. Live services never send it, so evidence shows where a verdict
# rests on the emulator's choice rather than on Microsoft's contract.
EMULATOR_DEFINED_HEADER = "x-cte-emulator-defined"
# The sandbox's exchange log, on its ACS endpoint: every Teams-user exchange request the resource
# received (the ids named, the Entra token's audience, app, user, tenant, scopes and expiry; never the
# token) and its answer. The sandbox's own diagnostics: no Microsoft service has it. A client reads
# `{"entries": [...], "last": N}`, `?since=N` for the entries after the N-th.
SANDBOX_EXCHANGE_LOG_PATH = "/sandbox/exchangeLog"
# The id of each answer, as Graph sends it (the sandbox's calling API sends it too).
REQUEST_ID_HEADER = "request-id"

# The ACS error bodies recorded from the real service (docs/contracts/identity.md §1.3).
INVALID_ACCESS_TOKEN = (401, "InvalidAccessToken", "Provided access token is not valid.", None)
APP_ID_REQUIRED = (400, "ValidationError", "AppId: The AppId field is required.", "AppId")
APP_ID_INVALID_FORMAT = (400, "ValidationError", "Provided AppId has invalid format.", "appId")
APP_ID_NOT_EXPECTED = (400, "ValidationError", "AAD application is not the expected one.", "appId")
USER_ID_REQUIRED = (400, "ValidationError", "UserId: The UserId field is required.", "UserId")
USER_ID_INVALID_FORMAT = (400, "ValidationError", "Provided UserId has invalid format.", "userId")
USER_ID_NOT_EXPECTED = (400, "ValidationError", "Provided AAD token issued for unexpected user.", "userId")
