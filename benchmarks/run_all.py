"""Run every benchmark in this folder (`make bench`), print one table and write `benchmarks/results.json`.

    .venv/bin/python benchmarks/run_all.py [--out benchmarks/results.json]

Every other `*.py` here is a benchmark that takes `--json PATH`; each runs in its own process with the
small repeat counts below (the whole run stays within a few minutes on two cores) and prints its own
figures as it goes. Every figure carries the baseline it was measured beside in the same run and the
ratio value / baseline. results.json also records the machine (CPU count, load average, Python) and
when it ran. Exits 1 if any benchmark failed; the others' figures are written all the same.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Arguments per benchmark for `make bench`; a benchmark not listed runs with its defaults.
ARGUMENTS = {
    "suite_timing": ["--repeat", "3", "--workers", "2"],
    "graph_throughput": ["--messages", "300", "--poll", "10000"],
    "webhook_load": ["--notifications", "6000", "--senders", "2"],
    "peak_memory": ["--repeat", "1"],
    "calling_sdk": ["--repeat", "2", "--checks", "200"],
    # Records the 10x suite once (about 2 min on two cores), then replays 1x, 3x, 10x once each.
    "suite_scale": ["--scales", "1,3,10", "--repeat", "1"],
}


def benchmarks() -> list[Path]:
    """Every script here but this one: those listed above in that order, then any other by name."""
    found = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_"))
    order = list(ARGUMENTS)
    return sorted(found, key=lambda p: (order.index(p.stem) if p.stem in order else len(order), p.name))


def machine() -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def run(script: Path, out: Path) -> tuple[dict[str, Any] | None, str | None, float]:
    name = script.stem
    command = [sys.executable, str(script), *ARGUMENTS.get(name, []), "--json", str(out)]
    shown = [str(script.relative_to(ROOT)), *ARGUMENTS.get(name, [])]
    print(f"\n== {name}: python {' '.join(shown)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if done.stderr:
        sys.stderr.write(done.stderr)
    if done.returncode != 0 or not out.exists():
        return None, f"exit status {done.returncode}: {done.stderr.strip()[-2000:]}", elapsed
    return json.loads(out.read_text()), None, elapsed


def number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def table(figures: list[dict[str, Any]]) -> str:
    header = ("figure", "value", "baseline (same run)", "baseline value", "ratio")
    rows = [
        (
            f["figure"],
            f"{number(f['value'])} {f['unit']}",
            f["baseline"],
            f"{number(f['baseline_value'])} {f['unit']}",
            f"{f['ratio']:.2f}x" if f["ratio"] is not None else "-",
        )
        for f in figures
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    aligned = ("<", ">", "<", ">", ">")

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligned, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    started_at, started = datetime.now(UTC), time.perf_counter()
    info, load_before = machine(), load_average()
    print(f"benchmarks on {info['cpu_count']} CPUs, Python {info['python']}, load average {load_before}", flush=True)
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    durations: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for script in benchmarks():
            result, error, elapsed = run(script, Path(scratch) / f"{script.stem}.json")
            durations[script.stem] = round(elapsed, 1)
            if error:
                errors[script.stem] = error
            else:
                results[script.stem] = result
    figures = [{"benchmark": name, **f} for name, result in results.items() for f in result["figures"]]
    document = {
        "generated_at": started_at.isoformat(timespec="seconds"),
        "command": "make bench",
        "machine": {**info, "load_average_before": load_before, "load_average_after": load_average()},
        "duration_s": round(time.perf_counter() - started, 1),
        "duration_per_benchmark_s": durations,
        "arguments": {script.stem: ARGUMENTS.get(script.stem, []) for script in benchmarks()},
        "note": "ratio = value / baseline; both measured in this run, on this machine",
        "figures": figures,
        "benchmarks": results,
        "errors": errors,
    }
    print(f"\n{table(figures)}\n")
    print(f"{len(figures)} figures in {document['duration_s']:.0f} s; written to {args.out}")
    for name, error in errors.items():
        print(f"FAILED {name}: {error}", file=sys.stderr)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
