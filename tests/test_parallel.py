"""`cte run -n 2` (pytest-xdist) gives the same verdicts and one merged report as a serial run."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from harness.reporting import SCHEMA_PATH
from tests.support import cte


def run(tmp_path: Path, name: str, *args: str) -> dict:
    cte("run", "-q", "--mode", "replay", "--report-dir", str(tmp_path / name), *args)
    return json.loads((tmp_path / name / "conformance.json").read_text())


def test_parallel_replay_matches_serial(tmp_path: Path) -> None:
    serial, parallel = run(tmp_path, "serial"), run(tmp_path, "parallel", "-n", "2")
    jsonschema.validate(parallel, json.loads(SCHEMA_PATH.read_text()))
    verdicts = {s["id"]: s["verdict"] for s in serial["scenarios"]}
    assert verdicts == {s["id"]: s["verdict"] for s in parallel["scenarios"]}
    assert serial["summary"] == parallel["summary"] and len(verdicts) >= 60
    junit = (tmp_path / "parallel" / "junit.xml").read_text()
    assert f'tests="{len(verdicts)}"' in junit
    assert len(list((tmp_path / "parallel" / "allure-results").glob("*-result.json"))) == len(verdicts)
