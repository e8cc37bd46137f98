"""Serving an ASGI app over HTTPS on loopback from a background thread (uvicorn), with a private CA.

Neutral ground: the sandbox (the emulated cloud) and the notification receiver (the client side)
both serve this way; neither imports the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
import uvicorn

from harness.wire.transport import LOOPBACK_ADDRESSES, LOOPBACK_NAMES

LOOPBACK = LOOPBACK_ADDRESSES[0]  # where servers bind


@dataclass
class Certificates:
    """A private CA (its bundle for clients) and a leaf for the server, in a temporary directory."""

    ca_bundle: Path
    cert_file: Path
    key_file: Path
    directory: tempfile.TemporaryDirectory[str]

    @classmethod
    def issue(cls, *names: str, organization: str = "cte-conformance") -> Certificates:
        ca = trustme.CA(organization_name=f"{organization} CA")
        leaf = ca.issue_cert(*LOOPBACK_NAMES, *names)
        directory = tempfile.TemporaryDirectory(prefix="cte-tls-")
        base = Path(directory.name)
        ca.cert_pem.write_to_path(str(base / "ca.pem"))
        leaf.private_key_pem.write_to_path(str(base / "key.pem"))
        leaf.cert_chain_pems[0].write_to_path(str(base / "cert.pem"))
        for extra in leaf.cert_chain_pems[1:]:
            extra.write_to_path(str(base / "cert.pem"), append=True)
        return cls(base / "ca.pem", base / "cert.pem", base / "key.pem", directory)


class _Server(uvicorn.Server):
    """uvicorn's server, whose main loop is woken at once to stop: uvicorn's own looks at `should_exit`
    every 0.1 s, which every server stopped (two a sandbox run) waited out."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    async def main_loop(self) -> None:
        """uvicorn's main loop (a tick every 0.1 s, until a tick says to exit), its wait cut short by `wake`;
        uvicorn's own where it has no `on_tick` to call."""
        if not hasattr(uvicorn.Server, "on_tick"):
            await super().main_loop()
            return
        woken = asyncio.Event()
        self._wake = (asyncio.get_running_loop(), woken)
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    def wake(self) -> None:
        if self._wake is not None:
            loop, woken = self._wake
            with contextlib.suppress(RuntimeError):  # the loop has closed: the server has stopped already
                loop.call_soon_threadsafe(woken.set)


class ServerThread:
    """uvicorn in a daemon thread on 127.0.0.1; `port` is known once `start()` returns."""

    def __init__(self, app: Any, certificates: Certificates, *, port: int = 0, name: str = "cte-server") -> None:
        self.app, self.certificates, self.name = app, certificates, name
        self._requested_port = port
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> ServerThread:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this (Linux): without it Nagle holds a response body back
        # ~40 ms behind its headers, for every request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((LOOPBACK, self._requested_port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            ssl_certfile=str(self.certificates.cert_file),
            ssl_keyfile=str(self.certificates.key_file),
            log_level="warning",
            access_log=False,
            lifespan="off",
            date_header=False,  # the app says what time it is (the sandbox's clock may be fixed)
            timeout_graceful_shutdown=0.2,
        )
        server = self._server = _Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start on {LOOPBACK}:{self.port}")
            time.sleep(0.01)
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # idle keep-alive connections need no grace period
            self._server.wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
