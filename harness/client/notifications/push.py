"""A client of the push channel (Server-Sent Events): what an app's front end would be (over TLS, or
plain HTTP to a loopback receiver).

It speaks HTTP/1.1 over a plain TLS socket rather than through an HTTP library, because recording
libraries patch those and buffer whole responses, which an endless event stream never finishes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from harness.wire.tls import client_context


class PushClient:
    def __init__(self, url: str, ca_bundle: str | None, token: str, *, connect_timeout: float = 10.0) -> None:
        self.url = url
        self._token = token
        self.events: list[dict[str, Any]] = []
        self.error: str | None = None
        self._context = client_context(str(ca_bundle) if ca_bundle else None)
        self._changed = threading.Condition()
        self._connected = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="cte-push-client", daemon=True)
        self._thread.start()
        if not self._connected.wait(connect_timeout) or self.error:
            raise ConnectionError(f"the push channel did not answer: {self.error or 'timeout'}")

    def _read(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        plain = parts.scheme == "http"  # a receiver on loopback behind a tunnel (`cte receiver serve --plain-http`)
        host, port = parts.hostname or "localhost", parts.port or (80 if plain else 443)
        try:
            raw = socket.create_connection((host, port), timeout=10)
            with raw if plain else self._context.wrap_socket(raw, server_hostname=host) as tls:
                target = parts.path + (f"?{parts.query}" if parts.query else "")
                tls.sendall(
                    f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
                    f"Authorization: Bearer {self._token}\r\n"
                    f"Connection: close\r\n\r\n".encode()
                )
                tls.settimeout(None)
                stream = tls.makefile("rb")
                status = stream.readline().decode("latin-1")
                if " 200 " not in status:
                    raise ConnectionError(f"status {status.strip()!r}")
                chunked = False
                while (line := stream.readline()) not in (b"\r\n", b""):
                    chunked |= line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower()
                self._events(self._chunks(stream) if chunked else iter(stream.readline, b""))
        except (OSError, ValueError, ConnectionError) as err:
            if not self._closed.is_set():
                self.error = f"{type(err).__name__}: {err}"
        finally:
            self._connected.set()

    @staticmethod
    def _chunks(stream: Any):  # type: ignore[no-untyped-def]
        """The body of a chunked response, as lines."""
        buffer = b""
        while True:
            size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            buffer += stream.read(size)
            stream.readline()  # the CRLF after each chunk
            *lines, buffer = buffer.split(b"\n")
            yield from (line + b"\n" for line in lines)

    def _events(self, lines: Any) -> None:
        for raw_line in lines:
            if self._closed.is_set():
                return
            line = raw_line.decode("utf-8").rstrip("\r\n")
            if line.startswith(":"):
                self._connected.set()
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                event["pushedAt"] = time.time()
                with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((e for e in self.events if predicate(e)), None)
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._changed.wait(min(remaining, 0.5))

    def close(self) -> None:
        """Stop listening; the reader notices at the next line (a keep-alive comes every second)."""
        self._closed.set()
