"""`cte`: run the suite, record cassettes, serve the sandbox.

cte run [--profile NAME] [--mode MODE] [--calling sandbox|browser] [--report-dir DIR] [-k EXPR] [-- PYTEST ARGS]
cte record [--profile P] [--cassette-dir DIR [--overwrite]] [-k EXPR]   record cassettes (sandbox: reproducible)
cte sandbox serve [--port N] [--tenant NAME] [--fixed-clock] [--write-profile PATH]
cte sandbox parity DIR [--sandbox-cassettes DIR] [--report-dir DIR]   a recording against the sandbox's answers
cte matrix REPORT... [-o DIR]   many runs on one page: scenarios x tenant profiles or runs over time
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import __version__
from harness.core.config import CALLING_DRIVERS, MODES, ProfileError, load_profile, resolve_mode
from harness.core.places import STEPS_DIR, SUITE_PYTEST_ARGS

STEPS = STEPS_DIR


def _fail(message: str) -> int:
    print(f"cte: {message}", file=sys.stderr)
    return 2


def embedded_sandbox(**options: Any) -> Any:
    """The sandbox a sandbox-profile mode starts in this process (`cte` and the pytest plugin hand it
    to the mode); imported only then, so a live run, and the check of a live profile, never loads it."""
    from harness.sandbox.server import embedded

    return embedded(**options)


def check_run(profile: str, mode: str, cassette_dir: Path | None = None) -> None:
    """The profile validated once for the mode, before anything starts: a bad profile, a secret not
    set, a sandbox profile in live mode (ProfileError, one line)."""
    from harness.run.modes import mode_for

    mode_for(resolve_mode(mode), load_profile(profile), cassette_dir=cassette_dir, embedded=embedded_sandbox).close()


def run_suite(
    profile: str,
    mode: str,
    report_dir: Path | None,
    extra: list[str],
    *,
    quiet: bool = False,
    targets: list[str] | None = None,
    alluredir: Path | None = None,
    cassette_dir: Path | None = None,
    run_id: str | None = None,
) -> int:
    """The Gherkin suite in a pytest process; reports under report_dir (default reports/<run-id>), the
    run's id the one pytest writes in them. Nothing selected: one line, exit 2, no report folder left."""
    try:
        mode = resolve_mode(mode)
        check_run(profile, mode, cassette_dir)
    except ProfileError as err:
        return _fail(str(err))
    run_id = run_id or new_run_id(mode, profile)
    if report_dir is None:
        report_dir = Path("reports") / run_id
    allure_dir = alluredir or report_dir / "allure-results"
    existed = {path: path.exists() for path in (report_dir, allure_dir, report_dir / "junit.xml")}
    command = [
        sys.executable,
        "-m",
        "pytest",
        *SUITE_PYTEST_ARGS[:-1],
        *(targets or SUITE_PYTEST_ARGS[-1:]),
        f"--cte-mode={mode}",
        f"--cte-profile={profile}",
        f"--cte-report-dir={report_dir}",
        f"--cte-run-id={run_id}",
        *([f"--cte-cassette-dir={cassette_dir.resolve()}"] if cassette_dir else []),
        f"--alluredir={allure_dir}",
        f"--junitxml={report_dir / 'junit.xml'}",
        "-o",
        "junit_suite_name=cte-conformance",
        "--tb=short",
        "-q" if quiet else "-v",
        "--no-header",
        "-rN",
        "-p",
        "no:cacheprovider",
        *extra,
    ]
    status = subprocess.call(command)
    if status == NO_TESTS_COLLECTED:
        _remove_if_new(existed)
        selection = f" -k {extra[extra.index('-k') + 1]!r}" if "-k" in extra[:-1] else ""
        return _fail(f"no scenario matched the selection{selection}: nothing ran and no report was written")
    return status


NO_TESTS_COLLECTED = 5  # pytest's exit status when the selection left nothing to run


