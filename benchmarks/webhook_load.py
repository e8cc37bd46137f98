"""A bounded load on the webhook receiver as a team runs it (`cte receiver serve`, its own process), on
loopback: encrypted notifications (each with its own AES key wrapped for the receiver's RSA-2048
certificate, as Graph sends them, and a validation token checked against a JWKS endpoint) posted by
sender processes over keep-alive connections, 5% of them sent twice as Graph's retries would be.

    .venv/bin/python benchmarks/webhook_load.py [--notifications 6000] [--batch 1] [--senders 2]
        [--connections 8] [--transport tls|plain] [--workers 4] [--repeat 3] [--json PATH]

`--batch N` puts N notifications in each POST, as Graph does when it has several to deliver.
`--transport plain` serves plain HTTP on loopback, as behind a tunnel that terminates TLS.

Measured at the push client (SSE), so a notification counts once it has been verified, decrypted and
pushed: sustained notifications/s, p50/p99 acknowledgement latency (at the senders), p50/p99
send-to-client latency, lost and duplicate deliveries; each `--repeat` with a fresh receiver, the
spread printed. Baselines measured in the same run, on the same machine: the single-core rate of
decrypting one notification (RSA-OAEP unwrap + HMAC + AES: the crypto ceiling), the same receiver
answering the validation handshake to the same load generator (the HTTP ceiling: no JSON, no
crypto), and the same receiver unloaded (notifications posted one at a time, each pushed before the
next is sent, for both latencies). With `--json`, also writes the figures. Asserts nothing.
Targets (issue 15): >= 2,000/s one per POST, >= 5,000/s batched, p99 ack <= 50 ms, 0 lost, 0 duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import jwt  # noqa: E402
import trustme  # noqa: E402

from harness.client.notifications.push import PushClient  # noqa: E402
from harness.wire import notification_crypto as crypto  # noqa: E402

AUDIENCE, TENANT = "00000000-0000-0000-0000-00000000c001", "00000000-0000-0000-0000-00000000a001"
STATE = "benchmark-client-state"


def thread_cpu(pid: int, roles: dict[int, str] | None = None) -> dict[str, float]:
    """CPU seconds (user + system) of process `pid`, by thread role (`roles`: OS thread id -> role;
    other threads count as "other"). Linux /proc; {} elsewhere."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    found: dict[str, float] = {}
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            stat = (task / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            role = (roles or {}).get(int(task.name), "other")
            found[role] = found.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    except OSError:
        return {}
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (Linux /proc/stat; zeros elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def children_cpu(pid: int) -> float:
    """CPU seconds of the child processes of `pid` that are still running (the decrypt processes)."""
    total = 0.0
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += sum(thread_cpu(int(child)).values())
    except OSError:
        pass
    return total


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# -- the receiver under test, and a JWKS endpoint for its validation tokens --------------------------


class JwksEndpoint:
    """Plain HTTP on loopback (the receiver allows that for a JWKS URL only there)."""

    def __init__(self, signer: crypto.TokenSigner) -> None:
        entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signer.public_key))
        document = json.dumps({"keys": [{**entry, "kid": signer.kid, "use": "sig"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/keys"

    def stop(self) -> None:
        self.server.shutdown()


class Receiver:
    """`cte receiver serve` in its own process, and a subscription registered with it."""

    def __init__(self, transport: str, workers: int, jwks_url: str, scratch: Path) -> None:
        command = [sys.executable, "-m", "harness.run.cli", "receiver", "serve", "--audience", AUDIENCE]
        command += ["--jwks-url", jwks_url, "--workers", str(workers)]
        self.ca: str | None = None
        if transport == "plain":
            command.append("--plain-http")
        else:  # a throwaway certificate for loopback
            ca = trustme.CA()
            leaf = ca.issue_cert("localhost", "127.0.0.1")
            leaf.private_key_pem.write_to_path(str(scratch / "key.pem"))
            leaf.cert_chain_pems[0].write_to_path(str(scratch / "cert.pem"))
            ca.cert_pem.write_to_path(str(scratch / "ca.pem"))
            self.ca = str(scratch / "ca.pem")
            command += ["--cert", str(scratch / "cert.pem"), "--key", str(scratch / "key.pem")]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise SystemExit("the receiver did not start")
        self.line = json.loads(line)
        self.url = self.line["listening"]
        self.token = self.line["pushToken"]
        self.verify: Any = ssl.create_default_context(cafile=self.ca) if self.ca else False
        headers = {"Authorization": f"Bearer {self.token}"}
        registration = {"subscriptionId": "sub-bench", "clientState": STATE, "includeResourceData": True}
        registration |= {"channel": "bench", "tenantId": TENANT}
        httpx.post(f"{self.url}/subscriptions", json=registration, headers=headers, verify=self.verify)

    def stats(self) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.get(f"{self.url}/stats", headers=headers, verify=self.verify).json()

    def push_client(self) -> PushClient:
        return PushClient(f"{self.url}/events?channel=bench", self.ca, self.token)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# -- the load generator: raw HTTP/1.1 over keep-alive connections, asyncio --------------------------


def notification(message_id: str, certificate: str, key_id: str) -> dict[str, Any]:
    message = {"id": message_id, "body": {"contentType": "text", "content": f"load {message_id} " + "x" * 200}}
    return {
        "id": f"n-{message_id}",
        "subscriptionId": "sub-bench",
        "changeType": "created",
        "clientState": STATE,
        "resource": f"chats('c')/messages('{message_id}')",
        "resourceData": {"id": message_id},
        "tenantId": TENANT,
        "encryptedContent": crypto.encrypt(certificate, json.dumps(message).encode(), key_id),
    }


def request(path: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}"
    return (head + "\r\n\r\n").encode() + body


async def _answer(reader: asyncio.StreamReader) -> tuple[int, int]:
    """(status, Retry-After seconds) of one response; its body is read and dropped."""
    status = int((await reader.readuntil(b"\r\n")).split(b" ", 2)[1])
    length, retry = 0, 0
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"retry-after":
            retry = int(value)
    if length:
        await reader.readexactly(length)
    return status, retry


async def _connection(job: dict[str, Any], requests: list[tuple[list[str], bytes]], out: dict[str, Any]) -> None:
    context = ssl.create_default_context(cafile=job["ca"]) if job["ca"] else None
    port = int(job["url"].rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost" if context else None
    )
    for ids, raw in requests:
        now = time.time()
        for message_id in ids:
            out["sent_at"].setdefault(message_id, now)
        while True:
            began = time.perf_counter()
            writer.write(raw)
            status, retry = await _answer(reader)
            out["acks"].append((time.perf_counter() - began) * 1000)
            out["statuses"][status] = out["statuses"].get(status, 0) + 1
            if status != 503:  # full queue: Graph waits Retry-After and sends again
                break
            await asyncio.sleep(retry or 1)
    writer.close()


def sender(job: dict[str, Any]) -> dict[str, Any]:
    """One sender process: seal its notifications, wait for the start, post them over its connections."""
    requests: list[tuple[list[str], bytes]] = []
    if job["handshake"]:
        raw = request("/notifications?validationToken=benchmark", b"", "text/plain")
        requests = [([], raw)] * (job["last"] - job["first"])
    else:
        token = job["token"]
        for start in range(job["first"], job["last"], job["batch"]):
            ids = [f"{job['run']}-{i}" for i in range(start, min(start + job["batch"], job["last"]))]
            items = [notification(i, job["certificate"], job["key_id"]) for i in ids]
            body = json.dumps({"value": items, "validationTokens": [token]}).encode()
            requests.append((ids, request("/notifications", body)))
        requests += requests[::20]  # Graph's retries: 5% delivered again, as they were
    out: dict[str, Any] = {"acks": [], "sent_at": {}, "statuses": {}}
    job["ready"].wait()
    job["go"].wait()

    async def main() -> None:
        lanes = [requests[n :: job["connections"]] for n in range(job["connections"])]
        await asyncio.gather(*(_connection(job, lane, out) for lane in lanes if lane))

    began, cpu = time.time(), time.process_time()
    asyncio.run(main())
    out["elapsed"], out["cpu"] = time.time() - began, time.process_time() - cpu
    return out


def load(
    receiver: Receiver,
    count: int,
    *,
    token: str,
    batch: int,
    senders: int,
    connections: int,
    run: str,
    handshake: bool = False,
) -> tuple[float, list[dict[str, Any]]]:
    """Start every sender at once; (start time, their results)."""
    manager = multiprocessing.Manager()
    go, ready = manager.Event(), manager.Barrier(senders + 1)
    share = count // senders
    jobs = [
        {
            "first": n * share,
            "last": count if n == senders - 1 else (n + 1) * share,
            "batch": batch,
            "connections": connections,
            "certificate": receiver.line["encryptionCertificate"],
            "key_id": receiver.line["encryptionCertificateId"],
            "token": token,
            "url": receiver.url,
            "ca": receiver.ca,
            "run": run,
            "handshake": handshake,
            "go": go,
            "ready": ready,
        }
        for n in range(senders)
    ]
    with multiprocessing.Pool(senders) as pool:
        pending = pool.map_async(sender, jobs)
        ready.wait()  # every sender has sealed its notifications
        started = time.time()
        go.set()
        results = pending.get()
    manager.shutdown()
    return started, results


def unloaded(receiver: Receiver, push: PushClient, token: str, count: int) -> tuple[list[float], list[float]]:
    """The baseline: the same path with nothing else in flight, one notification at a time."""
    acks, latencies = [], []
    certificate, key_id = receiver.line["encryptionCertificate"], receiver.line["encryptionCertificateId"]
    with httpx.Client(base_url=receiver.url, verify=receiver.verify) as client:
        for n in range(count):
            message_id = f"idle-{n}"
            body = json.dumps({"value": [notification(message_id, certificate, key_id)], "validationTokens": [token]})
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


def decrypt_rate() -> float:
    """Decrypting one notification on one core, as the receiver does it: the crypto ceiling per core."""
    key = crypto.EncryptionKey.generate("bench")
    samples = [crypto.encrypt(key.certificate_b64, b'{"id": "0"}' + b" " * 300, key.id) for _ in range(300)]
    began = time.perf_counter()
    for sample in samples:
        crypto.decrypt(sample, {key.id: key})
    return len(samples) / (time.perf_counter() - began)


def one_run(args: argparse.Namespace, jwks: JwksEndpoint, signer: crypto.TokenSigner, n: int) -> dict[str, Any]:
    token = signer.token(AUDIENCE, TENANT)
    with tempfile.TemporaryDirectory(prefix="cte-bench-") as scratch:
        receiver = Receiver(args.transport, args.workers, jwks.url, Path(scratch))
        try:
            push = receiver.push_client()
            idle_acks, idle_latencies = unloaded(receiver, push, token, args.idle)
            started, results = load(
                receiver,
                args.notifications,
                token=token,
                batch=1,
                senders=args.senders,
                connections=args.connections,
                run=f"h{n}",
                handshake=True,
            )
            handshake_rate = args.notifications / max(r["elapsed"] for r in results)
            run = f"r{n}"
            pid = receiver.process.pid
            threads = receiver.stats()["threads"]
            roles = {threads["event_loop"]: "event loop"} | {t: "verification threads" for t in threads["workers"]}
            before, before_children = thread_cpu(pid, roles), children_cpu(pid)
            client_cpu, machine_before = time.process_time(), machine_busy()
            started, results = load(
                receiver,
                args.notifications,
                token=token,
                batch=args.batch,
                senders=args.senders,
                connections=args.connections,
                run=run,
            )
            posted = time.time()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                delivered = [e for e in list(push.events) if str((e.get("message") or {}).get("id")).startswith(run)]
                if len({e["message"]["id"] for e in delivered}) >= args.notifications:
                    break
                time.sleep(0.05)
            after, after_children = thread_cpu(pid, roles), children_cpu(pid)
            client_cpu = time.process_time() - client_cpu
            machine_after = machine_busy()
            time.sleep(0.3)  # a late duplicate would show up now
            delivered = [e for e in list(push.events) if str((e.get("message") or {}).get("id")).startswith(run)]
            stats = receiver.stats()
            push.close()
        finally:
            receiver.stop()
    ids = [e["message"]["id"] for e in delivered]
    sent_at = {k: v for r in results for k, v in r["sent_at"].items()}
    latencies = [(e["pushedAt"] - sent_at[e["message"]["id"]]) * 1000 for e in delivered]
    last = max((e["pushedAt"] for e in delivered), default=posted)
    acks = [a for r in results for a in r["acks"]]
    statuses: dict[str, int] = {}
    for r in results:
        for status, count in r["statuses"].items():
            statuses[str(status)] = statuses.get(str(status), 0) + count
    per = 1000 / max(1, len(set(ids)))  # ms of CPU per notification pushed
    cpu = {name: round((after.get(name, 0) - before.get(name, 0)) * per, 3) for name in after}
    cpu = {name: value for name, value in cpu.items() if value}
    if after_children - before_children:
        cpu["decrypt processes"] = round((after_children - before_children) * per, 3)
    cpu["senders"] = round(sum(r["cpu"] for r in results) * per, 3)
    cpu["push client (and this process)"] = round(client_cpu * per, 3)
    busy, total = (after - before for after, before in zip(machine_after, machine_before, strict=True))
    ours = sum(cpu.values()) * len(set(ids)) / 1000
    return {
        "machine_busy": round(busy / total, 3) if total else None,  # share of all CPUs busy during the load
        "others_busy": round(max(0.0, busy - ours) / total, 3) if total else None,  # of which not this benchmark
        "server": receiver.line.get("server"),
        "throughput": len(set(ids)) / (last - started),
        "cpu_ms_per_notification": cpu,
        "posting_s": posted - started,
        "processing_s": last - started,
        "handshake_rate": handshake_rate,
        "ack_p50": percentile(acks, 0.5),
        "ack_p99": percentile(acks, 0.99),
        "push_p50": percentile(latencies, 0.5),
        "push_p99": percentile(latencies, 0.99),
        "idle_ack_p50": percentile(idle_acks, 0.5),
        "idle_ack_p99": percentile(idle_acks, 0.99),
        "idle_push_p50": percentile(idle_latencies, 0.5),
        "idle_push_p99": percentile(idle_latencies, 0.99),
        "lost": args.notifications - len(set(ids)),
        "duplicates_pushed": len(ids) - len(set(ids)),
        "http_statuses": statuses,
        "receiver": {k: stats.get(k) for k in ("accepted", "duplicates", "rejected", "busy", "faults", "bad_input")},
    }


def figure(name: str, value: float, unit: str, baseline: str, base: float, **extra: Any) -> dict[str, Any]:
    return {
        "figure": name,
        "value": round(value, 3),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(base, 3),
        "ratio": round(value / base, 3) if base else 0.0,
        **extra,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    signer = crypto.TokenSigner(kid="graph")
    jwks = JwksEndpoint(signer)
    try:
        decrypt = statistics.median(decrypt_rate() for _ in range(3))
        runs = [one_run(args, jwks, signer, n) for n in range(args.repeat)]
    finally:
        jwks.stop()

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    def samples(key: str) -> list[float]:
        return [round(r[key], 3) for r in runs]

    per_post = "one per POST" if args.batch == 1 else f"{args.batch} per POST"
    unloaded_name = f"same receiver unloaded ({args.idle} one at a time)"
    return {
        "name": "webhook_load",
        "params": {
            "notifications": args.notifications,
            "batch": args.batch,
            "senders": args.senders,
            "connections": args.connections,
            "transport": args.transport,
            "workers": args.workers,
            "repeat": args.repeat,
            "resent_share": 0.05,
        },
        "figures": [
            figure(
                f"webhook throughput, verified + decrypted + pushed ({per_post}, {args.transport})",
                median("throughput"),
                "notifications/s",
                "decrypt-only rate, one core",
                decrypt,
                samples=samples("throughput"),
            ),
            figure(
                f"webhook HTTP ceiling: handshakes answered ({args.transport})",
                median("handshake_rate"),
                "requests/s",
                "decrypt-only rate, one core",
                decrypt,
                samples=samples("handshake_rate"),
            ),
            figure("webhook ack latency p50", median("ack_p50"), "ms", unloaded_name, median("idle_ack_p50")),
            figure(
                "webhook ack latency p99",
                median("ack_p99"),
                "ms",
                unloaded_name,
                median("idle_ack_p99"),
                samples=samples("ack_p99"),
            ),
            figure(
                "webhook send-to-client latency p50", median("push_p50"), "ms", unloaded_name, median("idle_push_p50")
            ),
            figure(
                "webhook send-to-client latency p99", median("push_p99"), "ms", unloaded_name, median("idle_push_p99")
            ),
        ],
        "details": {
            "decrypt_ms": round(1000 / decrypt, 4),
            "lost": sum(r["lost"] for r in runs),
            "duplicates_pushed": sum(r["duplicates_pushed"] for r in runs),
            "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in runs],
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
    }


def report(result: dict[str, Any]) -> None:
    params, details = result["params"], result["details"]
    throughput, handshakes, ack50, ack99, push50, push99 = result["figures"]
    runs = details["runs"]
    print(
        f"load: {params['notifications']} notifications ({params['batch']} per POST) + 5% resent, "
        f"{params['senders']} sender processes x {params['connections']} connections, {params['transport']}, "
        f"{params['workers']} verification threads; {params['repeat']} runs, each with a fresh receiver"
    )
    print(
        f"baseline (crypto): decrypting one notification takes {details['decrypt_ms']:.2f} ms on one core "
        f"(= {throughput['baseline_value']:.0f}/s per core)"
    )
    spread = ", ".join(f"{v:.0f}" for v in handshakes["samples"])
    print(f"baseline (HTTP): the same receiver answers {handshakes['value']:.0f} handshakes/s (runs: {spread})")
    spread = ", ".join(f"{v:.0f}" for v in throughput["samples"])
    print(
        f"sustained: {throughput['value']:.0f} notifications/s verified, decrypted and pushed (median; runs: {spread})"
    )
    for name, p50, p99 in (("acknowledgement", ack50, ack99), ("send-to-client", push50, push99)):
        print(
            f"{name}: p50 {p50['value']:.1f} ms, p99 {p99['value']:.1f} ms "
            f"(unloaded: p50 {p50['baseline_value']:.1f} ms, p99 {p99['baseline_value']:.1f} ms)"
        )
    print("ack p99 per run: " + ", ".join(f"{r['ack_p99']:.1f}" for r in runs) + " ms")
    for r in runs:
        cpu = r["cpu_ms_per_notification"]
        total = sum(cpu.values())
        parts = ", ".join(f"{name} {value:.3f}" for name, value in cpu.items())
        print(
            f"CPU ms per notification: {parts}; total {total:.2f} ms = at most {2000 / total:.0f}/s on 2 "
            f"otherwise idle cores (run: {r['throughput']:.0f}/s; the machine was {r['machine_busy']:.0%} busy, "
            f"{r['others_busy']:.0%} of it with other work; receiver: {r['server']})"
        )
    print(
        f"lost: {details['lost']}, duplicates pushed: {details['duplicates_pushed']}; "
        f"HTTP statuses {[r['http_statuses'] for r in runs]}; receiver {[r['receiver'] for r in runs]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notifications", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections per sender")
    parser.add_argument("--transport", choices=("tls", "plain"), default="tls")
    parser.add_argument("--workers", type=int, default=4, help="the receiver's verification threads")
    parser.add_argument("--repeat", type=int, default=3, help="runs, each with a fresh receiver")
    parser.add_argument("--idle", type=int, default=200, help="notifications for the unloaded baseline")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    result = measure(args)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
