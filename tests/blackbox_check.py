"""The black-box check: the whole suite against a tenant known only by its profile.

    python tests/blackbox_check.py [--out reports/blackbox] [--sandbox-report PATH/conformance.json]
                                   [--sandbox-cassettes DIR]

1. `cte sandbox serve --write-profile` in its own process plays a tenant on the internet: it writes
   the live profile a partner would write (endpoints, CA bundle, roles, meetings, policies) and
   prints the secrets, which this script passes on as environment variables only.
2. `cte doctor`, `cte run --mode live`, `cte record` (into a new folder) and `cte run --mode replay`
   of that recording run in separate processes with CTE_FORBID_SANDBOX=1: importing the embedded
   sandbox fails there, and each report must say `embedded_sandbox: false`. Doctor also runs on every
   other tenant the served sandbox wrote a profile for (misconfigured, sovereign cloud): each must fail
   its checks exactly as the embedded sandbox's doctor does on the same tenant, remedy included.
3. The verdicts are compared with the embedded sandbox's (a sandbox-mode run): any difference fails
   the check, except a SKIP whose reason is that the row needs Microsoft's calling services (the
   real Calling SDK cannot reach them here) or that it waits for a token to expire (the served tenant's
   last 75 minutes; the sandbox's model clock moves on at once). The replay of the live recording must give the live
   verdicts exactly. Doctor must be all OK.

4. `cte sandbox parity` compares the recording with the sandbox's answers to the same scenarios:
   any divergence fails the check.

Prints one table of every scenario, then the requests the recorded run made, by kind, with the
token requests per user (the recording's, and the live run's as its report counts them), then the
parity summary; exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CALLING_SERVICES = "needs Microsoft's calling services"
# A scenario that waits for a token to expire: the sandbox's model clock moves on at once; a tenant on the
# internet issues 75-minute tokens, which no black-box run waits for (its profile allows no wait).
TOKEN_WAIT = "longer than this run waits for a token"


def cte(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harness.run.cli", *args]
    print("$ cte " + " ".join(args), flush=True)
    return subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=True, timeout=1200)


def cte_started(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    print("$ cte " + " ".join(args), flush=True)
    command = [sys.executable, "-m", "harness.run.cli", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def second_receiver(profile: Path) -> Path:
    """The profile with its webhook receiver on another port (Graph here calls loopback directly)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    text = profile.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^public_url = .*$", f'public_url = "https://localhost:{port}"', text)
    text = re.sub(r"(?m)^listen_port = .*$", f"listen_port = {port}", text)
    copy = profile.with_name(f"{profile.stem}-recorded.toml")
    copy.write_text(text, encoding="utf-8")
    return copy


def verdicts(report: Path) -> dict[str, dict[str, Any]]:
    document = json.loads(report.read_text(encoding="utf-8"))
    return {s["id"]: s for s in document["scenarios"]}


def run_info(report: Path) -> dict[str, Any]:
    return json.loads(report.read_text(encoding="utf-8"))["run"]


