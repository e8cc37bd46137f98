"""Where the Gherkin suite's time goes: the suite run by pytest in replay and in sandbox mode under
cProfile (every thread: the run's own, the sandbox's server, the webhook receiver, pools), each
function's own time charged to an area of the harness, the areas printed largest first.

    .venv/bin/python benchmarks/_suite_profile.py [--modes replay,sandbox] [--top 15]
        [--prof-dir DIR] [-k EXPR]

Not part of `make bench` (its name starts with `_`): it finds where the time goes, it is not a
figure. Each mode runs in its own process (`pytest.main` with the suite's arguments,
`harness.core.places.SUITE_PYTEST_ARGS`, reports in a scratch folder). `--prof-dir` keeps the raw
profiles there: `<mode>-main.prof` (the run's thread) and `<mode>-threads.prof` (every other thread,
merged), for `python -m pstats`, snakeviz and the like.

How time is charged: a function that is itself a big item (an ssl `load_verify_locations`, an RSA
`generate_private_key`, a lock `acquire`, a `time.sleep`, a socket read, anything in yaml/ or
importlib) is charged its own time; any other function's own time goes to the nearest caller that
is (harness.sandbox, httpx, harness.steps, pytest, ...), split between its callers in proportion
to the time each call took (cProfile keeps caller -> callee edges, not whole stacks: the split is an
estimate). The shares are of the run's thread's profiled time, which is the run's wall time; the
other threads overlap it (the sandbox answers while the run waits on its socket), so their areas are
shown apart. A profiler slows Python code (each call costs more) and not C code or waiting: read
the shares, and the absolute seconds as upper bounds.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import marshal
import os
import pstats
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

Func = tuple[str, int, str]

# An area, and what marks a function as belonging to it: a needle in "<file>:<function>". First
# match wins; a function matching none is charged to its callers (see the module's docstring).
AREAS: list[tuple[str, tuple[str, ...]]] = [
    (
        "TLS: context creation (load_verify_locations, load_cert_chain)",
        (
            "load_verify_locations",
            "load_cert_chain",
            "set_default_verify_paths",
            "_ssl._SSLContext' objects>",
            "ssl.py:create_default_context",
            "ssl.py:__new__",
            "httpx/_config.py:create_ssl_context",
        ),
    ),
    ("TLS: handshakes", ("do_handshake",)),
    (
        "key generation (RSA, certificates)",
        ("generate_private_key", "/rsa.py", "trustme/", "x509.py:sign", "CertificateBuilder", "_rust.x509"),
    ),
    (
        "waiting: socket reads (a peer answering)",
        ("recv_into' of '_socket", "method 'recv' of '_socket", "method 'read' of '_ssl._SSLSocket"),
    ),
    (
        "waiting: locks, events, sleeps",
        (
            "acquire' of '_thread",
            "time.sleep",
            "'get' of '_queue.SimpleQueue'",
            "select.select",
            "method 'poll' of 'select",
            "method 'control' of 'select",
        ),
    ),
    ("cassettes: YAML load and dump (yaml)", ("/yaml/", "_yaml")),
    ("cassettes: vcr matching, playback, recording", ("/vcr/",)),
    ("cassettes: scrubbing, matchers (harness.core)", ("harness/core/cassettes.py", "harness/core/scrubbing.py")),
    (
        "imports, assertion rewriting (importlib, pytest)",
        (
            "<frozen importlib",
            "marshal.loads",
            "builtins.compile",
            "_pytest/assertion/rewrite.py",
            ":<module>",
            "pkgutil.py",
            "importlib/metadata",
            "importlib_metadata",
            "pkg_resources",
        ),
    ),
    (
        "collection, Gherkin parsing (pytest, pytest-bdd)",
        (
            "pytest_bdd/parser.py",
            "pytest_bdd/feature.py",
            "pytest_bdd/gherkin",
            "gherkin/",
            "_pytest/python.py:collect",
            "_pytest/main.py:perform_collect",
            "_pytest/main.py:collect",
            "_pytest/python.py:_genfunctions",
            "_pytest/fixtures.py:getfixtureinfo",
            "_pytest/fixtures.py:parsefactories",
            "pytest_bdd/scenario.py:scenarios",
            "pytest_bdd/generation.py",
            "pytest_bdd/steps.py",
        ),
    ),
    ("sandbox: request handling (harness.sandbox)", ("harness/sandbox/",)),
    (
        "sandbox: HTTP server (uvicorn, starlette, h11, asyncio)",
        ("uvicorn/", "starlette/", "h11/", "httptools", "anyio/", "asyncio/", "fastapi/"),
    ),
    ("JWT, signatures (PyJWT, cryptography)", ("jwt/", "cryptography/", "_rust.openssl", "harness/wire/tokens.py")),
    ("client: HTTP (httpx, httpcore, harness.wire)", ("httpx/", "httpcore/", "harness/wire/", "h2/")),
    ("client: Graph, identity, calling, notification clients (harness.client)", ("harness/client/",)),
    ("scenario steps and flows (harness.steps, harness.conformance)", ("harness/steps/", "harness/conformance/")),
    (
        "harness session, reports (harness.run, harness.reporting, allure)",
        ("harness/run/", "harness/reporting/", "harness/pytest_plugin.py", "allure", "jinja2/", "xml/"),
    ),
    ("pytest, pytest-bdd, pluggy (the rest of their run loop)", ("_pytest/", "pytest_bdd/", "pluggy/", "pytest/")),
]
OTHER = "other (no area above on its stack)"
IDLE = ("waiting: locks, events, sleeps",)  # in another thread: idle (a server waiting for work)


# -- the child: one mode, profiled -----------------------------------------------------------------


def child(mode: str, out: Path, extra: list[str]) -> int:
    """Run the suite in this process with a profiler in every thread; write the profiles to `out`."""
    profiles: list[tuple[str, cProfile.Profile]] = []
    bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def profiled(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profiles.append((self.name, profile))
        profile.enable()
        try:
            bootstrap(self)
        finally:
            profile.disable()

    threading.Thread._bootstrap_inner = profiled  # type: ignore[attr-defined]
    main = cProfile.Profile()
    started = time.perf_counter()
    main.enable()
    import pytest

    from harness.core.places import SUITE_PYTEST_ARGS

    with tempfile.TemporaryDirectory(prefix="cte-profile-") as reports:
        args = [*SUITE_PYTEST_ARGS, "-q", "-p", "no:cacheprovider", f"--cte-mode={mode}", f"--cte-report-dir={reports}"]
        status = pytest.main([*args, *extra])
    main.disable()
    wall = time.perf_counter() - started
    main.dump_stats(out / "main.prof")
    merged: dict[Any, Any] = {}
    names: dict[str, int] = defaultdict(int)
    for name, profile in list(profiles):
        profile.snapshot_stats()  # not create_stats: that would disable a profile from another thread
        names[re.sub(r"\d+", "N", name)] += 1
        for func, (cc, nc, tt, ct, callers) in profile.stats.items():  # type: ignore[attr-defined]
            if func in merged:
                pcc, pnc, ptt, pct, pcallers = merged[func]
                for caller, edge in callers.items():
                    pcallers[caller] = (
                        tuple(a + b for a, b in zip(pcallers[caller], edge, strict=True))
                        if caller in pcallers
                        else edge
                    )
                merged[func] = (pcc + cc, pnc + nc, ptt + tt, pct + ct, pcallers)
            else:
                merged[func] = (cc, nc, tt, ct, dict(callers))
    with open(out / "threads.prof", "wb") as f:
        marshal.dump(merged, f)
    (out / "meta.json").write_text(json.dumps({"wall_s": wall, "status": int(status), "threads": names}))
    return 0


# -- the parent: charge time to areas, print -----------------------------------------------------------


def own_area(func: Func) -> str | None:
    text = f"{func[0].replace(os.sep, '/')}:{func[2]}"
    for area, needles in AREAS:
        if any(needle in text for needle in needles):
            return area
    return None


def charge(stats: dict[Func, Any], sweeps: int = 60) -> tuple[dict[str, float], dict[Func, str]]:
    """Seconds per area: each function's own time, to its own area or (split) its callers'.

    A function's split is the mean of its callers' splits weighted by the time of each call: the
    chance that a walk up the callers, each step taken in proportion to time, meets each area
    first. Solved by sweeps over the functions, largest cumulative time first (callers before
    callees, mostly: an acyclic stack settles in one sweep; recursion settles over a few). A walk
    that reaches a function nobody called without meeting an area is `OTHER`."""
    anchors = {func: own_area(func) for func in stats}
    callers = {
        func: [(caller, edge[3]) for caller, edge in entry[4].items() if caller in stats and caller != func]
        for func, entry in stats.items()
    }
    split: dict[Func, dict[str, float]] = {
        func: ({area: 1.0} if area is not None else {OTHER: 1.0} if not callers[func] else {})
        for func, area in anchors.items()
    }
    order = sorted((f for f in stats if anchors[f] is None and callers[f]), key=lambda f: -stats[f][3])
    for _ in range(sweeps):
        change = 0.0
        for func in order:
            weight = sum(w for _, w in callers[func]) or 1.0
            mixed: dict[str, float] = defaultdict(float)
            for caller, w in callers[func]:
                for area, share in split[caller].items():
                    mixed[area] += share * w / weight
            if not any(w for _, w in callers[func]):  # calls too short to time: an even split
                mixed = defaultdict(float)
                for caller, _ in callers[func]:
                    for area, share in split[caller].items():
                        mixed[area] += share / len(callers[func])
            before = split[func]
            change += sum(abs(mixed.get(a, 0.0) - before.get(a, 0.0)) for a in {*mixed, *before})
            split[func] = dict(mixed)
        if change < 1e-9 * len(order):
            break
    areas: dict[str, float] = defaultdict(float)
    where: dict[Func, str] = {}
    for func, entry in stats.items():
        shares = split[func]
        unresolved = max(0.0, 1.0 - sum(shares.values()))  # recursion not settled in `sweeps`
        for area, share in [*shares.items(), (OTHER, unresolved)]:
            areas[area] += entry[2] * share
        where[func] = max(shares, key=shares.__getitem__) if shares else OTHER
    return dict(areas), where


def label(func: Func) -> str:
    path, line, name = func
    if path == "~":
        return name
    parts = Path(path).parts
    for i, part in enumerate(parts):
        if part == "site-packages":
            return f"{'/'.join(parts[i + 1 :])}:{line}({name})"
        if part == "harness" or (part.startswith("python3.") and parts[i - 1] == "lib"):
            path = "/".join(parts[i:])
    return f"{path}:{line}({name})"


def table(rows: list[tuple[str, float]], total: float, top: int | None = None) -> list[str]:
    rows = sorted(rows, key=lambda r: -r[1])[:top]
    width = max((len(name) for name, _ in rows), default=10)
    return [f"  {seconds:7.2f} s {seconds / total:6.1%}  {name:<{width}}".rstrip() for name, seconds in rows]


def analyse(mode: str, folder: Path, top: int) -> dict[str, Any]:
    meta = json.loads((folder / "meta.json").read_text())
    main = pstats.Stats(str(folder / "main.prof")).stats  # type: ignore[attr-defined]
    with open(folder / "threads.prof", "rb") as f:
        threads = marshal.load(f)
    main_areas, main_where = charge(main)
    thread_areas, _ = charge(threads) if threads else ({}, {})
    total = sum(e[2] for e in main.values())
    idle = sum(s for a, s in thread_areas.items() if a in IDLE or a.startswith("waiting"))
    busy = {a: s for a, s in thread_areas.items() if not (a in IDLE or a.startswith("waiting"))}
    lines = [
        f"== {mode} mode: pytest exit status {meta['status']}, {meta['wall_s']:.2f} s wall under the profiler",
        f"the run's thread, by area ({total:.2f} s profiled = 100%):",
        *table(list(main_areas.items()), total),
        f"top {top} functions of the run's thread by own time:",
        *[
            line + f"  [{main_where[func].split(' (')[0]}]"
            for func, line in zip(
                sorted(main, key=lambda f: -main[f][2])[:top],
                table(sorted(((label(f), main[f][2]) for f in main), key=lambda r: -r[1])[:top], total),
                strict=True,
            )
        ],
    ]
    if threads:
        counts = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in sorted(meta["threads"].items()))
        lines += [
            f"other threads ({counts}), busy time by area ({sum(busy.values()):.2f} s; {idle:.2f} s idle or waiting "
            "apart; overlaps the run's waiting, % of the run's thread):",
            *table(list(busy.items()), total),
            f"top {top} functions of the other threads by own time (idle waits left out):",
            *table(
                [(label(f), e[2]) for f, e in threads.items() if not (own_area(f) or "").startswith("waiting")],
                total,
                top,
            ),
        ]
    print("\n".join(lines), flush=True)
    return {
        "mode": mode,
        "wall_s": round(meta["wall_s"], 3),
        "status": meta["status"],
        "main_thread_s": {a: round(s, 3) for a, s in sorted(main_areas.items(), key=lambda kv: -kv[1])},
        "other_threads_busy_s": {a: round(s, 3) for a, s in sorted(busy.items(), key=lambda kv: -kv[1])},
        "other_threads_idle_s": round(idle, 3),
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2], Path(sys.argv[3]), sys.argv[4:])
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="replay,sandbox", help="comma-separated: replay, sandbox")
    parser.add_argument("--top", type=int, default=15, help="functions listed per thread group")
    parser.add_argument("--prof-dir", type=Path, default=None, help="keep the raw .prof files in this folder")
    parser.add_argument("-k", default=None, help="pytest -k: profile only these scenarios")
    parser.add_argument("--json", type=Path, default=None, help="also write the areas' seconds to this file")
    args = parser.parse_args()
    extra = ["-k", args.k] if args.k else []
    results = []
    with tempfile.TemporaryDirectory(prefix="cte-profile-") as scratch:
        for mode in args.modes.split(","):
            folder = Path(scratch) / mode
            folder.mkdir()
            command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(folder), *extra]
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            if done.returncode != 0 or not (folder / "meta.json").exists():
                print(
                    f"{mode}: the profiled run failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
                )
                return 1
            print(done.stdout.strip().splitlines()[-1])  # the harness's verdict line
            results.append(analyse(mode, folder, args.top))
            if args.prof_dir is not None:
                args.prof_dir.mkdir(parents=True, exist_ok=True)
                (args.prof_dir / f"{mode}-main.prof").write_bytes((folder / "main.prof").read_bytes())
                (args.prof_dir / f"{mode}-threads.prof").write_bytes((folder / "threads.prof").read_bytes())
                print(f"raw profiles: {args.prof_dir}/{mode}-main.prof, {mode}-threads.prof")
            print()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
