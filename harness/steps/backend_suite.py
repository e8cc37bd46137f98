"""Binds the features under harness/features/backend/ to tests: the scenarios `cte backend check` runs.

Not named test_*.py: `cte run` (which collects the steps folder) leaves them out; `cte backend check`
names this file to pytest.
"""

from pytest_bdd import scenarios

from harness.core.places import FEATURES_DIR

scenarios(str(FEATURES_DIR / "backend"))
