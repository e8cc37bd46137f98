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


def test_the_start_probe_marks_collection_and_the_first_test_in_order(tmp_path) -> None:
    """suite_timing's start figure rests on the probe: it must reach a pytest process started with
    PYTEST_ADDOPTS and mark the end of collection, then the first test's call, then its end."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import suite_timing
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    (tmp_path / "test_two.py").write_text(
        "import time\n\ndef test_a():\n    time.sleep(0.05)\n\ndef test_b():\n    pass\n"
    )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_two.py"]
    marks = suite_timing.probed(command, tmp_path, {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert set(marks) == {"collected", "first", "first_done"}
    assert 0 < marks["collected"] <= marks["first"] < marks["first"] + 0.05 <= marks["first_done"]
