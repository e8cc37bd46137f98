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
alike. A run that fails (a FAIL or ERROR verdict, a crash) does not stop the benchmark: its time is
kept (a suite with a FAIL still ran every scenario), the failure is listed in the results (`failures`:
the variant, the round, the exit status, the harness's verdict line and the output's tail), and the
other runs go on; a start-up probe that marked nothing gives no sample. Each suite run's verdict line
is kept too (`verdicts`), so that a change of verdicts between variants shows. Prints figures (and
with `--json`, writes them); asserts nothing.
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


VERDICT_LINE = "cte-conformance:"  # the harness's own count, the last line of a suite run


class Runs:
    """What every run said: the harness's verdict line per variant and round, and the failures."""

    def __init__(self) -> None:
        self.verdicts: dict[str, list[str | None]] = {}
        self.failures: list[dict[str, Any]] = []

    def note(self, variant: str, round_: int, command: list[str], returncode: int, output: str) -> None:
        verdict = next((line for line in reversed(output.splitlines()) if line.startswith(VERDICT_LINE)), None)
        self.verdicts.setdefault(variant, []).append(verdict)
        if returncode != 0:
            self.failures.append(
                {
                    "variant": variant,
                    "round": round_,
                    "command": " ".join(command),
                    "returncode": returncode,
                    "verdict": verdict,
                    "tail": output[-1500:],
                }
            )
            print(f"run failed ({variant}, round {round_ + 1}, exit status {returncode}): {verdict or output[-300:]}")


def timed(command: list[str], runs: Runs, variant: str, round_: int) -> float:
    """Seconds `command` took; a failed run is noted in `runs` and its time kept (see the docstring)."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    runs.note(variant, round_, command, result.returncode, result.stdout + result.stderr)
    return elapsed


def probed(command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> dict[str, float]:
    """Seconds from launching `command` to each moment the probe plugin marks (see the docstring); a
    SystemExit naming the command when the probe marked no end of collection."""
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


def median(samples: list[float]) -> float | None:
    return statistics.median(samples) if samples else None


def figure(name: str, samples: list[float], unit: str, baseline: str, baseline_samples: list[float]) -> dict[str, Any]:
    """Medians and their ratio (None where every run of either side failed to give a sample)."""
    value, base = median(samples), median(baseline_samples)
    return {
        "figure": name,
        "value": round(value, 4) if value is not None else None,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(base, 4) if base is not None else None,
        "ratio": round(value / base, 3) if value is not None and base else None,
        "samples": [round(s, 4) for s in samples],
        "baseline_samples": [round(s, 4) for s in baseline_samples],
    }


def measure(repeat: int, workers: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"collect": [], "replay": [], "serial": [], "parallel": []}
    starts: dict[str, list[dict[str, float]]] = {"pytest": [], "sandbox": [], "replay": [], "bare": []}
    said = Runs()
    name = first_scenario()
    with tempfile.TemporaryDirectory() as reports:
        empty = Path(reports) / "empty"
        empty.mkdir()
        (empty / "test_trivial.py").write_text("def test_nothing():\n    pass\n")
        suites = {
            "collect": lambda n: [*PYTEST, "--collect-only"],
            "replay": lambda n: [*PYTEST, "--cte-mode=replay", f"--cte-report-dir={reports}/r{n}"],
            "serial": lambda n: [*PYTEST, "--cte-mode=sandbox", f"--cte-report-dir={reports}/s{n}"],
            "parallel": lambda n: [
                *PYTEST,
                "--cte-mode=sandbox",
                f"--cte-report-dir={reports}/p{n}",
                "-n",
                str(workers),
            ],
        }
        for n in range(repeat):
            for variant, command in suites.items():
                runs[variant].append(timed(command(n), said, variant, n))
            begins = {
                "pytest": ([*PYTEST, "--collect-only"], ROOT, None),
                **{
                    mode: (
                        [*CTE, "run", "--mode", mode, "-q", "-k", name, "--report-dir", f"{reports}/{mode}-start{n}"],
                        ROOT,
                        None,
                    )
                    for mode in ("sandbox", "replay")
                },
                "bare": (
                    [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_trivial.py"],
                    empty,
                    {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
                ),
            }
            for variant, (command, cwd, env) in begins.items():
                try:
                    starts[variant].append(probed(command, cwd, env))
                except SystemExit as failed:  # no mark: no sample from this run
                    said.note(f"start: {variant}", n, command, -1, str(failed))
    startup = sandbox_startup(repeat)
    collect = "pytest --collect-only (same suite)"

    def at(variant: str, mark: str) -> list[float]:
        return [marks[mark] for marks in starts[variant] if mark in marks]

    def median_of(variant: str, mark: str) -> float | None:
        found = median(at(variant, mark))
        return round(found, 4) if found is not None else None

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
            "verdicts": said.verdicts,
            "failures": said.failures,
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
                    mode: median_of(mode, "first_done") for mode in ("sandbox", "replay")
                },
                "cte_run_to_end_of_collection_s": {
                    mode: median_of(mode, "collected") for mode in ("sandbox", "replay")
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


def _s(value: float | None, ratio: bool = False) -> str:
    """A figure's value for the printout ("-": no run gave one)."""
    return "-" if value is None else f"{value:.2f}{'x' if ratio else ' s'}"


def report(result: dict[str, Any]) -> None:
    replay, serial, parallel, start = result["figures"]
    base = replay["baseline_value"]
    print(f"runs per figure: {result['params']['repeat']} (median shown)")
    print(f"pytest --collect-only (baseline): {_s(base)}")
    for name, f in (("replay suite", replay), ("sandbox suite", serial)):
        added = f" (+{f['value'] - base:.2f} s)" if f["value"] is not None and base is not None else ""
        print(f"{name}: {_s(f['value'])}  = {_s(f['ratio'], True)} collect-only{added}")
    workers = result["params"]["workers"]
    speed_up = f" (speed-up {1 / parallel['ratio']:.2f}x)" if parallel["ratio"] else ""
    print(f"sandbox suite -n {workers}: {_s(parallel['value'])}  = {_s(parallel['ratio'], True)} serial{speed_up}")
    details = result["details"]["start"]
    print(
        f"pytest's own start (launch to end of collection, same suite): {_s(start['baseline_value'])}; "
        f"bare pytest to one trivial test: {_s(details['bare_pytest_to_first_test']['value'])}"
    )
    replay_start, ended = details["cte_run_replay_to_first_scenario"], details["cte_run_to_first_scenario_end_s"]
    print(
        f"cte run start to first scenario: sandbox {_s(start['value'])} = {_s(start['ratio'], True)} pytest's "
        f"start, replay {_s(replay_start['value'])} = {_s(replay_start['ratio'], True)} (first scenario "
        f"{result['params']['first_scenario']}; ended at sandbox {_s(ended['sandbox'])}, replay {_s(ended['replay'])})"
    )
    print(
        f"sandbox start-up (certificates, RSA keys, HTTPS listener): {result['details']['sandbox_startup_ms']:.0f} ms"
    )
    for variant, verdicts in result["details"]["verdicts"].items():
        if not any(verdicts):  # collect-only: no verdict
            continue
        if len(set(verdicts)) == 1:
            print(f"{variant}: {verdicts[0] or '(no verdict line)'} (every run)")
        else:
            print(f"{variant}: verdicts differ between runs: {verdicts}")
    if failures := result["details"]["failures"]:
        print(f"{len(failures)} run(s) failed; kept in the results (details.failures), the others measured")


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
