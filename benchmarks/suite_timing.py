"""Wall time of the identity suite in replay and sandbox modes, against `pytest --collect-only` of the
same suite measured in the same run (the ratio is the harness's own overhead), and sandbox start-up.

    .venv/bin/python benchmarks/suite_timing.py [--repeat N]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [
    sys.executable,
    "-m",
    "pytest",
    "steps",
    "-q",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:allure_pytest",
    "-p",
    "allure_pytest_bdd",
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as reports:
        collect = [timed([*PYTEST, "--collect-only"]) for _ in range(args.repeat)]
        replay = [timed([*PYTEST, "--cte-mode=replay", f"--cte-report-dir={reports}/r"]) for _ in range(args.repeat)]
        sandbox = [timed([*PYTEST, "--cte-mode=sandbox", f"--cte-report-dir={reports}/s"]) for _ in range(args.repeat)]
    startup = sandbox_startup(args.repeat)
    base = statistics.median(collect)
    print(f"runs per figure: {args.repeat} (median shown)")
    print(f"pytest --collect-only (baseline): {base:.2f} s")
    for name, values in (("replay suite", replay), ("sandbox suite", sandbox)):
        median = statistics.median(values)
        print(f"{name}: {median:.2f} s  = {median / base:.2f}x collect-only  (+{median - base:.2f} s)")
    print(f"sandbox start-up (certificates, RSA keys, HTTPS listener): {statistics.median(startup) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
