"""benchmarks/peak_memory.py's probe: every Python process started with this folder on PYTHONPATH (and
CTE_MEMORY_PROBE naming a folder) writes its own peak resident set there as it exits, so that the
harness's processes (cte, pytest, xdist workers, a served sandbox) are told apart from the rest of the
tree (headless Chromium and its Playwright driver). Python imports `sitecustomize` at start-up."""

import atexit
import json
import os
import resource
import sys

_FOLDER = os.environ.get("CTE_MEMORY_PROBE")


def _write() -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    kib = peak // 1024 if sys.platform == "darwin" else peak
    with open(os.path.join(_FOLDER, f"{os.getpid()}.json"), "w") as out:
        json.dump({"pid": os.getpid(), "argv": sys.argv[:4], "peak_kib": kib}, out)


if _FOLDER:
    atexit.register(_write)  # registered first: runs after every other exit handler
