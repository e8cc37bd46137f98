"""Does the replay suite's time per scenario stay constant as the suite grows? The real suite's
scenarios multiplied 1x, 3x and 10x (generated), replayed from cassettes recorded for them, beside
`pytest --collect-only` of the same generated suite.

    .venv/bin/python benchmarks/suite_scale.py [--scales 1,3,10] [--repeat N] [--record-workers 2]
                                               [--keep DIR] [--json PATH]

How the larger suites are made (nothing in the checkout is touched):
- The harness package is copied into a scratch folder once per scale, and the suite runs from that
  copy (PYTHONPATH names it; the copy's `features/` is what `steps/test_features.py` binds). At scale
  k every feature file is there k times: the original, and `<stem>_x02.feature` ... `<stem>_x<k>`,
  whose Feature and Scenario titles end in `(copy NN)`, so every scenario has its own test id and its
  own cassette, and the mix of scenarios (areas, outlines, sizes) is the real suite's at every scale.
- Replay needs a cassette per scenario: the largest suite is recorded once against the embedded
  sandbox (`--cte-mode=record`, in a scratch cassette folder); each scale replays from a folder
  holding just its own scenarios' cassettes (copies 1..k are the same scenarios at every scale).
- The copy is byte-compiled and collected once before anything is timed (a checkout that has run
  before has its bytecode). Each round times, per scale: `--collect-only`, then a replay run (the
  runs interleaved, so a noisy neighbour weighs on all of them alike). A run that fails, or
  collects other than (the 1x count) x k scenarios, stops the benchmark.

Figures: replay wall time per scenario at each larger scale against the same at 1x (ratio 1.00 =
constant time per scenario; below 1, the run's fixed start-up spread over more scenarios); the
same less collect-only time, and collect-only per scenario, at the largest scale against 1x. The curve
(scenarios, collect-only and replay seconds, milliseconds per scenario with and without the
collect-only share, and per scenario added since the scale before) is under `details.curve`. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from suite_timing import figure  # a sibling script (benchmarks run from this folder): one shape for every figure

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "harness"


def title_with_copy(line: str, copy: int) -> str:
    """`Feature: X` / `Scenario: X` / `Scenario Outline: X` -> the same title ending in `(copy NN)`."""
    match = re.match(r"^(\s*(?:Feature|Scenario Outline|Scenario Template|Scenario|Example):\s*)(.*?)\s*$", line)
    if match is None:
        return line
    return f"{match.group(1)}{match.group(2)} (copy {copy:02d})\n"


def generate(scale: int, into: Path) -> Path:
    """A copy of the harness package under `into` whose features are the real ones `scale` times."""
    package = into / "harness"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for feature in sorted((package / "features").rglob("*.feature")):
        lines = feature.read_text(encoding="utf-8").splitlines(keepends=True)
        for copy in range(2, scale + 1):
            text = "".join(title_with_copy(line, copy) for line in lines)
            feature.with_name(f"{feature.stem}_x{copy:02d}.feature").write_text(text, encoding="utf-8")
    # Bytecode up front, as a checkout that has run before has it (else the first run compiles).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    return into


def environment(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("CTE_CACHE_DIR", str(ROOT / ".cache"))  # what the checkout's suite would use
    return env


def pytest_command(folder: Path, *extra: str) -> list[str]:
    package = folder / "harness"
    steps = package / "steps"
    return [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(steps / "pytest.ini"),
        "--rootdir",
        str(package),
        str(steps),
        "-q",
        "-p",
        "no:cacheprovider",
        *extra,
    ]


def run(folder: Path, *extra: str) -> tuple[float, str]:
    command = pytest_command(folder, *extra)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=environment(folder), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stdout[-3000:]}{result.stderr}")
    return elapsed, result.stdout


def collected(stdout: str) -> int:
    """The count in pytest -q's last line: `700 tests collected` / `700 passed`."""
    counts = re.findall(r"(\d+) (?:tests? collected|passed)", stdout)
    return int(counts[-1]) if counts else -1


def check_imports_copy(folder: Path) -> None:
    probe = "import harness.core.places as p; print(p.PACKAGE_DIR)"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=folder, env=environment(folder), capture_output=True, text=True
    )
    if Path(out.stdout.strip()) != folder / "harness":
        raise SystemExit(f"the copy in {folder} is not the harness imported there: {out.stdout}{out.stderr}")


def subset_cassettes(recorded: Path, scale: int, into: Path) -> int:
    """The cassettes of copies 1..scale (per feature file: `<area>/<feature-slug>/`)."""
    wanted = re.compile(r"^.*?(?:-x(\d{2}))?$")
    count = 0
    for folder in sorted(p for p in recorded.glob("*/*") if p.is_dir()):
        match = wanted.match(folder.name)
        copy = int(match.group(1)) if match and match.group(1) else 1
        if copy <= scale:
            shutil.copytree(folder, into / folder.relative_to(recorded))
            count += sum(1 for _ in (into / folder.relative_to(recorded)).rglob("*.yaml"))
    return count


