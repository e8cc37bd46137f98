"""Where the harness finds what it ships and what a run writes.

Features, step modules and profiles ship inside the package, so an installed harness runs from any
folder. Cassettes are the user's: the checkout's `cassettes/` when the harness runs from one, else
`./cassettes` in the folder `cte` runs in.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
FEATURES_DIR = PACKAGE_DIR / "features"
# The step modules, the module that binds the features to tests, the suite's conftest and pytest.ini.
# pytest runs the suite with the package as its root, so a scenario's test id is
# `steps/test_features.py::<name>` wherever the package is installed (markers are seeded from it).
STEPS_DIR = PACKAGE_DIR / "steps"
PROFILE_DIR = PACKAGE_DIR / "profiles"
# A checkout (an editable install): the folder holding pyproject.toml beside the package.
CHECKOUT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None
CASSETTE_ROOT = (CHECKOUT / "cassettes") if CHECKOUT is not None else Path.cwd() / "cassettes"
CACHE_DIR = Path(os.environ.get("CTE_CACHE_DIR") or ((CHECKOUT or Path.cwd()) / ".cache"))
# How pytest is pointed at the suite (what `cte run` passes; tests and benchmarks do the same).
SUITE_PYTEST_ARGS = ("-c", str(STEPS_DIR / "pytest.ini"), "--rootdir", str(PACKAGE_DIR), str(STEPS_DIR))
