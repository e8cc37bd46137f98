"""Every benchmark script still imports (they run only under `make bench`, so a moved module would
otherwise break them unnoticed: two did when the package was layered)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT

SCRIPTS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py"))


def test_there_are_benchmark_scripts() -> None:
    assert {"run_all", "suite_timing", "suite_scale"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_script_imports(script: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {script}"], cwd=ROOT / "benchmarks", capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-1500:]
