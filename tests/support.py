"""Helpers the test modules share (not fixtures)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent


def cte(*args: str, env: Mapping[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`cte ARGS` in a process of its own, from the repository root (`env`: its whole environment)."""
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


T = TypeVar("T")
# One thread where every test's event loop runs: Playwright's sync API (the browser tests) keeps an event
# loop running on the main thread for the rest of the session, where asyncio refuses to run another.
_ASYNC = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cte-test-async")


def run_async(awaitable: Awaitable[T], loop: asyncio.AbstractEventLoop | None = None) -> T:
    """`awaitable` to completion on the test thread's own loop: a fresh one, or `loop` (kept across calls)."""
    if loop is not None:
        return _ASYNC.submit(loop.run_until_complete, awaitable).result()
    return _ASYNC.submit(asyncio.run, awaitable).result()  # type: ignore[arg-type]
