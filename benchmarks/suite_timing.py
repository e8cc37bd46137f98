"""Wall time of the Gherkin suite (`harness/steps/`) in replay and sandbox modes, against `pytest --collect-only`
of the same suite measured in the same run (the ratio is the harness's own overhead); the sandbox
suite serial beside the same suite with `-n N` (pytest-xdist); and sandbox start-up.

    .venv/bin/python benchmarks/suite_timing.py [--repeat N] [--workers 2] [--json PATH]

The variants run interleaved, one of each per round, so a noisy neighbour weighs on all of them
alike. Prints figures (and with `--json`, writes them); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.core.places import SUITE_PYTEST_ARGS

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [
    sys.executable,
    "-m",
    "pytest",
    *SUITE_PYTEST_ARGS,
    "-q",
    "-p",
    "no:cacheprovider",
]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stdout[-2000:]}")
    return elapsed


def sandbox_startup(repeat: int) -> list[float]:
    sys.path.insert(0, str(ROOT))
    from harness.sandbox.server import Sandbox

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with Sandbox():
            times.append(time.perf_counter() - started)
    return times


def figure(name: str, samples: list[float], unit: str, baseline: str, baseline_samples: list[float]) -> dict[str, Any]:
    value, base = statistics.median(samples), statistics.median(baseline_samples)
    return {
        "figure": name,
        "value": round(value, 4),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(base, 4),
        "ratio": round(value / base, 3),
        "samples": [round(s, 4) for s in samples],
        "baseline_samples": [round(s, 4) for s in baseline_samples],
    }


def measure(repeat: int, workers: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"collect": [], "replay": [], "serial": [], "parallel": []}
    with tempfile.TemporaryDirectory() as reports:
        for n in range(repeat):
            runs["collect"].append(timed([*PYTEST, "--collect-only"]))
            runs["replay"].append(timed([*PYTEST, "--cte-mode=replay", f"--cte-report-dir={reports}/r{n}"]))
            runs["serial"].append(timed([*PYTEST, "--cte-mode=sandbox", f"--cte-report-dir={reports}/s{n}"]))
            runs["parallel"].append(
                timed([*PYTEST, "--cte-mode=sandbox", f"--cte-report-dir={reports}/p{n}", "-n", str(workers)])
            )
    startup = sandbox_startup(repeat)
    collect = "pytest --collect-only (same suite)"
    return {
        "name": "suite_timing",
        "params": {"repeat": repeat, "workers": workers, "statistic": "median"},
        "figures": [
            figure("replay suite wall time", runs["replay"], "s", collect, runs["collect"]),
            figure("sandbox suite wall time, serial", runs["serial"], "s", collect, runs["collect"]),
            figure(
                f"sandbox suite wall time, -n {workers}",
                runs["parallel"],
                "s",
                "sandbox suite, serial",
                runs["serial"],
            ),
        ],
        "details": {"sandbox_startup_ms": round(statistics.median(startup) * 1000, 1)},
    }


def report(result: dict[str, Any]) -> None:
    replay, serial, parallel = result["figures"]
    base = replay["baseline_value"]
    print(f"runs per figure: {result['params']['repeat']} (median shown)")
    print(f"pytest --collect-only (baseline): {base:.2f} s")
    for name, f in (("replay suite", replay), ("sandbox suite", serial)):
        print(f"{name}: {f['value']:.2f} s  = {f['ratio']:.2f}x collect-only  (+{f['value'] - base:.2f} s)")
    workers = result["params"]["workers"]
    print(
        f"sandbox suite -n {workers}: {parallel['value']:.2f} s  = {parallel['ratio']:.2f}x serial  "
        f"(speed-up {1 / parallel['ratio']:.2f}x)"
    )
    print(
        f"sandbox start-up (certificates, RSA keys, HTTPS listener): {result['details']['sandbox_startup_ms']:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist processes for the parallel run")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    result = measure(args.repeat, args.workers)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
