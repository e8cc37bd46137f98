"""A bounded load on the webhook receiver, on loopback: encrypted notifications (each with its own
AES key wrapped for the receiver's RSA-2048 certificate, as Graph sends them) posted by sender
processes, 5% of them sent twice as Graph's retries would be.

    .venv/bin/python benchmarks/webhook_load.py [--notifications 6000] [--batch 1] [--senders 2]

`--batch N` puts N notifications in each POST, as Graph does when it has several to deliver.
Prints: sustained notifications verified and decrypted per second, p50/p99 acknowledgement
latency, p50/p99 send-to-client latency, lost and duplicate deliveries; and, as the baseline
measured in the same run, the single-core cost of decrypting one notification. Asserts nothing.
Targets (issue 4): >= 2,000/s, p99 ack <= 50 ms, 0 lost, 0 duplicates pushed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from harness.notifications import crypto  # noqa: E402
from harness.notifications.push import PushClient  # noqa: E402
from harness.notifications.receiver import Registration  # noqa: E402
from harness.notifications.service import ReceiverService  # noqa: E402

AUDIENCE, TENANT = "00000000-0000-0000-0000-00000000c001", "00000000-0000-0000-0000-00000000a001"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def sender(job: dict) -> tuple[list[float], dict[str, float], dict[int, int]]:
    """One sender process: seal its notifications, then post them (and the retries) as fast as acked."""
    bodies = []
    for start in range(job["first"], job["last"], job["batch"]):
        items = []
        for i in range(start, min(start + job["batch"], job["last"])):
            message = {"id": str(i), "body": {"contentType": "text", "content": f"load {i} " + "x" * 200}}
            items.append(
                {
                    "id": f"n-{i}",
                    "subscriptionId": "sub-bench",
                    "changeType": "created",
                    "clientState": "state",
                    "resource": f"chats('c')/messages('{i}')",
                    "tenantId": TENANT,
                    "encryptedContent": crypto.encrypt(job["certificate"], json.dumps(message).encode(), "bench"),
                }
            )
        bodies.append({"value": items, "validationTokens": [job["token"]]})
    bodies += bodies[::20]  # Graph's retries: 5% delivered again
    acks, sent_at, statuses = [], {}, {}
    with httpx.Client(base_url=job["url"], verify=False) as client:
        for body in bodies:
            for item in body["value"]:
                sent_at.setdefault(item["resource"].split("'")[-2], time.time())
            began = time.perf_counter()
            response = client.post(
                "/notifications", content=json.dumps(body), headers={"content-type": "application/json"}
            )
            acks.append((time.perf_counter() - began) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return acks, sent_at, statuses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notifications", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--senders", type=int, default=2)
    args = parser.parse_args()
    signer = crypto.TokenSigner(kid="graph")
    service = ReceiverService.start(audience=AUDIENCE, trusted_keys={signer.kid: signer.public_key})
    key = service.receiver.new_key("bench")
    service.receiver.register(Registration("sub-bench", "state", channel="bench", key_id=key.id))
    push = PushClient(service.events_url("bench"), str(service.certificates.ca_bundle))

    sample = crypto.encrypt(key.certificate_b64, b'{"id": "0"}' + b" " * 200, key.id)
    began = time.perf_counter()
    for _ in range(300):
        crypto.decrypt(sample, service.receiver.keys)
    decrypt_ms = (time.perf_counter() - began) * 1000 / 300

    share = args.notifications // args.senders
    jobs = [
        {
            "first": n * share,
            "last": args.notifications if n == args.senders - 1 else (n + 1) * share,
            "batch": args.batch,
            "certificate": key.certificate_b64,
            "token": signer.token(AUDIENCE, TENANT),
            "url": service.local_url,
        }
        for n in range(args.senders)
    ]
    load_started = time.perf_counter()
    with ProcessPoolExecutor(args.senders) as pool:
        results = list(pool.map(sender, jobs))
    posting = time.perf_counter() - load_started
    deadline = time.monotonic() + 120
    while sum(1 for d in service.receiver.decisions if d.accepted) < args.notifications and time.monotonic() < deadline:
        time.sleep(0.01)
    processed = time.perf_counter() - load_started
    push.wait_for(lambda _: len(push.events) >= args.notifications, timeout=30)
    acks = [a for r in results for a in r[0]]
    sent_at = {k: v for r in results for k, v in r[1].items()}
    statuses: dict[int, int] = {}
    for r in results:
        for status, count in r[2].items():
            statuses[status] = statuses.get(status, 0) + count
    pushed = [str((e.get("message") or {}).get("id")) for e in push.events]
    latencies = [(e["pushedAt"] - sent_at[i]) * 1000 for e, i in zip(push.events, pushed, strict=True) if i in sent_at]
    accepted = sum(1 for d in service.receiver.decisions if d.accepted)
    push.close()
    service.stop()

    print(
        f"load: {args.notifications} notifications ({args.batch} per POST) + 5% resent, {args.senders} sender "
        f"processes; HTTP statuses {statuses}"
    )
    print(
        f"baseline: decrypting one notification takes {decrypt_ms:.2f} ms on one core "
        f"(= {1000 / decrypt_ms:.0f}/s per core)"
    )
    print(
        f"sustained: {accepted / processed:.0f} notifications/s verified and decrypted "
        f"({accepted} in {processed:.2f} s; posting took {posting:.2f} s)"
    )
    print(f"acknowledgement: p50 {percentile(acks, 0.5):.1f} ms, p99 {percentile(acks, 0.99):.1f} ms")
    print(f"send-to-client: p50 {percentile(latencies, 0.5):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms")
    print(f"lost: {args.notifications - len(set(pushed))}, duplicates pushed: {len(pushed) - len(set(pushed))}")


if __name__ == "__main__":
    main()
