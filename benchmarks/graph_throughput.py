"""Send and list throughput through harness.client.graph beside raw httpx against the same sandbox, in the
same run (the ratio is our client's overhead), and the time to poll 10,000 messages beside raw httpx
following the same `@odata.nextLink` pages.

    .venv/bin/python benchmarks/graph_throughput.py [--messages N] [--poll 10000] [--json PATH]

Each send alternates with a raw one and each listing with a raw listing (median of `--list-rounds`),
so drift and noise fall on both; the raw client is configured as harness.client.graph's own (TLS, timeouts,
no environment), so the ratio is what the client's logic costs: markers, retries, typed messages.
The sandbox runs with its deterministic clock (300 ms of model time a request), so Graph's
throttling never engages and the figures measure the client, not the rate limit. Prints figures (and
with `--json`, writes them); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import ssl
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.client.auth import EntraSignIn  # noqa: E402
from harness.client.graph import GRAPH_SCOPES, GraphClient, MarkerSource  # noqa: E402
from harness.core.config import load_profile  # noqa: E402
from harness.sandbox.server import Sandbox  # noqa: E402
from harness.sandbox.state import Message  # noqa: E402
from harness.wire import transport  # noqa: E402


def row(name: str, ours: float, raw: float, unit: str, **extra: Any) -> dict[str, Any]:
    return {
        "figure": name,
        "value": round(ours, 4),
        "unit": unit,
        "baseline": "raw httpx, same requests",
        "baseline_value": round(raw, 4),
        "ratio": round(ours / raw, 3),
        **extra,
    }


def raw_list(raw: httpx.Client, url: str) -> int:
    listed = 0
    while url:
        page = raw.get(url).json()
        listed += len(page["value"])
        url = page.get("@odata.nextLink")
    return listed


def measure(messages: int, poll: int, warmup: int = 20, list_rounds: int = 5) -> dict[str, Any]:
    with Sandbox(deterministic=True) as sandbox, transport.route_hosts(sandbox.host_routes()):
        info = sandbox.tenant_info("contoso")
        tenant = load_profile("sandbox").for_sandbox(info, sandbox.host_routes(), "sandbox")
        token = str(EntraSignIn(tenant).with_password("adele", GRAPH_SCOPES).access_token)
        oids = info.oids()
        client = GraphClient(tenant, token, markers=MarkerSource("bench"))
        raw = httpx.Client(
            base_url="https://graph.microsoft.com/v1.0/",
            verify=ssl.create_default_context(cafile=tenant.ca_bundle),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0, connect=10.0),
            trust_env=False,  # configured as harness.client.graph configures its client: only the client differs
        )

        def chat() -> str:
            return client.create_chat("group", [oids["adele"], oids["megan"]], "bench").body["id"]

        warm = chat()  # connections, TLS sessions and first-call paths warmed for both clients alike
        for i in range(warmup):
            raw.post(f"chats/{warm}/messages", json={"body": {"content": f"warm {i}"}}).raise_for_status()
            assert client.send(f"chats/{warm}/messages", f"warm {i}").result.ok
        raw_list(raw, f"chats/{warm}/messages?$top=50")
        client.all_messages(f"chats/{warm}/messages", top=50)

        # Each timed step alternates with its baseline, so drift and a noisy neighbour weigh on both alike.
        raw_chat, our_chat = chat(), chat()
        raw_send = our_send = 0.0
        for i in range(messages):
            began = time.perf_counter()
            raw.post(f"chats/{raw_chat}/messages", json={"body": {"content": f"raw {i}"}}).raise_for_status()
            middle = time.perf_counter()
            assert client.send(f"chats/{our_chat}/messages", f"ours {i}").result.ok
            raw_send, our_send = raw_send + middle - began, our_send + time.perf_counter() - middle

        raw_listings, our_listings = [], []
        for _ in range(list_rounds):
            began = time.perf_counter()
            listed = raw_list(raw, f"chats/{raw_chat}/messages?$top=50")
            middle = time.perf_counter()
            ours, _ = client.all_messages(f"chats/{our_chat}/messages", top=50)
            raw_listings.append(middle - began)
            our_listings.append(time.perf_counter() - middle)
            assert listed == len(ours) == messages
        raw_listing, our_listing = statistics.median(raw_listings), statistics.median(our_listings)

        big = chat()
        stored = sandbox.ctx.directory.tenants["contoso"].chats[big]
        start = sandbox.ctx.now()
        stored.messages.extend(
            Message(
                str(10**12 + i),
                start + timedelta(milliseconds=i),
                start + timedelta(milliseconds=i),
                oids["adele"],
                f"seeded {i}",
                "text",
            )
            for i in range(poll)
        )
        started = time.perf_counter()
        raw_polled = raw_list(raw, f"chats/{big}/messages?$top=50")
        raw_poll = time.perf_counter() - started
        started = time.perf_counter()
        polled, pages = client.all_messages(f"chats/{big}/messages", top=50)
        our_poll = time.perf_counter() - started
        assert raw_polled == len(polled) == poll and len({m.id for m in polled}) == poll
        raw.close()

    return {
        "name": "graph_throughput",
        "params": {"messages": messages, "poll": poll, "top": 50, "warmup": warmup, "list_rounds": list_rounds},
        "figures": [
            row(
                f"Graph send, {messages} messages",
                our_send * 1000 / messages,
                raw_send * 1000 / messages,
                "ms/message",
                per_second=round(messages / our_send, 1),
                baseline_per_second=round(messages / raw_send, 1),
            ),
            row(
                f"Graph list, {messages} messages ($top=50)",
                our_listing * 1000,
                raw_listing * 1000,
                "ms",
                statistic="median",
            ),
            row(
                f"Graph poll, {poll} messages ({len(pages)} pages)",
                our_poll,
                raw_poll,
                "s",
                ms_per_page=round(our_poll * 1000 / len(pages), 2),
            ),
        ],
        "details": {"pages_polled": len(pages)},
    }


def report(result: dict[str, Any]) -> None:
    send, listing, poll = result["figures"]
    messages, polled, pages = result["params"]["messages"], result["params"]["poll"], result["details"]["pages_polled"]
    print(
        f"send  {messages} messages: raw httpx {send['baseline_per_second']:7.1f}/s "
        f"({send['baseline_value']:.2f} ms each) | harness.client.graph {send['per_second']:7.1f}/s "
        f"({send['value']:.2f} ms each) | ratio {send['ratio']:.2f}x"
    )
    print(
        f"list  {messages} messages ($top=50): raw httpx {listing['baseline_value']:.0f} ms | harness.client.graph "
        f"{listing['value']:.0f} ms | ratio {listing['ratio']:.2f}x"
    )
    print(
        f"poll  {polled} messages ($top=50, {pages} pages): raw httpx {poll['baseline_value']:.2f} s | "
        f"harness.client.graph {poll['value']:.2f} s ({poll['ms_per_page']:.1f} ms a page) | ratio {poll['ratio']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--poll", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=20, help="messages sent and listed by both first, untimed")
    parser.add_argument("--list-rounds", type=int, default=5, help="listings of each kind; the median is shown")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    result = measure(args.messages, args.poll, args.warmup, args.list_rounds)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