def new_run_id(mode: str, profile: str = "sandbox") -> str:
    """A run's id, `<UTC stamp>-<mode>[-<profile>]`: its report folder's name and the run.id in its
    reports. The profile is named unless it is the default, so that runs of several tenants started
    side by side (a partner's CI) never share an id."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(profile).stem).strip("-") or "profile"
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{mode}" + ("" if stem == "sandbox" else f"-{stem}")


def _remove_if_new(existed: dict[Path, bool]) -> None:
    """What a run that ran nothing left behind (an empty Allure folder, an empty junit.xml), if it
    was not there before; a folder only when empty."""
    for path, was_there in existed.items():
        if not was_there and path.is_file():
            path.unlink()
    for path, was_there in sorted(existed.items(), key=lambda item: len(item[0].parts), reverse=True):
        if not was_there and path.is_dir() and not any(p.is_file() for p in path.rglob("*")):
            shutil.rmtree(path)  # deepest first: the Allure folder, then the report folder


def _failed_nodeids(report: Path) -> list[str]:
    from harness.reporting.diff import load

    document = load(report)
    return [
        f"{STEPS / 'test_features.py'}::{s['id']}" for s in document["scenarios"] if s["verdict"] in ("FAIL", "ERROR")
    ]


def cmd_run(args: argparse.Namespace) -> int:
    if args.mode == "record":
        return _fail("cte run does not record (it would write over cassettes/); use cte record [--cassette-dir DIR]")
    extra = list(args.pytest_args)
    if args.k:
        extra += ["-k", args.k]
    if args.workers:
        extra += ["-n", args.workers]
    if problem := _add_calling(extra, args.calling, args.mode):
        return _fail(problem)
    failed: list[str] | None = None
    if args.rerun_failed:
        try:
            failed = _failed_nodeids(Path(args.rerun_failed))
        except ValueError as err:
            return _fail(str(err))
        if not failed:
            print(f"cte: nothing failed in {args.rerun_failed}; nothing to rerun")
            return 0
    history_from = Path(args.allure_history_from) if args.allure_history_from else None
    if history_from and not allure_history(history_from):
        return _fail(
            f"--allure-history-from {history_from}: holds no Allure history ({ALLURE3_HISTORY} or "
            f"{ALLURE2_HISTORY}/); render that run's Allure report first (cte report allure "
            f"{history_from / 'allure-results'}), then run again"
        )
    run_id = new_run_id(args.mode, args.profile)
    report_dir = Path(args.report_dir) if args.report_dir else Path("reports") / run_id
    status = run_suite(
        args.profile,
        args.mode,
        report_dir,
        extra,
        quiet=args.quiet,
        targets=failed,
        alluredir=Path(args.alluredir) if args.alluredir else None,
        cassette_dir=Path(args.cassette_dir) if args.cassette_dir else None,
        run_id=run_id,
    )
    if history_from and (report_dir / "conformance.json").exists():
        allure_dir = Path(args.alluredir) if args.alluredir else report_dir / "allure-results"
        for target in carry_allure_history(history_from, report_dir, allure_dir):
            print(f"allure history from {history_from}: {target}")
    if args.bundle and (report_dir / "conformance.json").exists():
        from harness.reporting.bundle import write_bundle

        print(f"bundle: {write_bundle(report_dir, args.profile)}")
    return status


NO_PASSWORD_SIGN_IN = ("mfa", "unlicensed")  # roles whose accounts are meant to fail sign-in or the exchange


def doctor_users(tenant: Any) -> list[str]:
    """Whom doctor signs in: the accounts playing roles that sign in with a password and hold a
    Teams licence (not the MFA or unlicensed user, who are meant to fail); without roles, every user."""
    if not tenant.roles:
        return sorted(tenant.users)
    meant_to_fail = {tenant.roles[r] for r in NO_PASSWORD_SIGN_IN if r in tenant.roles}
    return sorted({alias for alias in tenant.roles.values() if alias not in meant_to_fail and alias in tenant.users})


def cmd_doctor(args: argparse.Namespace) -> int:
    """Preflight: walk the chain for a profile; exit 1 at the first blocking problem."""
    import contextlib

    from harness.core import scrubbing
    from harness.core.prerequisites import MissingPrerequisite
    from harness.run import doctor
    from harness.wire import transport

    try:
        profile = load_profile(args.profile)
    except ProfileError as err:
        return _fail(str(err))
    with contextlib.ExitStack() as stack:
        try:
            if profile.kind == "sandbox":
                from harness.sandbox.server import Sandbox  # the CLI may start the sandbox

                sandbox = stack.enter_context(Sandbox())
                stack.enter_context(transport.route_hosts(sandbox.host_routes()))
                tenant = profile.for_sandbox(
                    sandbox.tenant_info(profile.sandbox_tenant), sandbox.host_routes(), "sandbox"
                )
                users = [u for u in profile.data.get("doctor_users", ["adele", "megan"]) if u in tenant.users]
            else:
                tenant = profile.for_live()
                users = doctor_users(tenant)
        except (ProfileError, MissingPrerequisite) as err:
            return _fail(str(err))
        webhook = os.environ.get("CTE_NOTIFICATION_URL") or tenant.notification_url
        checks = [doctor.Check("profile complete", "ok", f"{profile.name} ({profile.kind})")]
        checks += doctor.Doctor(tenant, users, webhook, webhook_port=tenant.notification_port).run()
    scrubber = scrubbing.Scrubber(tenant.known_secrets(), unknown_guids=False)
    for check in checks:
        check.detail, check.remedy = scrubber.text(check.detail), scrubber.text(check.remedy)
    report_dir = Path(args.report_dir) if args.report_dir else Path("reports") / "doctor"
    doctor.write(checks, report_dir / "doctor.json", profile.name)
    print(doctor.table(checks))
    blocked = any(c.status == "fail" for c in checks)
    print(f"{'blocked' if blocked else 'ready'}: {report_dir / 'doctor.json'}")
    return 1 if blocked else 0


ALLURE_CONFIG = """export default {
  name: "cte-conformance",
  historyPath: %s,
  plugins: { awesome: { options: { singleFile: true, groupBy: ["feature", "tag"] } } },
};
"""
# Allure's trend needs the earlier runs' history: Allure 3 keeps it in one JSONL file (historyPath), which
# `cte report allure` keeps beside the results, in the report folder, and appends each rendering to; Allure 2
# writes history/ into a generated report, to be copied into the next run's results before `allure generate`.
ALLURE3_HISTORY = "allure-history.jsonl"
ALLURE2_HISTORY = Path("allure-report") / "history"


def allure_history(previous: Path) -> list[tuple[Path, str]]:
    """What a previous report folder holds of Allure's history: (source, where it goes) pairs."""
    found = []
    if (previous / ALLURE3_HISTORY).is_file():
        found.append((previous / ALLURE3_HISTORY, "report"))
    if (previous / ALLURE2_HISTORY).is_dir():
        found.append((previous / ALLURE2_HISTORY, "results"))
    return found


