"""The receiver served over HTTPS on loopback, and where Graph should send notifications."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from harness.client.notifications.receiver import Receiver
from harness.wire.serving import Certificates, ServerThread
from harness.wire.tls import client_context


@dataclass
class ReceiverService:
    receiver: Receiver
    server: ServerThread
    certificates: Certificates
    public_url: str  # what Graph calls: the loopback URL, or a tunnel in front of it in live mode

    @classmethod
    def start(
        cls,
        *,
        audience: str,
        trusted_keys: dict[str, Any],
        public_url: str | None = None,
        port: int = 0,
        capture: Any = None,
        jwks_url: str | None = None,
        jwks_verify: Any = True,
    ) -> ReceiverService:
        """`port`: the loopback port to listen on (0: any free one); a tunnel's public URL forwards to it.
        `jwks_url`: where the validation tokens' signing keys are published (refetched when a token
        names a key not held, rate-limited), besides the `trusted_keys` given."""
        receiver = Receiver(
            audience=audience, trusted_keys=trusted_keys, capture=capture, jwks_url=jwks_url, jwks_verify=jwks_verify
        )
        certificates = Certificates.issue(organization="cte-conformance receiver")
        server = ServerThread(receiver.app, certificates, port=port, name="cte-receiver").start()
        return cls(receiver, server, certificates, public_url or f"https://localhost:{server.port}")

    @property
    def local_url(self) -> str:
        return f"https://localhost:{self.server.port}"

    def tls_context(self) -> ssl.SSLContext:
        return client_context(str(self.certificates.ca_bundle))

    def events_url(self, channel: str) -> str:
        return f"{self.local_url}/events?channel={channel}"

    def stop(self) -> None:
        self.receiver.hub.close_all()
        self.receiver.hub.wait_ended(0.05)  # let the streams end before the server does
        self.server.stop()
        self.receiver.close()
        self.certificates.directory.cleanup()