def serve(profile: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """The sandbox in a process of its own; its one JSON line says where the profile is and the secrets."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.run.cli", "sandbox", "serve", "--write-profile", str(profile)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise SystemExit("blackbox: cte sandbox serve printed nothing; see its error above")
    return process, json.loads(line)


def outside_env(served: dict[str, Any]) -> dict[str, str]:
    """The environment of a partner's machine: the profile's secrets, nothing that selects the sandbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTE_")}
    env.update(served["env"])
    env["CTE_FORBID_SANDBOX"] = "1"
    return env


def doctor_findings(report: Path) -> dict[str, tuple[str, str, str]]:
    """Doctor's checks by name: status, detail and remedy, with ports and ids made comparable."""

    def comparable(text: str) -> str:
        text = re.sub(r"localhost:\d+|127\.0\.0\.1:\d+", "localhost:PORT", text or "")
        return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", text)

    checks = json.loads(report.read_text(encoding="utf-8"))["checks"]
    return {c["name"]: (c["status"], comparable(c.get("detail", "")), comparable(c.get("remedy", ""))) for c in checks}


def doctor_every_tenant(out: Path, served: dict[str, Any], env: dict[str, str]) -> list[str]:
    """`cte doctor` on each tenant the served sandbox wrote a profile for (its misconfigured and
    sovereign-cloud tenants), from the outside, beside the embedded sandbox's doctor on the same tenant:
    the checks must fail alike, with the same detail and remedy. Two at a time (two cores)."""
    problems = []
    names = [name for name in served["profiles"] if name != "contoso"]
    jobs = []
    for name in names:
        outside = ("doctor", "--profile", served["profiles"][name], "--report-dir", str(out / "doctor-served" / name))
        inside = ("doctor", "--profile", name, "--report-dir", str(out / "doctor-embedded" / name))
        jobs += [(name, "served", outside, env), (name, "embedded", inside, None)]
    running: list[tuple[str, str, subprocess.Popen[str]]] = []
    while jobs or running:
        while jobs and len(running) < 2:
            name, side, command, job_env = jobs.pop(0)
            running.append((name, side, cte_started(*command, env=job_env or dict(os.environ))))
        name, side, process = running.pop(0)
        _, stderr = process.communicate(timeout=600)
        if "Traceback" in stderr:
            problems.append(f"doctor on the {side} {name} tenant crashed: {stderr[-300:]}")
    rows = []
    for name in names:
        outside = doctor_findings(out / "doctor-served" / name / "doctor.json")
        inside = doctor_findings(out / "doctor-embedded" / name / "doctor.json")
        failing = sorted(check for check, (status, _, _) in outside.items() if status == "fail")
        if not failing:
            problems.append(f"doctor on the served {name} tenant found nothing wrong")
        for check in sorted(set(outside) | set(inside)):
            seen, expected = outside.get(check), inside.get(check)
            if seen and expected and seen[0] == expected[0] == "ok":
                continue  # an OK check's detail names the profile and its clock skew: not compared
            if seen != expected:
                problems.append(f"doctor on {name}, {check!r}: served {seen}, embedded {expected}")
        rows.append((name, ", ".join(failing) or "-"))
    print("\ndoctor on the served tenant's other profiles (from the outside; as the embedded sandbox's doctor):")
    for name, failing in rows:
        print(f"  {name:<28} fails: {failing}")
    return problems


def requests_by_kind(cassettes: Path) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Every recorded request by kind, and token requests per user (scrubbed aliases)."""
    kinds: collections.Counter[str] = collections.Counter()
    tokens: collections.Counter[str] = collections.Counter()
    for path in sorted(cassettes.rglob("*.yaml")):
        if path.name.endswith((".inbound.yaml", ".calling-sdk.yaml")):
            continue
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for interaction in document.get("interactions", []):
            request = interaction["request"]
            url = urllib.parse.urlsplit(request["uri"])
            path_kind = re.sub(r"/[0-9a-f-]{36}", "/{id}", url.path)
            path_kind = re.sub(r"/19:[^/]+|/19%3A[^/]+", "/{chat}", path_kind)
            path_kind = re.sub(r"\('[^']*'\)|/[^/]+@[^/]+", "/{user}", path_kind)
            kinds[f"{request['method']} {url.hostname}{path_kind}"] += 1
            if path_kind.endswith("/oauth2/v2.0/token"):
                body = request.get("body") or ""
                form = dict(urllib.parse.parse_qsl(body if isinstance(body, str) else body.decode()))
                tokens[form.get("username") or form.get("grant_type", "?")] += 1
    return kinds, tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/blackbox")
    parser.add_argument("--sandbox-report", default=None, help="a sandbox-mode conformance.json to compare with")
    parser.add_argument(
        "--sandbox-cassettes", default=None, help="a sandbox recording for `cte sandbox parity` (default: record one)"
    )
    args = parser.parse_args()
    out = (ROOT / args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    problems: list[str] = []
    started = time.monotonic()

    if args.sandbox_report:
        sandbox_report = Path(args.sandbox_report)
    else:
        done = cte("run", "--mode", "sandbox", "-q", "--report-dir", str(out / "sandbox"))
        sandbox_report = out / "sandbox" / "conformance.json"
        if not sandbox_report.exists():
            print(done.stdout[-3000:], done.stderr[-3000:])
            raise SystemExit("blackbox: the sandbox run wrote no report")

    profile = out / "served" / "served.toml"
    server, served = serve(profile)
    try:
        env = outside_env(served)
        doctor = cte("doctor", "--profile", str(profile), "--report-dir", str(out / "doctor"), env=env)
        print(doctor.stdout)
        checks = json.loads((out / "doctor" / "doctor.json").read_text())["checks"]
        not_ok = [c for c in checks if c["status"] not in ("ok", "n/a")]
        if doctor.returncode != 0 or not_ok or "Traceback" in doctor.stderr:
            problems.append(f"doctor is not all OK (exit {doctor.returncode}): {not_ok or doctor.stderr[-500:]}")
        problems += doctor_every_tenant(out, served, env)

        # The live run and the recording run side by side, as two CI jobs of a partner would: each
        # with its own receiver port (a copy of the profile that differs in [notifications] only).
        record_profile = second_receiver(profile)
        runs = {
            "live": ("run", "--mode", "live", "--profile", str(profile), "-q", "--report-dir", str(out / "live")),
            "record": (
                "record",
                "--profile",
                str(record_profile),
                "--report-dir",
                str(out / "record"),
                "--cassette-dir",
                str(out / "record" / "cassettes"),
            ),
        }
        started_runs = {name: cte_started(*command, env=env) for name, command in runs.items()}
        for name, process in started_runs.items():
            stdout, stderr = process.communicate(timeout=1200)
            if not (out / name / "conformance.json").exists():
                print(stdout[-5000:], stderr[-5000:])
                raise SystemExit(f"blackbox: the {name} run wrote no report")
    finally:
        server.terminate()
        server.wait(timeout=10)
    # Replay needs no tenant at all: the server is gone, the network is blocked.
    done = cte(
        "run", "--mode", "replay", "--profile", str(record_profile), "-q", "--report-dir", str(out / "replay"),
        "--cassette-dir", str(out / "record" / "cassettes"), env=env,
    )  # fmt: skip
    if not (out / "replay" / "conformance.json").exists():
        print(done.stdout[-5000:], done.stderr[-5000:])
        raise SystemExit("blackbox: the replay run wrote no report")

    for name in ("live", "record", "replay"):
        if run_info(out / name / "conformance.json").get("embedded_sandbox") is not False:
            problems.append(f"the {name} run does not report embedded_sandbox: false")

    sandbox, live = verdicts(sandbox_report), verdicts(out / "live" / "conformance.json")
    record, replay = verdicts(out / "record" / "conformance.json"), verdicts(out / "replay" / "conformance.json")
    rows = []
    judged = skipped_calling = 0
    for sid in sorted(set(sandbox) | set(live), key=lambda i: (sandbox.get(i) or live.get(i) or {}).get("area", "")):
        s, lv = sandbox.get(sid), live.get(sid)
        rec, rep = record.get(sid), replay.get(sid)
        name = (s or lv or {}).get("name", sid)
        sv, lvv = (s or {}).get("verdict", "-"), (lv or {}).get("verdict", "-")
        note = ""
        if lv is not None and lvv == "SKIP" and CALLING_SERVICES in (lv.get("detail") or ""):
            skipped_calling += 1
            note = "needs Microsoft's calling services"
        elif lv is not None and lvv == "SKIP" and TOKEN_WAIT in (lv.get("detail") or ""):
            skipped_calling += 1
            note = "waits for a 75-minute token to expire"
        elif sv != lvv:
            note = f"DIFFERS: {(lv or {}).get('says', '')} {(lv or {}).get('detail', '')}"[:160]
            problems.append(f"{name}: sandbox {sv}, black-box live {lvv}")
        else:
            judged += lvv != "SKIP"
            if lvv == "SKIP":
                problems.append(f"{name}: skipped in both ({lv.get('detail') if lv else ''})")
        rv, pv = (rec or {}).get("verdict", "-"), (rep or {}).get("verdict", "-")
        if (rv, pv) != (lvv, lvv):
            problems.append(f"{name}: live {lvv}, record {rv}, replay of the recording {pv}")
            note = (note + f" | record {rv}, replay {pv}").strip(" |")
        rows.append(((s or lv or {}).get("area", ""), name, sv, lvv, pv, note))

    width = max(len(r[1]) for r in rows)
    print(f"\n{'area':<13} {'scenario':<{width}}  sandbox  live   replay  note")
    for area, name, sv, lvv, pv, note in rows:
        print(f"{area:<13} {name:<{width}}  {sv:<7}  {lvv:<5}  {pv:<6}  {note}")
    print(
        f"\n{len(rows)} scenarios: {judged} judged black-box as in the sandbox, {skipped_calling} skipped as needing "
        f"Microsoft's calling services or a token to expire, {len(problems)} problem(s); "
        f"{time.monotonic() - started:.0f} s"
    )
    kinds, tokens = requests_by_kind(out / "record" / "cassettes")
    print(f"\nrequests of the recorded black-box run: {sum(kinds.values())}")
    for kind, count in kinds.most_common():
        print(f"{count:>6}  {kind}")
    print(
        "token requests per user of the recording (each cassette signs in for itself): "
        + ", ".join(f"{who} {n}" for who, n in tokens.most_common())
    )
    live_tokens = run_info(out / "live" / "conformance.json").get("token_requests", {})
    by_user = {who: sum(by_resource.values()) for who, by_resource in live_tokens.items()}
    print(
        f"token requests of the live run (one token cache for the run): {sum(by_user.values())}: "
        + ", ".join(f"{who} {n}" for who, n in sorted(by_user.items(), key=lambda item: -item[1]))
    )

    # The black-box recording is a live recording like a partner's: the sandbox must answer the same
    # scenarios the same way (`cte sandbox parity`; the sandbox side may be recorded already).
    parity_args = ["sandbox", "parity", str(out / "record" / "cassettes"), "--report-dir", str(out / "parity")]
    if args.sandbox_cassettes:
        parity_args += ["--sandbox-cassettes", args.sandbox_cassettes]
    parity = cte(*parity_args)
    print("\n" + "\n".join(line for line in parity.stdout.splitlines() if not line.startswith("not compared")))
    if parity.returncode != 0:
        problems.append(f"cte sandbox parity of the recording: exit {parity.returncode} {parity.stderr[-500:]}")
    for problem in problems:
        print(f"blackbox: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