def carry_allure_history(previous: Path, report_dir: Path, allure_dir: Path) -> list[Path]:
    """Copy the previous run's Allure history into this run's folders: the Allure 3 file into the report
    folder (`cte report allure` reads and extends it there), Allure 2's history/ into the results."""
    written = []
    for source, where in allure_history(previous):
        if where == "report":
            target = report_dir / ALLURE3_HISTORY
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        else:
            target = allure_dir / "history"
            shutil.copytree(source, target, dirs_exist_ok=True)
        written.append(target)
    return written


def cmd_report_allure(args: argparse.Namespace) -> int:
    """One self-contained Allure 3 page from a results folder, with npx allure (Node.js, no Java)."""
    import tempfile

    results = Path(args.results)
    if not results.is_dir() or not any(results.glob("*-result.json")):
        return _fail(f"{results} holds no Allure results; pass <report-dir>/allure-results of a run")
    npx = shutil.which("npx")
    if npx is None:
        return _fail(
            "rendering needs Node.js with npx (Allure 3 is an npm package): install Node.js 20 or newer "
            "(apt-get install nodejs npm), then run this again"
        )
    output = Path(args.output) if args.output else results.parent / "allure-report"
    with tempfile.TemporaryDirectory() as work:
        config = Path(work) / "allurerc.mjs"
        config.write_text(ALLURE_CONFIG % json.dumps(str((results.parent / ALLURE3_HISTORY).resolve())))
        status = subprocess.call(
            [
                npx,
                "--yes",
                "allure@3",
                "generate",
                str(results.resolve()),
                "--config",
                str(config),
                "-o",
                str(output.resolve()),
            ],
            cwd=work,
        )
    if status == 0:
        print(f"allure report: {output / 'index.html'}")
    return status


