"""Inbound traffic in recordings: notifications Graph delivered during a recording are kept (scrubbed,
decrypted) beside the scenario's cassette, and in replay they are sealed again (encrypted for the
receiver's key, validation tokens signed by the replay signer) and posted to the receiver in order.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.client.notifications.service import ReceiverService
from harness.core.cassettes import load_yaml
from harness.wire import notification_crypto as crypto

SEALED_FIELDS = ("encryptedContent", "clientState")


def inbound_path(cassette: Path) -> Path:
    return cassette.with_name(cassette.stem + ".inbound.yaml")


class InboundCapture:
    """Record mode: collects what the receiver accepted, scrubbed, then writes it beside the cassette."""

    def __init__(self, scrub: Callable[[Any], Any]) -> None:
        self._scrub = scrub
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, entry: dict[str, Any]) -> None:
        notification = {k: v for k, v in entry["notification"].items() if k not in SEALED_FIELDS}
        kept = {"kind": entry["kind"], "notification": notification}
        if entry.get("message") is not None:
            kept["message"] = entry["message"]
        with self._lock:
            self._entries.append(self._scrub(kept))

    def write(self, cassette: Path) -> None:
        path = inbound_path(cassette)
        if self._entries:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump({"inbound": self._entries}, sort_keys=True, allow_unicode=True))
        else:
            path.unlink(missing_ok=True)


class InboundReplayer:
    """Replay mode: feeds the recorded notifications to the receiver, one at a time, on demand."""

    def __init__(self, cassette: Path, service: ReceiverService, signer: crypto.TokenSigner, audience: str) -> None:
        path = inbound_path(cassette)
        self._entries: list[dict[str, Any]] = load_yaml(path.read_text()).get("inbound", []) if path.exists() else []
        self._service, self._signer, self._audience = service, signer, audience

    @property
    def pending(self) -> int:
        return len(self._entries)

    def deliver_next(self) -> bool:
        if not self._entries:
            return False
        entry = self._entries.pop(0)
        notification = dict(entry["notification"])
        registration = self._service.receiver.registrations.get(str(notification.get("subscriptionId")))
        notification["clientState"] = registration.client_state if registration else ""
        body: dict[str, Any] = {"value": [notification]}
        if "message" in entry and registration is not None:
            key = self._service.receiver.keys.get(registration.key_id or "")
            if key is not None:
                plaintext = json.dumps(entry["message"]).encode()
                notification["encryptedContent"] = crypto.encrypt(key.certificate_b64, plaintext, key.id)
                body["validationTokens"] = [self._signer.token(self._audience, str(notification.get("tenantId")))]
        path = "/lifecycle" if entry["kind"] == "lifecycle" else "/notifications"
        with httpx.Client(verify=self._service.tls_context()) as client:
            client.post(self._service.local_url + path, json=body)
        return True
