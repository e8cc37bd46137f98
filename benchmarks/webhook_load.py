"""A bounded load on the webhook receiver, on loopback: encrypted notifications (each with its own
AES key wrapped for the receiver's RSA-2048 certificate, as Graph sends them) posted by sender
processes, 5% of them sent twice as Graph's retries would be.

    .venv/bin/python benchmarks/webhook_load.py [--notifications 6000] [--batch 1] [--senders 2] [--json PATH]

`--batch N` puts N notifications in each POST, as Graph does when it has several to deliver.
Prints: sustained notifications verified and decrypted per second, p50/p99 acknowledgement
latency, p50/p99 send-to-client latency, lost and duplicate deliveries; and, as the baselines
measured in the same run, the single-core cost of decrypting one notification (for throughput) and
the same receiver without load: notifications posted one at a time, each pushed before the next is
sent (for both latencies). With `--json`, also writes the figures. Asserts nothing.
Targets (issue 4): >= 2,000/s, p99 ack <= 50 ms, 0 lost, 0 duplicates pushed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

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


def notification(i: int | str, certificate: str) -> dict[str, Any]:
    message = {"id": str(i), "body": {"contentType": "text", "content": f"load {i} " + "x" * 200}}
    return {
        "id": f"n-{i}",
        "subscriptionId": "sub-bench",
        "changeType": "created",
        "clientState": "state",
        "resource": f"chats('c')/messages('{i}')",
        "tenantId": TENANT,
        "encryptedContent": crypto.encrypt(certificate, json.dumps(message).encode(), "bench"),
    }


def sender(job: dict) -> tuple[list[float], dict[str, float], dict[int, int]]:
    """One sender process: seal its notifications, then post them (and the retries) as fast as acked."""
    bodies = []
    for start in range(job["first"], job["last"], job["batch"]):
        items = [notification(i, job["certificate"]) for i in range(start, min(start + job["batch"], job["last"]))]
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


def unloaded(service: ReceiverService, push: PushClient, certificate: str, token: str, count: int):  # type: ignore[no-untyped-def]
    """The baseline: the same path with nothing else in flight, one notification at a time."""
    acks, latencies = [], []
    with httpx.Client(base_url=service.local_url, verify=False) as client:
        for n in range(count):
            message_id = f"idle-{n}"
            body = json.dumps({"value": [notification(message_id, certificate)], "validationTokens": [token]})
            sent = time.time()
            began = time.perf_counter()
            response = client.post("/notifications", content=body, headers={"content-type": "application/json"})
            acks.append((time.perf_counter() - began) * 1000)
            response.raise_for_status()
            event = push.wait_for(lambda e, i=message_id: str((e.get("message") or {}).get("id")) == i, timeout=10)
            if event is None:
                raise SystemExit(f"{message_id} never reached the client")
            latencies.append((event["pushedAt"] - sent) * 1000)
    return acks, latencies


def figure(name: str, value: float, unit: str, baseline: str, base: float, **extra: Any) -> dict[str, Any]:
    return {
        "figure": name,
        "value": round(value, 3),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(base, 3),
        "ratio": round(value / base, 3),
        **extra,
    }


def measure(notifications: int, batch: int, senders: int, idle: int = 200) -> dict[str, Any]:
    signer = crypto.TokenSigner(kid="graph")
    service = ReceiverService.start(audience=AUDIENCE, trusted_keys={signer.kid: signer.public_key})
    key = service.receiver.new_key("bench")
    service.receiver.register(Registration("sub-bench", "state", channel="bench", key_id=key.id))
    push = PushClient(service.events_url("bench"), str(service.certificates.ca_bundle), service.receiver.push_token)

    sample = crypto.encrypt(key.certificate_b64, b'{"id": "0"}' + b" " * 200, key.id)
    began = time.perf_counter()
    for _ in range(300):
        crypto.decrypt(sample, service.receiver.keys)
    decrypt_ms = (time.perf_counter() - began) * 1000 / 300

    token = signer.token(AUDIENCE, TENANT)
    idle_acks, idle_latencies = unloaded(service, push, key.certificate_b64, token, idle)

    share = notifications // senders
    jobs = [
        {
            "first": n * share,
            "last": notifications if n == senders - 1 else (n + 1) * share,
            "batch": batch,
            "certificate": key.certificate_b64,
            "token": token,
            "url": service.local_url,
        }
        for n in range(senders)
    ]

    def accepted() -> int:
        return sum(1 for d in service.receiver.decisions if d.accepted and not d.notification_id.startswith("n-idle-"))

    load_started = time.perf_counter()
    with ProcessPoolExecutor(senders) as pool:
        results = list(pool.map(sender, jobs))
    posting = time.perf_counter() - load_started
    deadline = time.monotonic() + 120
    while accepted() < notifications and time.monotonic() < deadline:
        time.sleep(0.01)
    processed = time.perf_counter() - load_started
    push.wait_for(lambda _: len(push.events) >= notifications + idle, timeout=30)
    acks = [a for r in results for a in r[0]]
    sent_at = {k: v for r in results for k, v in r[1].items()}
    statuses: dict[int, int] = {}
    for r in results:
        for status, count in r[2].items():
            statuses[status] = statuses.get(status, 0) + count
    events = [e for e in push.events if not str((e.get("message") or {}).get("id")).startswith("idle-")]
    pushed = [str((e.get("message") or {}).get("id")) for e in events]
    latencies = [(e["pushedAt"] - sent_at[i]) * 1000 for e, i in zip(events, pushed, strict=True) if i in sent_at]
    load_accepted = accepted()
    push.close()
    service.stop()

    unloaded_name = f"same receiver unloaded ({idle} one at a time)"
    return {
        "name": "webhook_load",
        "params": {"notifications": notifications, "batch": batch, "senders": senders, "resent_share": 0.05},
        "figures": [
            figure(
                "webhook throughput (verified + decrypted)",
                load_accepted / processed,
                "notifications/s",
                "decrypt-only rate, one core",
                1000 / decrypt_ms,
            ),
            figure(
                "webhook ack latency p50",
                percentile(acks, 0.5),
                "ms",
                unloaded_name,
                percentile(idle_acks, 0.5),
            ),
            figure(
                "webhook ack latency p99",
                percentile(acks, 0.99),
                "ms",
                unloaded_name,
                percentile(idle_acks, 0.99),
            ),
            figure(
                "webhook send-to-client latency p50",
                percentile(latencies, 0.5),
                "ms",
                unloaded_name,
                percentile(idle_latencies, 0.5),
            ),
            figure(
                "webhook send-to-client latency p99",
                percentile(latencies, 0.99),
                "ms",
                unloaded_name,
                percentile(idle_latencies, 0.99),
            ),
        ],
        "details": {
            "http_statuses": {str(k): v for k, v in sorted(statuses.items())},
            "decrypt_ms": round(decrypt_ms, 4),
            "accepted": load_accepted,
            "processing_s": round(processed, 3),
            "posting_s": round(posting, 3),
            "lost": notifications - len(set(pushed)),
            "duplicates_pushed": len(pushed) - len(set(pushed)),
        },
    }


def report(result: dict[str, Any]) -> None:
    params, details = result["params"], result["details"]
    throughput, ack50, ack99, push50, push99 = result["figures"]
    print(
        f"load: {params['notifications']} notifications ({params['batch']} per POST) + 5% resent, "
        f"{params['senders']} sender processes; HTTP statuses {details['http_statuses']}"
    )
    print(
        f"baseline: decrypting one notification takes {details['decrypt_ms']:.2f} ms on one core "
        f"(= {throughput['baseline_value']:.0f}/s per core)"
    )
    print(
        f"sustained: {throughput['value']:.0f} notifications/s verified and decrypted "
        f"({details['accepted']} in {details['processing_s']:.2f} s; posting took {details['posting_s']:.2f} s)"
    )
    for name, p50, p99 in (("acknowledgement", ack50, ack99), ("send-to-client", push50, push99)):
        print(
            f"{name}: p50 {p50['value']:.1f} ms, p99 {p99['value']:.1f} ms "
            f"(unloaded: p50 {p50['baseline_value']:.1f} ms, p99 {p99['baseline_value']:.1f} ms)"
        )
    print(f"lost: {details['lost']}, duplicates pushed: {details['duplicates_pushed']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notifications", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--idle", type=int, default=200, help="notifications for the unloaded baseline")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    result = measure(args.notifications, args.batch, args.senders, args.idle)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