def cmd_diff(args: argparse.Namespace) -> int:
    from harness.reporting.diff import describe, diff, load

    try:
        old, new = load(Path(args.old)), load(Path(args.new))
    except ValueError as err:
        return _fail(str(err))
    changes = diff(old, new)
    for change in changes:
        print(describe(change))
    regressions = [c for c in changes if c.regression]
    print(f"{len(changes)} change(s), {len(regressions)} regression(s): {old['run']['id']} -> {new['run']['id']}")
    return 1 if regressions else 0


def cmd_matrix(args: argparse.Namespace) -> int:
    """Many runs on one page: scenarios x runs (per tenant profile, or over time), and counts over time."""
    from harness.reporting.matrix import MatrixError, write

    try:
        paths = write(args.reports, Path(args.output))
    except MatrixError as err:
        return _fail(str(err))
    print(f"matrix: {paths['html']} and {paths['md']}")
    return 0


def _add_calling(extra: list[str], driver: str | None, mode: str) -> str | None:
    """Pass --calling on to pytest; or why the browser driver cannot run here, in one line (replay
    needs no browser: it answers from the recordings)."""
    if not driver:
        return None
    if driver == "browser" and mode != "replay":
        from harness.client.calling.browser import BrowserUnavailable, check_available

        try:
            check_available()
        except BrowserUnavailable as missing:
            return f"--calling browser cannot run here: {missing}"
    extra.append(f"--cte-calling={driver}")
    return None


def cmd_record(args: argparse.Namespace) -> int:
    """Record into a new folder (default reports/<run-id>/cassettes); writing over a folder that
    holds cassettes (the committed cassettes/, say) needs --overwrite."""
    extra = ["-k", args.k] if args.k else []
    if problem := _add_calling(extra, args.calling, "record"):
        return _fail(problem)
    run_id = new_run_id("record", args.profile)
    report_dir = Path(args.report_dir) if args.report_dir else Path("reports") / run_id
    cassette_dir = Path(args.cassette_dir) if args.cassette_dir else report_dir / "cassettes"
    if cassette_dir.is_dir() and any(cassette_dir.rglob("*.yaml")) and not args.overwrite:
        return _fail(
            f"{cassette_dir} already holds cassettes; pass --overwrite to re-record them there, or name a new "
            "folder with --cassette-dir"
        )
    status = run_suite(args.profile, "record", report_dir, extra, quiet=True, cassette_dir=cassette_dir, run_id=run_id)
    print(f"cassettes: {cassette_dir}")
    return status


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from harness.sandbox.server import serve_forever  # the CLI may start the sandbox

    if args.write_profile:
        target = Path(args.write_profile)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        except OSError as err:
            return _fail(f"cannot write the profile at {target}: {err.strerror}; pass --write-profile a writable path")
    try:
        serve_forever(
            args.port,
            deterministic=args.fixed_clock,
            tenant=args.tenant,
            write_profile=args.write_profile,
            token_lifetime_s=args.token_lifetime,
        )
    except OSError as err:
        return _fail(f"cannot serve on 127.0.0.1:{args.port}: {err.strerror}; pick another --port (0 = any free port)")
    return 0


