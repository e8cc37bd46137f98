"""A pytest plugin for `suite_timing.py` (not a benchmark: its name starts with `_`): appends to the
file named by $CTE_START_PROBE the wall-clock time (time.time(), comparable across processes) when
collection finished (`collected`), when the first test's call began, its set-up done (`first`), and
when that test's reports were all made (`first_done`). Loaded with `-p _start_probe` through
PYTEST_ADDOPTS, so that it reaches the pytest process `cte run` starts as well."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

_seen: set[str] = set()


def _mark(name: str) -> None:
    if name not in _seen and (path := os.environ.get("CTE_START_PROBE")):
        _seen.add(name)
        with open(path, "a", encoding="utf-8") as marks:
            marks.write(f"{name} {time.time()!r}\n")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: Any) -> None:
    _mark("collected")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: Any) -> None:
    _mark("first")


@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    _mark("first_done")
