"""ACS Chat through Microsoft's `azure-communication-chat` SDK (1.3), with an ACS token: what an app does
when it assumes that ACS Chat (or the UI library's CallWithChat composite) serves Teams users as calling
does. It does not: Teams users chat through Microsoft Graph (docs/contracts/identity.md §9).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from azure.communication.chat import ChatClient, CommunicationTokenCredential
from azure.core.exceptions import HttpResponseError

from harness.core.config import Tenant
from harness.wire import contract


@dataclass
class ChatAttempt:
    """One ACS Chat call: its answer, as the SDK saw it."""

    operation: str
    status: int | None = None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    emulator_defined: str | None = None
    thread_id: str | None = None
    retries: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def create_thread(tenant: Tenant, acs_token: str, topic: str = "cte conformance") -> ChatAttempt:
    """`ChatClient.create_chat_thread` on the tenant's ACS resource, authenticated by `acs_token`."""
    attempt = ChatAttempt("chat/threads")
    responses: list[object] = []
    client = ChatClient(
        tenant.acs_endpoint,
        CommunicationTokenCredential(acs_token),
        connection_verify=tenant.ca_bundle or True,
        retry_total=0,  # a refusal is the observation; nothing here is worth retrying
    )
    try:
        result = client.create_chat_thread(topic, raw_response_hook=responses.append)
    except HttpResponseError as err:
        attempt.status = err.status_code
        if err.error is not None:
            attempt.code, attempt.message = err.error.code, err.error.message
        _headers(attempt, err.response.headers if err.response is not None else {})
        return attempt
    finally:
        client.close()
    if responses:
        response = responses[-1].http_response  # type: ignore[attr-defined]
        attempt.status = response.status_code
        _headers(attempt, response.headers)
    attempt.thread_id = result.chat_thread.id if result.chat_thread else None
    return attempt


def _headers(attempt: ChatAttempt, headers: object) -> None:
    lowered = {k.lower(): v for k, v in dict(headers).items()}  # type: ignore[call-overload]
    attempt.request_id = lowered.get("ms-cv")
    attempt.emulator_defined = lowered.get(contract.EMULATOR_DEFINED_HEADER)