def cmd_backend_check(args: argparse.Namespace) -> int:
    from harness.run.backend import CheckError, check

    try:
        return check(args, run_suite, new_run_id)
    except (CheckError, ProfileError) as err:
        return _fail(str(err))


def _lifetime(value: str) -> int:
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if not 5 <= seconds <= 86400:
        raise argparse.ArgumentTypeError(f"{value!r} is not a token lifetime; give whole seconds from 5 to 86400")
    return seconds


def cmd_receiver_serve(args: argparse.Namespace) -> int:
    """The webhook receiver on its own (TLS, or plain HTTP on loopback behind a tunnel): one JSON line."""
    from harness.client.notifications.standalone import ServeError, Settings, serve

    settings = Settings(
        port=args.port,
        audiences=args.audience or [],
        host=args.host,
        cert_file=args.cert,
        key_file=args.key,
        key_password_env=args.key_password_env,
        plain_http=args.plain_http,
        public_url=args.public_url,
        jwks_url=args.jwks_url,
        jwks_ca=args.jwks_ca,
        workers=args.workers,
    )
    try:
        serve(settings)
    except ServeError as err:
        return _fail(f"receiver serve: {err}")
    return 0


def cmd_sandbox_parity(args: argparse.Namespace) -> int:
    """A recording (a partner's live `cte record` output) against the sandbox's answers to the same
    scenarios: each divergence on a line; parity.json in the report folder; exit 1 on any."""
    from harness.run.parity import compare_folders, summary_lines

    recorded = Path(args.recording)
    if not recorded.is_dir() or not any(recorded.rglob("*.yaml")):
        return _fail(f"{recorded} holds no cassettes; pass the --cassette-dir of a `cte record` run")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report_dir = Path(args.report_dir) if args.report_dir else Path("reports") / f"{stamp}-parity"
    if args.sandbox_cassettes:
        ours = Path(args.sandbox_cassettes)
        if not ours.is_dir() or not any(ours.rglob("*.yaml")):
            return _fail(f"{ours} holds no cassettes; pass a `cte record --profile sandbox` folder, or leave it out")
    else:
        ours = report_dir / "sandbox-cassettes"
        shutil.rmtree(ours, ignore_errors=True)
        status = run_suite("sandbox", "record", report_dir / "sandbox-run", [], quiet=True, cassette_dir=ours)
        if not any(ours.rglob("*.yaml")):
            return _fail(f"the sandbox recording wrote no cassettes (pytest exit {status}); see its output above")
    report = compare_folders(recorded, ours)
    for line in summary_lines(report, limit=args.limit):
        print(line)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "parity.json").write_text(
        json.dumps(
            {
                "recording": str(recorded),
                "sandbox_recording": str(ours),
                "exchanges_compared": report.exchanges,
                "compared": report.compared,
                "not_compared": report.not_compared,
                "divergences": [dataclasses.asdict(d) for d in report.divergences],
            },
            indent=2,
        )
    )
    print(f"parity report: {report_dir / 'parity.json'}")
    return 0 if report.ok else 1


def _profile_secrets(name: str) -> list[str]:
    """The active profile's secrets: a live profile's from its environment variables; the sandbox's
    from its (deterministic) tenant model."""
    profile = load_profile(name)
    if profile.kind == "sandbox":
        from harness.sandbox.state import Directory, IdSource  # the CLI may use the sandbox

        directory = Directory.build(IdSource())
        tenant = directory.tenants[profile.sandbox_tenant]
        app_secrets = [a.client_secret or "" for a in tenant.apps.values()]
        return [u.password for u in tenant.users.values()] + [directory.acs.access_key, *app_secrets]
    tenant = profile.for_live()
    credential = tenant.acs_credential
    credential_secrets = [credential.client_secret, credential.certificate_password] if credential else []
    return [str(u.password) for u in tenant.users.values()] + [
        str(s) for s in (tenant.acs_access_key, *credential_secrets) if s and str(s)
    ]


