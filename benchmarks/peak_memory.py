"""Peak memory of a full run (`cte run`, sandbox mode, serial, every report written) beside the peak
memory of `pytest --collect-only` of the same suite (the interpreter, the harness's imports and
collection, nothing run) measured in the same run.

    .venv/bin/python benchmarks/peak_memory.py [--repeat N] [--json PATH]

Each measurement runs under its own small wrapper process, which runs the command and reads
`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`: the largest resident set of any process in that
command's tree (the sandbox runs inside the pytest process, so that is the suite's peak), untouched
by whatever else this script ran. Prints figures (and with `--json`, writes them); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from suite_timing import PYTEST  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COLLECT = [*PYTEST, "--collect-only"]  # the same suite, collected only
CTE_RUN = [str(BIN / "cte"), "run", "--mode", "sandbox", "-q"]
# Runs the command given as JSON in argv[1]; prints its exit status, output tail and peak RSS.
WRAPPER = """
import json, resource, subprocess, sys
done = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"returncode": done.returncode, "tail": (done.stdout + done.stderr)[-2000:],
                  "maxrss": usage.ru_maxrss}))
"""


def peak_mib(command: list[str]) -> float:
    wrapped = subprocess.run(
        [sys.executable, "-c", WRAPPER, json.dumps(command)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result = json.loads(wrapped.stdout)
    if result["returncode"] != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result['tail']}")
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    return result["maxrss"] / (1024 * 1024 if sys.platform == "darwin" else 1024)


def measure(repeat: int) -> dict[str, Any]:
    collect, full = [], []
    with tempfile.TemporaryDirectory() as reports:
        for n in range(repeat):
            collect.append(peak_mib(COLLECT))
            full.append(peak_mib([*CTE_RUN, "--report-dir", f"{reports}/{n}"]))
    value, base = max(full), max(collect)
    return {
        "name": "peak_memory",
        "params": {"repeat": repeat, "statistic": "max", "command": "cte run --mode sandbox -q"},
        "figures": [
            {
                "figure": "peak memory, full run (sandbox, serial)",
                "value": round(value, 1),
                "unit": "MiB",
                "baseline": "pytest --collect-only (same suite)",
                "baseline_value": round(base, 1),
                "ratio": round(value / base, 3),
                "samples": [round(s, 1) for s in full],
                "baseline_samples": [round(s, 1) for s in collect],
            }
        ],
        "details": {"added_by_running_mib": round(value - base, 1)},
    }


def report(result: dict[str, Any]) -> None:
    (f,) = result["figures"]
    print(f"peak RSS, pytest --collect-only (baseline): {f['baseline_value']:.1f} MiB")
    print(
        f"peak RSS, full run (cte run, sandbox, serial): {f['value']:.1f} MiB  = {f['ratio']:.2f}x collect-only  "
        f"(+{result['details']['added_by_running_mib']:.1f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    result = measure(args.repeat)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
