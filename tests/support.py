"""Helpers the test modules share (not fixtures)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from harness.wire.tenant import TenantInfo, TenantUser

ROOT = Path(__file__).resolve().parent.parent


def cte(*args: str, env: Mapping[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`cte ARGS` in a process of its own, from the repository root (`env`: its whole environment)."""
    return subprocess.run(
        [sys.executable, "-m", "harness.run.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


T = TypeVar("T")
# One thread where every test's event loop runs: Playwright's sync API (the browser tests) keeps an event
# loop running on the main thread for the rest of the session, where asyncio refuses to run another.
_ASYNC = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cte-test-async")


def run_async(awaitable: Awaitable[T], loop: asyncio.AbstractEventLoop | None = None) -> T:
    """`awaitable` to completion on the test thread's own loop: a fresh one, or `loop` (kept across calls)."""
    if loop is not None:
        return _ASYNC.submit(loop.run_until_complete, awaitable).result()
    return _ASYNC.submit(asyncio.run, awaitable).result()  # type: ignore[arg-type]


# The receiver tests' app and tenant, and the clientState their subscriptions are registered with.
RECEIVER_AUDIENCE = "00000000-0000-0000-0000-00000000c001"
RECEIVER_TENANT = "00000000-0000-0000-0000-00000000a001"
CLIENT_STATE = "the-client-state"


def sealed_notification(
    key: Any, token: str, message_id: str, *, nid: str | None = None, with_resource_data: bool = True, **fields: Any
) -> dict[str, Any]:
    """A change notification collection as Graph sends one: a chat message sealed for the receiver's
    `key` (harness.wire.notification_crypto), one validation `token`; `fields` replace the item's keys."""
    from harness.wire import notification_crypto as crypto

    message = {"id": message_id, "body": {"contentType": "text", "content": f"hello {message_id}"}}
    item: dict[str, Any] = {
        "id": nid or f"n-{message_id}",
        "subscriptionId": "sub-1",
        "changeType": "created",
        "clientState": CLIENT_STATE,
        "resource": f"chats('c')/messages('{message_id}')",
        **({"resourceData": {"id": message_id}} if with_resource_data else {}),
        "tenantId": RECEIVER_TENANT,
        "encryptedContent": crypto.encrypt(key.certificate_b64, json.dumps(message).encode(), key.id),
        **fields,
    }
    return {"value": [item], "validationTokens": [token]}


def device_code_sign_in(
    info: TenantInfo, scopes: list[str] | tuple[str, ...], user: TenantUser | None = None
) -> tuple[Any, dict[str, Any]]:
    """A sandbox user (the tenant's first, unless named) signs in with MSAL's device-code flow, entering
    their password on the sandbox's page: (the PublicClientApplication, MSAL's answer)."""
    import msal
    import requests

    session = requests.Session()
    session.verify, session.trust_env = info.ca_bundle, False
    app = msal.PublicClientApplication(
        info.client_id, authority=info.authority, http_client=session, instance_discovery=False
    )
    flow = app.initiate_device_flow(scopes=list(scopes))
    user = user or info.users[0]
    session.post(
        flow["verification_uri"],
        data={"user_code": flow["user_code"], "username": user.upn, "password": user.password},
    ).raise_for_status()
    return app, app.acquire_token_by_device_flow(flow)