def cmd_cassettes_audit(args: argparse.Namespace) -> int:
    from harness.run.audit import scan

    paths = [Path(p) for p in (args.paths or ["cassettes"])]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        return _fail(f"nothing to audit at {', '.join(missing)}; pass existing files or folders")
    try:
        secrets = _profile_secrets(args.profile) if args.profile else []
    except ProfileError as err:
        return _fail(str(err))
    findings = scan(paths, secrets)
    for finding in findings:
        print(finding)
    print(f"{len(findings)} finding(s) in {', '.join(str(p) for p in paths)}")
    return 1 if findings else 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="cte", description="Conformance and policy harness for Teams users on ACS.")
    top.add_argument("--version", action="version", version=f"cte-conformance {__version__}")
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the conformance suite and write reports")
    run.add_argument("--profile", default=os.environ.get("CTE_PROFILE", "sandbox"), help="profile name or path")
    run.add_argument(
        "--mode",
        default=os.environ.get("CTE_MODE", "sandbox"),
        choices=MODES,
        help="sandbox (the embedded tenant, default) | replay (from cassettes, offline) | live (the profile's "
        "tenant); or CTE_MODE",
    )
    run.add_argument("--report-dir", default=None, help="default: reports/<run-id>")
    run.add_argument("-k", default=None, help="only scenarios matching this pytest -k expression")
    run.add_argument(
        "--cassette-dir",
        default=os.environ.get("CTE_CASSETTE_DIR"),
        help="the cassettes --mode replay reads (default: cassettes/); or CTE_CASSETTE_DIR",
    )
    run.add_argument(
        "-n",
        dest="workers",
        default=None,
        metavar="N|auto",
        help="run scenarios in N processes (pytest-xdist); one merged report",
    )
    run.add_argument(
        "--calling",
        default=os.environ.get("CTE_CALLING"),
        choices=CALLING_DRIVERS,
        help="calling driver: sandbox (the sandbox's model; default for sandbox profiles) or browser (the real "
        "Calling SDK in Chromium; default for live profiles; offline against the sandbox, cross-checked with it)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="one character per scenario instead of one line")
    run.add_argument(
        "--alluredir",
        default=None,
        help="Allure results folder (default: <report-dir>/allure-results); share one with the plain "
        "tests to report both together",
    )
    run.add_argument("--rerun-failed", metavar="REPORT.json", help="run only what FAILed or ERRORed in that report")
    run.add_argument(
        "--allure-history-from",
        metavar="REPORT_DIR",
        default=None,
        help="carry an earlier run's Allure history (its rendered report's) into this run, for Allure's trend",
    )
    run.add_argument(
        "--bundle",
        action="store_true",
        help="also write one zip of the reports, the redacted profile and cassette digests",
    )
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    run.set_defaults(func=cmd_run)

    record = sub.add_parser(
        "record",
        help="record cassettes against the sandbox or a live profile (sandbox: byte-identical when unchanged)",
        description="Run the suite in record mode and write one cassette per scenario (the traffic, redacted), "
        "which `cte run --mode replay --cassette-dir DIR` replays offline. Against the sandbox the clock and ids "
        "are fixed, so re-recording an unchanged suite gives byte-identical files; a live profile records its tenant.",
    )
    record.add_argument("--profile", default="sandbox", help="profile name or path (a live one records its tenant)")
    record.add_argument(
        "--report-dir", default=None, help="where the run's reports go (default: reports/<run-id>, a new folder)"
    )
    record.add_argument(
        "--cassette-dir",
        default=os.environ.get("CTE_CASSETTE_DIR"),
        help="where the cassettes go (default: a new folder, <report-dir>/cassettes); or CTE_CASSETTE_DIR",
    )
    record.add_argument(
        "--overwrite", action="store_true", help="re-record into a folder that already holds cassettes (cassettes/)"
    )
    record.add_argument("-k", default=None, help="only scenarios matching this pytest -k expression")
    record.add_argument(
        "--calling",
        default=None,
        choices=CALLING_DRIVERS,
        help="browser: record what the real Calling SDK answers too (<cassette>.calling-sdk.yaml)",
    )
    record.set_defaults(func=cmd_record)

    check = sub.add_parser("doctor", help="preflight a profile: stops at the first blocking problem, with its remedy")
    check.add_argument("--profile", default=os.environ.get("CTE_PROFILE", "sandbox"), help="profile name or path")
    check.add_argument("--report-dir", default=None, help="where doctor.json goes (default: reports/doctor)")
    check.set_defaults(func=cmd_doctor)

    report = sub.add_parser("report", help="render reports")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    allure = report_sub.add_parser("allure", help="a single-file Allure 3 report (needs Node.js; no Java)")
    allure.add_argument("results", help="an allure-results folder")
    allure.add_argument("-o", "--output", default=None, help="default: beside the results, allure-report/")
    allure.set_defaults(func=cmd_report_allure)

    compare = sub.add_parser("diff", help="what changed between two runs; exit 1 on a regression")
    compare.add_argument("old", help="the earlier conformance.json")
    compare.add_argument("new", help="the later conformance.json")
    compare.set_defaults(func=cmd_diff)

    grid = sub.add_parser(
        "matrix",
        help="many runs on one page: scenarios x tenant profiles (or runs over time), and counts over time",
        description="Write matrix.html (self-contained) and matrix.md: every scenario's verdict in every run given, "
        "each linked to that run's conformance.html, and per profile the verdict counts over its runs.",
    )
    grid.add_argument(
        "reports", nargs="+", metavar="REPORT", help="a conformance.json, or the report folder holding one"
    )
    grid.add_argument("-o", "--output", default="reports/matrix", help="where to write (default: reports/matrix)")
    grid.set_defaults(func=cmd_matrix)

    cassettes = sub.add_parser("cassettes", help="recorded traffic")
    cassettes_sub = cassettes.add_subparsers(dest="cassettes_command", required=True)
    audit = cassettes_sub.add_parser("audit", help="scan cassettes and reports for secrets; exit 1 on any")
    audit.add_argument("paths", nargs="*", help="files or folders (default: cassettes)")
    audit.add_argument("--profile", default=None, help="also look for this profile's passwords and keys")
    audit.set_defaults(func=cmd_cassettes_audit)

    backend = sub.add_parser("backend", help="a partner's token service (the backend that exchanges tokens)")
    backend_sub = backend.add_subparsers(dest="backend_command", required=True)
    bcheck = backend_sub.add_parser(
        "check", help="hand the service real users' Entra tokens and judge what it answers and sends to ACS"
    )
    bcheck.add_argument("--url", default=None, help="the service's exchange endpoint (else [backend] url)")
    bcheck.add_argument("--profile", default="sandbox", help="profile name or path (default: sandbox)")
    bcheck.add_argument("--mode", default="sandbox", help="sandbox (default) | live | record | replay")
    bcheck.add_argument(
        "--start",
        metavar="COMMAND",
        default=None,
        help="start the service with this command (the tenant's settings in its environment); needed in sandbox mode",
    )
    bcheck.add_argument("--cassette-dir", default=None, help="record: where cassettes go; replay: where they are")
    bcheck.add_argument("--report-dir", default=None, help="where reports go (default: reports/<run-id>)")
    bcheck.add_argument("-k", default=None, help="only scenarios matching this pytest -k expression")
    bcheck.add_argument("-q", "--quiet", action="store_true", help="one character per scenario")
    bcheck.add_argument(
        "--token-lifetime",
        type=_lifetime,
        default=None,
        metavar="SECONDS",
        help="sandbox mode: how long the served tenant's Entra tokens live (default 12)",
    )
    bcheck.set_defaults(func=cmd_backend_check)
    sandbox = sub.add_parser("sandbox", help="the embedded sandbox tenant")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    serve = sandbox_sub.add_parser("serve", help="serve it; prints one JSON line with what a client needs")
    serve.add_argument("--port", type=int, default=0, help="loopback port (default: any free port)")
    serve.add_argument(
        "--tenant",
        "--profile",
        dest="tenant",
        default="contoso",
        help="which sandbox tenant's details to print (contoso or a misconfiguration name)",
    )
    serve.add_argument("--fixed-clock", action="store_true", help="deterministic clock and ids (as recordings use)")
    serve.add_argument(
        "--write-profile",
        metavar="PATH",
        default=None,
        help="write the live profile a partner would write for this tenant (+ one per misconfigured tenant and the "
        "CA bundle, beside it); the printed line's env holds the secrets to export",
    )
    serve.add_argument(
        "--token-lifetime",
        type=_lifetime,
        default=None,
        metavar="SECONDS",
        help="how long users' Entra access tokens live (a token lifetime policy; default 4500): short ones let a "
        "check see a token expire",
    )
    serve.set_defaults(func=cmd_sandbox_serve)
    parity = sandbox_sub.add_parser(
        "parity",
        help="compare a recording (a live `cte record` folder) with the sandbox's answers; exit 1 on a divergence",
    )
    parity.add_argument("recording", help="a cassette folder, e.g. the --cassette-dir of a live `cte record`")
    parity.add_argument("--report-dir", default=None, help="where parity.json goes (default: reports/<run-id>-parity)")
    parity.add_argument(
        "--sandbox-cassettes",
        metavar="DIR",
        default=None,
        help="compare with this recording of the sandbox instead of recording the suite against it now",
    )
    parity.add_argument("--limit", type=int, default=50, help="divergences printed (all are in parity.json)")
    parity.set_defaults(func=cmd_sandbox_parity)
    receiver = sub.add_parser("receiver", help="the webhook receiver, on its own for your app behind your tunnel")
    receiver_sub = receiver.add_subparsers(dest="receiver_command", required=True)
    rserve = receiver_sub.add_parser(
        "serve",
        help="serve it; prints one JSON line: notification, lifecycle, registration and push URLs, push token, "
        "encryption certificate",
    )
    rserve.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    rserve.add_argument("--host", default="127.0.0.1", help="address to listen on (plain HTTP: loopback only)")
    rserve.add_argument("--cert", default=None, metavar="PEM", help="TLS certificate chain (PEM)")
    rserve.add_argument("--key", default=None, metavar="PEM", help="TLS private key (PEM)")
    rserve.add_argument(
        "--key-password-env", default=None, metavar="VAR", help="environment variable holding the key's password"
    )
    rserve.add_argument(
        "--plain-http", action="store_true", help="plain HTTP on loopback, for a tunnel that terminates TLS"
    )
    rserve.add_argument(
        "--audience",
        action="append",
        metavar="APP_ID",
        help="your app's client id: the aud of Graph's validation tokens (repeat for several apps)",
    )
    rserve.add_argument("--public-url", default=None, help="the tunnel's https URL, for the printed URLs")
    rserve.add_argument(
        "--jwks-url",
        default="https://login.microsoftonline.com/common/discovery/v2.0/keys",
        help="where the validation tokens' signing keys are published (refetched on an unknown kid, rate-limited)",
    )
    rserve.add_argument("--jwks-ca", default=None, metavar="PEM", help="CA bundle for the JWKS URL (a proxy's)")
    rserve.add_argument("--workers", type=int, default=4, help="verification threads (default 4)")
    rserve.set_defaults(func=cmd_receiver_serve)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "tenant", None) and args.command == "sandbox":
        from harness.core.config import SANDBOX_TENANTS

        name = args.tenant
        if name == "sandbox":
            args.tenant = "contoso"
        elif name not in SANDBOX_TENANTS:
            return _fail(f"--tenant {name!r} is not a sandbox tenant; use one of {', '.join(SANDBOX_TENANTS)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
