"""Where the webhook receiver's time goes under load: a profile, per thread, of `cte receiver serve`'s
receiver while `webhook_load.py`'s senders post encrypted notifications to it (one per POST).

    .venv/bin/python benchmarks/_webhook_profile.py [--notifications 4000] [--transport tls|plain]
        [--workers 4] [--top 25]

The receiver runs in this process: uvicorn's event loop in the main thread and the verification
threads, each under its own cProfile; the senders in their own processes. Prints, per thread group,
the CPU time by category (HTTP parsing, TLS, Starlette, JSON, RSA, ...) and the top functions by
own time. Not part of `make bench` (its name starts with `_`): it is for finding the bound, not a
figure. CPU time under a profiler is inflated (each Python call costs more), so read the shares,
not the absolute times.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import pstats
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import httpx  # noqa: E402
import trustme  # noqa: E402
import uvicorn  # noqa: E402
import webhook_load  # noqa: E402

from harness.client.notifications import standalone  # noqa: E402
from harness.client.notifications.receiver import Receiver  # noqa: E402
from harness.wire import notification_crypto as crypto  # noqa: E402

# What a function's own time is charged to, by where it lives (first match wins).
CATEGORIES = [
    ("RSA unwrap (cryptography)", ("rsa", "decrypt' of 'cryptography", "OAEP")),
    ("TLS (ssl module)", ("ssl.py", "_ssl.", "sslproto", "SSLObject")),
    ("HTTP parsing (h11/httptools)", ("h11", "httptools", "httptools_impl", "h11_impl")),
    ("uvicorn / asyncio loop", ("uvicorn", "asyncio", "selectors", "uvloop", "select.epoll")),
    ("Starlette routing, request, response", ("starlette",)),
    ("JSON (json module)", ("json/", "json.", "_json")),
    ("shape checks (notifications/shape.py)", ("shape.py",)),
    ("JWT (PyJWT)", ("jwt/",)),
    ("AES, HMAC, base64 (other crypto)", ("cryptography", "hmac", "base64", "binascii", "hashlib", "_hashlib")),
    ("receiver logic (notifications/receiver.py)", ("receiver.py",)),
    ("queue and locks", ("queue.py", "threading.py", "acquire", "release", "wait'")),
]


def category(where: tuple[str, int, str]) -> str:
    text = f"{where[0]}:{where[2]}"
    for name, needles in CATEGORIES:
        if any(needle in text for needle in needles):
            return name
    return "other"


WAITING = ("acquire' of '_thread.lock", "method 'poll' of 'select.epoll'", "built-in method time.sleep")


def summarize(title: str, stats: pstats.Stats, top: int) -> None:
    """Own time by category; time blocked on a lock or in epoll (idle, or waiting for the GIL) apart."""
    waiting = 0.0
    by_category: dict[str, float] = {}
    others: dict[str, float] = {}
    for where, entry in stats.stats.items():  # type: ignore[attr-defined]
        if any(needle in where[2] for needle in WAITING):
            waiting += entry[2]
            continue
        name = category(where)
        by_category[name] = by_category.get(name, 0.0) + entry[2]
        if name == "other":
            others[f"{Path(where[0]).name}:{where[2]}"] = entry[2]
    total = sum(by_category.values())
    print(f"\n== {title}: {total:.2f} s busy, {waiting:.2f} s blocked (idle or waiting for the GIL)")
    for name, seconds in sorted(by_category.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / total:6.1%}  {name}")
    biggest = sorted(others.items(), key=lambda kv: -kv[1])[:6]
    print("  other, largest: " + "; ".join(f"{name} {seconds / total:.1%}" for name, seconds in biggest))
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notifications", type=int, default=4000)
    parser.add_argument("--transport", choices=("tls", "plain"), default="tls")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4, help="verification threads")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    signer = crypto.TokenSigner(kid="graph")
    jwks = webhook_load.JwksEndpoint(signer)
    scratch = tempfile.TemporaryDirectory(prefix="cte-profile-")
    settings = standalone.Settings(
        port=0,
        audiences=[webhook_load.AUDIENCE],
        plain_http=args.transport == "plain",
        jwks_url=jwks.url,
        workers=0,  # started below, each under its own profiler
    )
    tls: dict[str, Any] = {}
    ca = None
    if args.transport == "tls":
        authority = trustme.CA()
        leaf = authority.issue_cert("localhost", "127.0.0.1")
        leaf.private_key_pem.write_to_path(f"{scratch.name}/key.pem")  # a throwaway test key
        leaf.cert_chain_pems[0].write_to_path(f"{scratch.name}/cert.pem")
        authority.cert_pem.write_to_path(f"{scratch.name}/ca.pem")
        tls = {"ssl_certfile": f"{scratch.name}/cert.pem", "ssl_keyfile": f"{scratch.name}/key.pem"}
        ca = f"{scratch.name}/ca.pem"
    receiver: Receiver = standalone.build(settings)
    receiver.key_set.refresh()  # as `cte receiver serve` does before it listens
    profiles: list[cProfile.Profile] = []

    def profiled_worker() -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.runcall(receiver._work)

    workers = [threading.Thread(target=profiled_worker, daemon=True) for _ in range(args.workers)]
    for worker in workers:
        worker.start()
    server = uvicorn.Server(uvicorn.Config(receiver.app, log_level="warning", access_log=False, lifespan="off", **tls))
    loop_profile = cProfile.Profile()

    def drive() -> None:
        while not server.started:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"{'https' if ca else 'http'}://localhost:{port}"
        verify: Any = ssl.create_default_context(cafile=ca) if ca else False
        headers = {"Authorization": f"Bearer {receiver.push_token}"}
        registration = {"subscriptionId": "sub-bench", "clientState": webhook_load.STATE}
        registration |= {"includeResourceData": True, "channel": "bench", "tenantId": webhook_load.TENANT}
        httpx.post(f"{url}/subscriptions", json=registration, headers=headers, verify=verify)
        push = webhook_load.PushClient(f"{url}/events?channel=bench", ca, receiver.push_token)
        fake = type("R", (), {})()
        fake.line = {"encryptionCertificate": receiver.keys["cte-receiver"].certificate_b64}
        fake.line["encryptionCertificateId"] = "cte-receiver"
        fake.url, fake.ca = url, ca
        token = signer.token(webhook_load.AUDIENCE, webhook_load.TENANT)
        started, _ = webhook_load.load(
            fake, args.notifications, token=token, batch=1, senders=args.senders, connections=args.connections, run="p"
        )
        deadline = time.monotonic() + 60
        while len(push.events) < args.notifications and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.time() - started
        print(f"{len(push.events)} notifications pushed in {elapsed:.2f} s under the profiler")
        push.close()
        server.should_exit = True

    threading.Thread(target=drive, daemon=True).start()
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    loop_profile.runcall(server.run)  # uvicorn's own loop choice (uvloop if installed)
    receiver.close()
    jwks.stop()
    scratch.cleanup()
    summarize("event loop thread (HTTP, TLS, push streams)", pstats.Stats(loop_profile), args.top)
    worker_stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        worker_stats.add(profile)
    summarize("verification threads", worker_stats, args.top)
    print(json.dumps({"stats": receiver.stats}))


if __name__ == "__main__":
    main()
