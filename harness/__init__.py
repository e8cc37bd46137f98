"""cte-conformance: conformance and policy harness for communication as a Teams user."""

import os
import sys

__version__ = "0.1.0"

# CTE_FORBID_SANDBOX=1: this process must reach its tenant only through a profile (the black-box
# check runs live mode so): importing the embedded sandbox fails at once instead of quietly helping.
SANDBOX_PACKAGE = "harness.sandbox"


class _ForbidSandbox:
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == SANDBOX_PACKAGE or name.startswith(SANDBOX_PACKAGE + "."):
            raise ImportError(f"{name} imported in a process that must not embed the sandbox (CTE_FORBID_SANDBOX=1)")
        return None


if os.environ.get("CTE_FORBID_SANDBOX") == "1" and not any(isinstance(f, _ForbidSandbox) for f in sys.meta_path):
    sys.meta_path.insert(0, _ForbidSandbox())
