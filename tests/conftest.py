"""Fixtures shared by the test modules."""

from __future__ import annotations

import os

import pytest

from harness.client.calling.browser import BrowserUnavailable, check_available


@pytest.fixture(scope="session")
def browser_here() -> None:
    """Chromium and the Calling SDK bundle are here: else skip with the reason, but under CI=true fail."""
    try:
        check_available()
    except BrowserUnavailable as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the real-SDK tests: {missing}")
        pytest.skip(str(missing))
