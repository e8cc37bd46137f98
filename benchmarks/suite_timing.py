"""Wall time of the Gherkin suite (`harness/steps/`) in replay and sandbox modes, against `pytest --collect-only`
of the same suite measured in the same run (the ratio is the harness's own overhead); the sandbox
suite serial beside the same suite with `-n N` (pytest-xdist); `cte run`'s start against pytest's;
and sandbox start-up.

    .venv/bin/python benchmarks/suite_timing.py [--repeat N] [--workers 2] [--json PATH]

`cte run` start to first scenario: seconds from launching `cte run -q` (the default, sandbox mode) to
the moment the suite's first scenario begins (pytest's call phase of the first test: everything a run
does before any scenario is done: the `cte` process, the pytest process it starts, plugins, the
features parsed and collected, the session and its mode, the first test's fixtures). Against: pytest's
own start on the same suite, from launching `python -m pytest <the suite> --collect-only` to the end
of its collection (the moment pytest itself would begin the first test; the same interpreter, plugins
and features). The ratio is what `cte run` and the harness add before the first scenario, as a
multiple of what pytest needs anyway. What the harness starts lazily, on a scenario's first need (the
embedded sandbox, the webhook receiver), falls inside the scenario that first needs it: the details
say when the first scenario ended, to show it.

Both moments are taken by a probe plugin (`_start_probe.py`, `-p` in PYTEST_ADDOPTS, which reaches
the pytest process `cte run` starts) as wall-clock times, compared with the time each process was
launched. `cte run` runs only the suite's first scenario (`-k` its name; collection is still the whole
suite's), which starts exactly as it does in a full run. Beside them, as details: the same for replay
mode; when the first scenario ended; and a bare pytest (no plugins autoloaded) running one trivial
test in an empty folder, the floor of any pytest run here.

The variants run interleaved, one of each per round, so a noisy neighbour weighs on all of them
alike. Prints figures (and with `--json`, writes them); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.core.places import SUITE_PYTEST_ARGS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The `cte` script beside this interpreter (what a user types), else what it runs.
CTE = [str(Path(sys.executable).with_name("cte"))] if Path(sys.executable).with_name("cte").exists() else []
CTE = CTE or [sys.executable, "-m", "harness.run.cli"]
PROBE = "_start_probe"  # benchmarks/_start_probe.py
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


def probed(command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> dict[str, float]:
    """Seconds from launching `command` to each moment the probe plugin marks (see the docstring)."""
    with tempfile.TemporaryDirectory() as scratch:
        marks = Path(scratch) / "marks"
        environment = {
            **os.environ,
            **(env or {}),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
            "PYTEST_ADDOPTS": " ".join(filter(None, [os.environ.get("PYTEST_ADDOPTS"), f"-p {PROBE}"])),
            "CTE_START_PROBE": str(marks),
        }
        started = time.time()
        result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True)
        found = dict(line.split() for line in marks.read_text().splitlines()) if marks.exists() else {}
    if "collected" not in found:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return {name: float(at) - started for name, at in found.items()}


def first_scenario() -> str:
    """The name of the suite's first test, as collected (an outline's test function, without its example)."""
    listed = subprocess.run([*PYTEST, "--collect-only"], cwd=ROOT, capture_output=True, text=True).stdout
    first = next(line for line in listed.splitlines() if "::" in line)
    return first.split("::", 1)[1].split("[", 1)[0]


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
    starts: dict[str, list[dict[str, float]]] = {"pytest": [], "sandbox": [], "replay": [], "bare": []}
    name = first_scenario()
    with tempfile.TemporaryDirectory() as reports:
        empty = Path(reports) / "empty"
        empty.mkdir()
        (empty / "test_trivial.py").write_text("def test_nothing():\n    pass\n")
        for n in range(repeat):
            runs["collect"].append(timed([*PYTEST, "--collect-only"]))
            runs["replay"].append(timed([*PYTEST, "--cte-mode=replay", f"--cte-report-dir={reports}/r{n}"]))
            runs["serial"].append(timed([*PYTEST, "--cte-mode=sandbox", f"--cte-report-dir={reports}/s{n}"]))
            runs["parallel"].append(
                timed([*PYTEST, "--cte-mode=sandbox", f"--cte-report-dir={reports}/p{n}", "-n", str(workers)])
            )
            starts["pytest"].append(probed([*PYTEST, "--collect-only"]))
            for mode in ("sandbox", "replay"):
                run = [*CTE, "run", "--mode", mode, "-q", "-k", name, "--report-dir", f"{reports}/{mode}-start{n}"]
                starts[mode].append(probed(run))
            bare = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_trivial.py"]
            starts["bare"].append(probed(bare, empty, {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}))
    startup = sandbox_startup(repeat)
    collect = "pytest --collect-only (same suite)"

    def at(variant: str, mark: str) -> list[float]:
        return [marks[mark] for marks in starts[variant]]

    pytest_start = at("pytest", "collected")
    return {
        "name": "suite_timing",
        "params": {"repeat": repeat, "workers": workers, "statistic": "median", "first_scenario": name},
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
            figure(
                "cte run start to first scenario (sandbox)",
                at("sandbox", "first"),
                "s",
                "pytest's own start: launch to end of collection (same suite)",
                pytest_start,
            ),
        ],
        "details": {
            "sandbox_startup_ms": round(statistics.median(startup) * 1000, 1),
            "start": {
                "cte_run_replay_to_first_scenario": figure(
                    "cte run start to first scenario (replay)",
                    at("replay", "first"),
                    "s",
                    "pytest's own start: launch to end of collection (same suite)",
                    pytest_start,
                ),
                "cte_run_to_first_scenario_end_s": {
                    mode: round(statistics.median(at(mode, "first_done")), 4) for mode in ("sandbox", "replay")
                },
                "cte_run_to_end_of_collection_s": {
                    mode: round(statistics.median(at(mode, "collected")), 4) for mode in ("sandbox", "replay")
                },
                "bare_pytest_to_first_test": figure(
                    "bare pytest (no plugins autoloaded), one trivial test, launch to its call",
                    at("bare", "first"),
                    "s",
                    "pytest's own start: launch to end of collection (same suite)",
                    pytest_start,
                ),
            },
        },
    }


def report(result: dict[str, Any]) -> None:
    replay, serial, parallel, start = result["figures"]
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
    details = result["details"]["start"]
    print(
        f"pytest's own start (launch to end of collection, same suite): {start['baseline_value']:.2f} s; "
        f"bare pytest to one trivial test: {details['bare_pytest_to_first_test']['value']:.2f} s"
    )
    replay_start = details["cte_run_replay_to_first_scenario"]
    print(
        f"cte run start to first scenario: sandbox {start['value']:.2f} s = {start['ratio']:.2f}x pytest's start, "
        f"replay {replay_start['value']:.2f} s = {replay_start['ratio']:.2f}x "
        f"(first scenario {result['params']['first_scenario']}; ended at sandbox "
        f"{details['cte_run_to_first_scenario_end_s']['sandbox']:.2f} s, replay "
        f"{details['cte_run_to_first_scenario_end_s']['replay']:.2f} s)"
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
