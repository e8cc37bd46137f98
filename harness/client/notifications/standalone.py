"""`cte receiver serve`: the webhook receiver on its own, for a team's app behind their tunnel.

It listens with TLS from the certificate and key it is given, or over plain HTTP on loopback only
(a tunnel in front terminates TLS), prints one JSON line saying where Graph and the app's clients
reach it, then serves until SIGINT or SIGTERM. The encryption key whose certificate the line carries,
and the push token, exist only in this process's memory.

The app creates its Graph subscription with the printed notification and lifecycle URLs and
certificate, then registers it with the receiver (POST the registration URL, bearer push token:
`{"subscriptionId", "clientState", "includeResourceData": true, "tenantId"?, "channel"?}`); its
clients read the messages from the push URL (SSE) or the WebSocket URL, with the same bearer token.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, TextIO

from harness.client.notifications.receiver import Receiver
from harness.client.notifications.verification import KeySet
from harness.wire.notification_crypto import ISSUERS

MICROSOFT_JWKS = "https://login.microsoftonline.com/common/discovery/v2.0/keys"
KEY_ID = "cte-receiver"


class ServeError(Exception):
    """A setting that keeps the receiver from starting; the message is one line with the fix."""


@dataclass
class Settings:
    port: int
    audiences: list[str]
    host: str = "127.0.0.1"
    cert_file: str | None = None
    key_file: str | None = None
    key_password_env: str | None = None
    plain_http: bool = False
    public_url: str | None = None
    jwks_url: str = MICROSOFT_JWKS
    jwks_ca: str | None = None
    workers: int = 4  # RSA releases the GIL: more threads than cores keep both busy (benchmarks)
    issuers: tuple[str, ...] = ISSUERS

    def check(self) -> None:
        if not self.audiences or not all(self.audiences):
            raise ServeError("--audience is required: your app's client id (validation tokens' aud)")
        if self.plain_http:
            if self.cert_file or self.key_file:
                raise ServeError("--plain-http takes no --cert/--key: choose TLS or plain HTTP behind a tunnel")
            if not _loopback(self.host):
                raise ServeError(
                    f"--plain-http listens on loopback only, not {self.host!r}: keep --host 127.0.0.1 and put a "
                    "tunnel (which terminates TLS) in front, or give --cert and --key"
                )
        elif not (self.cert_file and self.key_file):
            raise ServeError(
                "give --cert and --key (PEM) for TLS, or --plain-http to listen on loopback behind a tunnel"
            )
        else:
            for flag, path in (("--cert", self.cert_file), ("--key", self.key_file)):
                if not os.path.isfile(str(path)):
                    raise ServeError(f"{flag} {path}: no such file; give the PEM file's path")
            try:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(str(self.cert_file), str(self.key_file), password=self.key_password())
            except (ssl.SSLError, ValueError) as err:
                raise ServeError(
                    f"--cert {self.cert_file} and --key {self.key_file} do not load as a PEM certificate and its "
                    f"key ({_reason(err)}); check the files (an encrypted key needs --key-password-env)"
                ) from None
        if not 0 <= self.port <= 65535:
            raise ServeError(f"--port {self.port} is not a port: 1-65535, or 0 for any free one")
        if self.public_url:
            parts = urllib.parse.urlsplit(self.public_url)
            if parts.scheme != "https" or not parts.hostname:
                raise ServeError(
                    f"--public-url {self.public_url!r} is not an https URL: Graph calls only https notification URLs"
                )
        if self.workers < 1 or self.workers > 64:
            raise ServeError(f"--workers {self.workers}: give 1 to 64 verification threads")
        try:
            KeySet(jwks_url=self.jwks_url)
        except ValueError as err:
            raise ServeError(str(err)) from None

    def key_password(self) -> bytes | None:
        if not self.key_password_env:
            return None
        value = os.environ.get(self.key_password_env)
        if not value:
            raise ServeError(f"--key-password-env {self.key_password_env}: that environment variable is not set")
        return value.encode()

    @property
    def scheme(self) -> str:
        return "http" if self.plain_http else "https"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reason(err: Exception) -> str:
    return (getattr(err, "reason", None) or str(err) or type(err).__name__).splitlines()[0]


def server_implementation() -> tuple[str, str]:
    """uvicorn's HTTP parser and event loop: httptools and uvloop when installed (about half the event
    loop's time per request, `benchmarks/webhook_load.py`), else h11 and asyncio."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return http, loop


def describe(settings: Settings, receiver: Receiver, port: int) -> dict[str, Any]:
    """The JSON line: what Graph, the app and its clients need."""
    host = "localhost" if _loopback(settings.host) else settings.host
    local = f"{settings.scheme}://{host}:{port}"
    public = (settings.public_url or local).rstrip("/")
    websocket = "wss" if public.startswith("https") else "ws"
    key = receiver.keys[KEY_ID]
    return {
        "listening": local,
        "notificationUrl": f"{public}/notifications",
        "lifecycleNotificationUrl": f"{public}/lifecycle",
        "registrationUrl": f"{public}/subscriptions",
        "pushUrl": f"{public}/events?channel={{channel}}",
        "pushWebSocketUrl": f"{websocket}{public.removeprefix('https').removeprefix('http')}/ws?channel={{channel}}",
        "pushToken": receiver.push_token,
        "encryptionCertificate": key.certificate_b64,
        "encryptionCertificateId": key.id,
        "audience": settings.audiences,
        "jwksUrl": settings.jwks_url,
        "server": "uvicorn ({}, {})".format(*server_implementation()),
    }


def build(settings: Settings) -> Receiver:
    verify: Any = ssl.create_default_context(cafile=settings.jwks_ca) if settings.jwks_ca else True
    receiver = Receiver(
        audience=settings.audiences,
        jwks_url=settings.jwks_url,
        jwks_verify=verify,
        issuers=settings.issuers,
        workers=settings.workers,
    )
    receiver.new_key(KEY_ID)
    return receiver


def serve(settings: Settings, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
    """Check the settings, print the JSON line once listening, serve until SIGINT/SIGTERM."""
    import uvicorn

    settings.check()
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as error:
        sock.close()
        raise ServeError(
            f"cannot listen on {settings.host}:{settings.port}: {error.strerror}; pick another --port (0: any free one)"
        ) from None
    receiver = build(settings)
    receiver.key_set.refresh()
    if receiver.key_set.last_error:
        print(
            f"cte receiver: cannot fetch the signing keys from {settings.jwks_url} ({receiver.key_set.last_error}); "
            "tokens will be refused until a later fetch succeeds (check --jwks-url and the network)",
            file=err,
            flush=True,
        )
    tls: dict[str, Any] = {}
    if not settings.plain_http:
        tls = {"ssl_certfile": settings.cert_file, "ssl_keyfile": settings.key_file}
        password = settings.key_password()
        if password:
            tls["ssl_keyfile_password"] = password.decode()
    http, loop = server_implementation()
    config = uvicorn.Config(
        receiver.app,
        http=http,
        loop=loop,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=1,
        **tls,
    )
    server = uvicorn.Server(config)
    port = sock.getsockname()[1]

    def stop(*_: Any) -> None:  # a stop asked for is a clean exit (uvicorn would re-raise the signal)
        receiver.hub.close_all()  # open push streams end first, rather than being cut at the deadline
        server.should_exit = True

    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.01)
        if server.started:
            print(json.dumps(describe(settings, receiver, port)), file=out, flush=True)

    threading.Thread(target=announce, name="cte-receiver-announce", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        receiver.hub.close_all()
        receiver.close()
