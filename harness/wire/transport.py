"""Where connections go: host routing (a hosts-file for this process) and network blocking.

Clients always use canonical Microsoft URLs, so cassettes and reports show canonical hosts in
every mode. Against the sandbox, `route_hosts` resolves those names to the sandbox's loopback
port, the way a hosts file would: TLS is still verified (the sandbox certificate names the
canonical hosts and its CA is given to the clients), and no client code changes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from collections.abc import Iterator, Mapping

_lock = threading.RLock()
_routes: dict[str, tuple[str, int]] = {}
_blocked: list[str] = []  # non-empty: the reason connections are refused
_allowed_ports: set[int] = set()  # loopback ports still reachable while blocked (our own receiver)
_original_getaddrinfo = socket.getaddrinfo
_original_connect = socket.socket.connect


# This machine's loopback: the addresses, and the names a URL may give them (the sandbox, the
# receiver and the stand-ins of tests listen there). A URL at one of them reaches only this host.
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")
LOOPBACK_NAMES = ("localhost", *LOOPBACK_ADDRESSES)
# As the host of a URL the harness is given (a receiver's own address), also the wildcard address.
LOOPBACK_HOSTS = (*LOOPBACK_NAMES, "0.0.0.0")


def origin(url: str) -> str:
    """A URL's origin, lower case: scheme://host[:port]."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_loopback(url: str) -> bool:
    return urllib.parse.urlsplit(url).hostname in LOOPBACK_HOSTS


class NetworkBlocked(ConnectionRefusedError):
    """Raised for a connection attempt while the network is blocked (replay mode)."""


def _route_for(host: str) -> tuple[str, int] | None:
    host = host.lower().rstrip(".")
    if host in _routes:
        return _routes[host]
    for pattern, target in _routes.items():
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return target
    return None


def _getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
    target = _route_for(host) if isinstance(host, str) else None
    if target is None:
        return _original_getaddrinfo(host, port, *args, **kwargs)
    address, routed_port = target
    return [
        (family, kind, proto, "", (addr[0], routed_port))
        for family, kind, proto, _, addr in _original_getaddrinfo(address, routed_port, *args, **kwargs)
    ]


def _connect(self: socket.socket, address) -> None:  # type: ignore[no-untyped-def]
    own = isinstance(address, tuple) and address[0] in LOOPBACK_ADDRESSES and address[1] in _allowed_ports
    if _blocked and self.family in (socket.AF_INET, socket.AF_INET6) and not own:
        raise NetworkBlocked(f"{_blocked[-1]}: refused a connection to {address!r}")
    return _original_connect(self, address)


def _install() -> None:
    socket.getaddrinfo = _getaddrinfo
    socket.socket.connect = _connect  # type: ignore[method-assign]


@contextlib.contextmanager
def route_hosts(routes: Mapping[str, tuple[str, int]]) -> Iterator[None]:
    """Resolve each host (or `*.suffix`) in `routes` to the given loopback address and port."""
    with _lock:
        saved = dict(_routes)
        _routes.update({k.lower(): v for k, v in routes.items()})
        _install()
    try:
        yield
    finally:
        with _lock:
            _routes.clear()
            _routes.update(saved)


@contextlib.contextmanager
def block_network(
    reason: str = "the network is blocked in replay mode", allow_ports: set[int] | None = None
) -> Iterator[None]:
    """Refuse every connection, except to the given loopback ports (servers of the harness's own)."""
    with _lock:
        _blocked.append(reason)
        added = set(allow_ports or ()) - _allowed_ports
        _allowed_ports.update(added)
        _install()
    try:
        yield
    finally:
        with _lock:
            _blocked.remove(reason)
            _allowed_ports.difference_update(added)
