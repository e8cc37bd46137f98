"""Send and list throughput through harness.graph beside raw httpx against the same sandbox, in the
same run (the ratio is our client's overhead), and the time to poll 10,000 messages.

    .venv/bin/python benchmarks/graph_throughput.py [--messages N] [--poll 10000]

The sandbox runs with its deterministic clock (300 ms of model time a request), so Graph's
throttling never engages and the figures measure the client, not the rate limit. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import transport  # noqa: E402
from harness.auth import EntraSignIn  # noqa: E402
from harness.config import load_profile  # noqa: E402
from harness.graph import GRAPH_SCOPES, GraphClient, MarkerSource  # noqa: E402
from harness.sandbox.server import Sandbox  # noqa: E402
from harness.sandbox.state import Message  # noqa: E402


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:7.1f}/s ({seconds * 1000 / count:.2f} ms each)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--poll", type=int, default=10_000)
    args = parser.parse_args()
    with Sandbox(deterministic=True) as sandbox, transport.route_hosts(sandbox.host_routes()):
        info = sandbox.tenant_info("contoso")
        tenant = load_profile("sandbox").for_sandbox(info, sandbox.host_routes(), "sandbox")
        token = str(EntraSignIn(tenant).with_password("adele", GRAPH_SCOPES).access_token)
        oids = {u["alias"]: u["oid"] for u in info["users"]}
        client = GraphClient(tenant, token, markers=MarkerSource("bench"))
        raw = httpx.Client(
            base_url="https://graph.microsoft.com/v1.0/",
            verify=ssl.create_default_context(cafile=tenant.ca_bundle),
            headers={"Authorization": f"Bearer {token}"},
        )

        def chat() -> str:
            return client.create_chat("group", [oids["adele"], oids["megan"]], "bench").body["id"]

        raw_chat, our_chat = chat(), chat()
        started = time.perf_counter()
        for i in range(args.messages):
            raw.post(f"chats/{raw_chat}/messages", json={"body": {"content": f"raw {i}"}}).raise_for_status()
        raw_send = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(args.messages):
            assert client.send(f"chats/{our_chat}/messages", f"ours {i}").result.ok
        our_send = time.perf_counter() - started

        started = time.perf_counter()
        url, listed = f"chats/{raw_chat}/messages?$top=50", 0
        while url:
            page = raw.get(url).json()
            listed += len(page["value"])
            url = page.get("@odata.nextLink")
        raw_list = time.perf_counter() - started
        started = time.perf_counter()
        ours, _ = client.all_messages(f"chats/{our_chat}/messages", top=50)
        our_list = time.perf_counter() - started
        assert listed == len(ours) == args.messages

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
            for i in range(args.poll)
        )
        started = time.perf_counter()
        polled, pages = client.all_messages(f"chats/{big}/messages", top=50)
        poll_time = time.perf_counter() - started
        assert len(polled) == args.poll and len({m.id for m in polled}) == args.poll

    print(
        f"send  {args.messages} messages: raw httpx {rate(args.messages, raw_send)} | harness.graph "
        f"{rate(args.messages, our_send)} | ratio {our_send / raw_send:.2f}x"
    )
    print(
        f"list  {args.messages} messages ($top=50): raw httpx {raw_list * 1000:.0f} ms | harness.graph "
        f"{our_list * 1000:.0f} ms | ratio {our_list / raw_list:.2f}x"
    )
    print(
        f"poll  {args.poll} messages ($top=50, {len(pages)} pages): {poll_time:.2f} s "
        f"({poll_time * 1000 / len(pages):.1f} ms a page)"
    )


if __name__ == "__main__":
    main()
