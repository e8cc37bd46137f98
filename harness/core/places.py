"""Where the harness finds what it ships and what a run writes.

Features, step modules and profiles ship inside the package, so an installed harness runs from any
folder. Cassettes are the user's: the checkout's `cassettes/` when the harness runs from one, else
`./cassettes` in the folder `cte` runs in.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SUITE_DIR = PACKAGE_DIR / "suite"
FEATURES_DIR = SUITE_DIR / "features"
PROFILE_DIR = PACKAGE_DIR / "profiles"
# A checkout (an editable install): the folder holding pyproject.toml beside the package.
CHECKOUT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None
CASSETTE_ROOT = (CHECKOUT / "cassettes") if CHECKOUT is not None else Path.cwd() / "cassettes"
CACHE_DIR = Path(os.environ.get("CTE_CACHE_DIR") or ((CHECKOUT or Path.cwd()) / ".cache"))
