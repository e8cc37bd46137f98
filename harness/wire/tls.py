"""TLS client contexts, one per trust anchor for the whole process.

Building a context reads and parses the CA file (Mozilla's bundle: about 25 ms), and httpx builds a
new one for every client given `verify=True` or a path: a replay run spent a sixth of its time
there. A context is safe to share between clients and threads once configured, so each trust
anchor gets one.
"""

from __future__ import annotations

import functools
import ssl

import certifi


@functools.lru_cache(maxsize=32)
def client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A context that verifies servers against `cafile` (a private CA: the sandbox's, the receiver's)
    or, without one, against the public roots httpx trusts by default (certifi's bundle)."""
    return ssl.create_default_context(cafile=cafile or certifi.where())