def measure(scales: list[int], repeat: int, record_workers: int, scratch: Path) -> dict[str, Any]:
    largest = max(scales)
    folders = {k: generate(k, scratch / f"suite-{k}x") for k in scales}
    check_imports_copy(folders[largest])
    # Record the largest suite once; every scale replays its own share of those cassettes.
    recorded = scratch / "cassettes-recorded"
    workers = ["-n", str(record_workers)] if record_workers > 1 else []
    record_s, out = run(
        folders[largest],
        "--cte-mode=record",
        f"--cte-cassette-dir={recorded}",
        f"--cte-report-dir={scratch / 'reports' / 'record'}",
        *workers,
    )
    print(f"recorded {collected(out)} scenarios ({largest}x) against the sandbox in {record_s:.1f} s", flush=True)
    cassette_dirs = {}
    for k in scales:
        cassette_dirs[k] = scratch / f"cassettes-{k}x"
        subset_cassettes(recorded, k, cassette_dirs[k])
    scenarios: dict[int, int] = {}
    for k in scales:  # warm-up: bytecode for the copy, the collected count checked
        _, out = run(folders[k], "--collect-only")
        scenarios[k] = collected(out)
    base = scenarios[min(scales)] // min(scales)
    for k in scales:
        if scenarios[k] != base * k:
            raise SystemExit(f"{k}x collected {scenarios[k]} scenarios, expected {base} x {k}")
    times: dict[int, dict[str, list[float]]] = {k: {"collect": [], "replay": []} for k in scales}
    for n in range(repeat):
        for k in scales:
            times[k]["collect"].append(run(folders[k], "--collect-only")[0])
            elapsed, out = run(
                folders[k],
                "--cte-mode=replay",
                f"--cte-cassette-dir={cassette_dirs[k]}",
                f"--cte-report-dir={scratch / 'reports' / f'replay-{k}x-{n}'}",
            )
            if collected(out) != scenarios[k]:
                raise SystemExit(f"replay {k}x passed {collected(out)} of {scenarios[k]} scenarios:\n{out[-3000:]}")
            times[k]["replay"].append(elapsed)
    curve = []
    previous: tuple[int, float] | None = None
    for k in scales:
        collect, replay = statistics.median(times[k]["collect"]), statistics.median(times[k]["replay"])
        # What each scenario added since the scale before costs (the slope; start-up costs cancel out).
        marginal = (replay - previous[1]) / (scenarios[k] - previous[0]) * 1000 if previous else None
        previous = (scenarios[k], replay)
        curve.append(
            {
                "scale": k,
                "scenarios": scenarios[k],
                "collect_only_s": round(collect, 3),
                "replay_s": round(replay, 3),
                "replay_ms_per_scenario": round(replay / scenarios[k] * 1000, 2),
                "replay_minus_collect_ms_per_scenario": round((replay - collect) / scenarios[k] * 1000, 2),
                "collect_only_ms_per_scenario": round(collect / scenarios[k] * 1000, 2),
                "replay_marginal_ms_per_added_scenario": round(marginal, 2) if marginal is not None else None,
                "collect_only_samples_s": [round(s, 3) for s in times[k]["collect"]],
                "replay_samples_s": [round(s, 3) for s in times[k]["replay"]],
            }
        )

    def per_scenario(k: int, kind: str) -> list[float]:
        return [s / scenarios[k] * 1000 for s in times[k][kind]]

    one = min(scales)
    figures = [
        figure(
            f"replay time per scenario, {k}x scenarios",
            per_scenario(k, "replay"),
            "ms",
            f"replay time per scenario, {one}x (same generated suite)",
            per_scenario(one, "replay"),
        )
        for k in scales
        if k != one
    ]

    def net(k: int) -> list[float]:
        return [(r - c) / scenarios[k] * 1000 for r, c in zip(times[k]["replay"], times[k]["collect"], strict=True)]

    figures.append(
        figure(
            f"replay minus collect-only time per scenario, {largest}x scenarios",
            net(largest),
            "ms",
            f"replay minus collect-only time per scenario, {one}x",
            net(one),
        )
    )
    figures.append(
        figure(
            f"collect-only time per scenario, {largest}x scenarios",
            per_scenario(largest, "collect"),
            "ms",
            f"collect-only time per scenario, {one}x",
            per_scenario(one, "collect"),
        )
    )
    return {
        "name": "suite_scale",
        "params": {"scales": scales, "repeat": repeat, "record_workers": record_workers, "statistic": "median"},
        "figures": figures,
        "details": {"curve": curve, "record_s": round(record_s, 1), "recorded_scale": largest},
    }


def report(result: dict[str, Any]) -> None:
    print(f"runs per point: {result['params']['repeat']} (median shown)")
    header = (
        "scale",
        "scenarios",
        "collect-only s",
        "replay s",
        "replay ms/scen",
        "(replay-collect) ms/scen",
        "ms per added scen",
    )
    print("  ".join(f"{h:>{len(h)}}" for h in header))
    for p in result["details"]["curve"]:
        cells = (
            f"{p['scale']}x",
            str(p["scenarios"]),
            f"{p['collect_only_s']:.2f}",
            f"{p['replay_s']:.2f}",
            f"{p['replay_ms_per_scenario']:.1f}",
            f"{p['replay_minus_collect_ms_per_scenario']:.1f}",
            "-"
            if p["replay_marginal_ms_per_added_scenario"] is None
            else f"{p['replay_marginal_ms_per_added_scenario']:.1f}",
        )
        print("  ".join(f"{c:>{len(h)}}" for c, h in zip(cells, header, strict=True)))
    for f in result["figures"]:
        print(f"{f['figure']}: {f['value']:.1f} ms = {f['ratio']:.2f}x {f['baseline']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--scales", default="1,3,10", help="comma-separated multiples of the suite (the first is the baseline)"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--record-workers", type=int, default=2, help="pytest-xdist processes recording the largest suite"
    )
    parser.add_argument("--keep", type=Path, default=None, help="build in this (new) folder and leave it there")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    scales = sorted({int(s) for s in args.scales.split(",")})
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=False)
        result = measure(scales, args.repeat, args.record_workers, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="cte-scale-") as scratch:
            result = measure(scales, args.repeat, args.record_workers, Path(scratch))
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
