"""The harness installs as a wheel and runs from any folder: features, steps and profiles ship in it.

The wheel is built from the package's files, installed into a fresh virtual environment (its
dependencies borrowed from this one through a .pth line, so the test needs no download beyond the
build backend), and `cte doctor` and `cte run` are run in an empty folder with that environment's
`cte`. The test checks the harness it ran is the installed one, not this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from harness.client.browser_sign_in import MSAL_DIR
from harness.core.places import FEATURES_DIR, PROFILE_DIR
from tests.support import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the built wheel; returns its bin folder."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    shutil.copytree(ROOT / "harness", source / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(base / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (base / "dist").glob("cte_conformance-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # A .pth line adds this venv's packages (the dependencies) after the wheel's own; .pth files in
    # that folder are not processed, so this checkout's editable install is not seen.
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def _in_empty_folder(bin_dir: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTE_", "PYTEST_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    # A prerequisite the machine provides, as it provides Chromium: the MSAL.js bundle `make msal-browser` built
    # (the installed harness has no checkout, so no .cache/ of its own).
    env["CTE_MSAL_BROWSER_DIR"] = str(MSAL_DIR)
    return subprocess.run(
        [str(bin_dir / "cte"), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_installed_harness_is_the_wheel_and_carries_its_suite(installed: Path, tmp_path: Path) -> None:
    probe = (
        "import json, harness; from harness.core import places; "
        "print(json.dumps({'package': harness.__file__, 'features': len(list(places.FEATURES_DIR.rglob('*.feature'))),"
        " 'profiles': len(list(places.PROFILE_DIR.glob('*.toml'))), 'checkout': str(places.CHECKOUT)}))"
    )
    seen = json.loads(
        subprocess.run(
            [str(installed / "python"), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout
    )
    assert seen["package"].startswith(str(installed.parent)), seen
    assert seen["features"] == len(list(FEATURES_DIR.rglob("*.feature"))) > 0
    assert seen["profiles"] == len(list(PROFILE_DIR.glob("*.toml"))) > 0
    assert seen["checkout"] == "None"


def test_doctor_and_run_work_in_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    doctor = _in_empty_folder(installed, tmp_path, "doctor")
    assert doctor.returncode == 0, doctor.stdout[-2000:] + doctor.stderr[-2000:]
    assert (tmp_path / "reports" / "doctor" / "doctor.json").is_file()

    run = _in_empty_folder(installed, tmp_path, "run", "-q")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (report,) = (tmp_path / "reports").glob("*-sandbox/conformance.json")
    document = json.loads(report.read_text())
    verdicts = [s["verdict"] for s in document["scenarios"]]
    assert len(verdicts) >= 70 and set(verdicts) <= {"PASS", "WARN"}, sorted(set(verdicts))
    assert not (tmp_path / "harness").exists()  # nothing of the checkout was needed or written
