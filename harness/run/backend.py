"""`cte backend check`: a partner's token service under test.

    cte backend check --url URL [--profile P] [--mode sandbox|live|record|replay] [--start CMD]

- sandbox (default): the sandbox is served in its own process as a tenant known only by the profile it
  writes, with short-lived tokens (so that a scenario can see one expire), and the token service is
  started by `--start CMD` with the tenant's settings in its environment (ACS_CONNECTION_STRING,
  ENTRA_AUTHORITY_HOST, ENTRA_TENANT_ID, ENTRA_CLIENT_ID, CA_BUNDLE, PORT): the service is the only
  thing between the harness's users and the tenant's ACS, and the tenant's exchange log says what it
  sent there. The suite runs against that tenant as against a live one.
- live: a live profile's tenant; the service already runs (or `--start` starts it, with the same
  variables taken from the profile). No exchange log: what reached ACS is judged by what came back.
- record: as sandbox (or live, with a live profile), every request written to `--cassette-dir`, with the
  served tenant's profile beside the cassettes; replay: from those cassettes, no service, no network.

The scenarios are harness/features/backend/ (bound by harness/steps/backend_suite.py); reports as `cte run`.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.config import ProfileError, Tenant, load_profile, resolve_mode
from harness.core.places import STEPS_DIR
from harness.core.token_service import BackendProfileError, spec_from
from harness.wire import tokens

SUITE = STEPS_DIR / "backend_suite.py"
SANDBOX_TOKEN_LIFETIME_S = 12  # the served sandbox's Entra tokens: one scenario waits for one to expire
START_TIMEOUT_S = 30.0
SERVED_PROFILE = "sandbox-served"


class CheckError(Exception):
    """Why the check cannot start: one line naming what is wrong and how to fix it."""


def _port_of(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "localhost", parts.port or (443 if parts.scheme == "https" else 80)


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _stop(process: subprocess.Popen[Any], grace_s: float) -> None:
    """Ask a process to stop; kill it if it is still there after `grace_s`."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()


@contextlib.contextmanager
def served_sandbox(folder: Path, token_lifetime_s: int) -> Iterator[dict[str, Any]]:
    """`cte sandbox serve --write-profile` in its own process; yields what it printed (profile, env)."""
    command = [
        sys.executable,
        "-m",
        "harness.run.cli",
        "sandbox",
        "serve",
        "--write-profile",
        str(folder / f"{SERVED_PROFILE}.toml"),
        "--token-lifetime",
        str(token_lifetime_s),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            error = process.stderr.read() if process.stderr else ""
            raise CheckError(f"the sandbox did not start: {error.strip().splitlines()[-1:] or 'no output'}")
        yield json.loads(line)
    finally:
        _stop(process, 10)


def service_environment(tenant: Tenant, url: str) -> dict[str, str]:
    """What a token service started by `--start` is told about the tenant (secrets in the environment only)."""
    env = {
        "ACS_CONNECTION_STRING": str(tenant.acs_connection_string),
        "ACS_ENDPOINT": tenant.acs_endpoint,
        "ENTRA_AUTHORITY_HOST": tenant.authority.rsplit("/", 1)[0],
        "ENTRA_TENANT_ID": tenant.tenant_id,
        "ENTRA_CLIENT_ID": tenant.client_id,
        "PORT": str(_port_of(url)[1]),
    }
    if tenant.ca_bundle:
        env["CA_BUNDLE"] = str(tenant.ca_bundle)
    return env


@dataclass
class ServiceOutput:
    """What the started service wrote to stdout and stderr, counted; its text is never kept beyond the last
    lines, with tokens masked."""

    tokens_logged: int = 0
    lines_with_tokens: int = 0

    def finding(self) -> str | None:
        """One line for a service that wrote tokens to its output (a log is a file on someone's disk)."""
        if not self.tokens_logged:
            return None
        return (
            f"the token service wrote {self.tokens_logged} token(s) to its output, on {self.lines_with_tokens} "
            "line(s) (masked here, never kept): a logged token is a bearer credential in every log store it "
            "reaches; log the user's oid, the token's exp or a hash, never the token"
        )


@contextlib.contextmanager
def started_service(command: str, url: str, env: dict[str, str], output: ServiceOutput) -> Iterator[None]:
    """The partner's command, started with `env` added; ready when the URL's port accepts connections.
    Its output is kept in memory only (a service that logs tokens must not put them on this disk): the
    last lines, tokens masked, name why it did not start, and `output` counts the tokens it wrote."""
    host, port = _port_of(url)
    if _listening(host, port):
        raise CheckError(
            f"something already listens on {host}:{port}; stop it, or drop --start to check the service running there"
        )
    process = subprocess.Popen(
        shlex.split(command),
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    tail: collections.deque[str] = collections.deque(maxlen=5)
    assert process.stdout is not None
    lines = process.stdout

    def read() -> None:
        for line in lines:
            masked, found = tokens.JWT_PATTERN.subn("<token>", line.rstrip())
            output.tokens_logged += found
            output.lines_with_tokens += bool(found)
            tail.append(masked)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _listening(host, port):
            if process.poll() is not None or time.monotonic() > deadline:
                reader.join(timeout=1)
                last = next((line for line in reversed(tail) if line.strip()), "no output")
                why = f"exited with {process.returncode}" if process.returncode is not None else "is not listening"
                raise CheckError(f"--start {command!r} {why} on {host}:{port} (last output: {last})")
            time.sleep(0.1)
        yield
    finally:
        _stop(process, 5)
        reader.join(timeout=2)  # the last lines, counted


def check(args: Any, run_suite: Any, new_run_id: Any) -> int:
    """The command: its set-up, then the backend scenarios through `run_suite` (harness.run.cli)."""
    mode = resolve_mode(args.mode)
    profile = load_profile(args.profile)
    where = str(profile.path) if profile.path else profile.name
    try:
        url = spec_from(profile.data.get("backend"), where, url=args.url).url
    except BackendProfileError as err:
        raise CheckError(str(err)) from None
    run_id = new_run_id(mode, profile.name) + "-backend"
    report_dir = Path(args.report_dir) if args.report_dir else Path("reports") / run_id
    cassette_dir = Path(args.cassette_dir) if args.cassette_dir else None
    if mode in ("record", "replay") and cassette_dir is None:
        raise CheckError(f"--mode {mode} needs --cassette-dir: the folder the check's cassettes go to or come from")
    extra = [f"--cte-backend-url={url}", *(["-k", args.k] if args.k else [])]
    serve_sandbox = profile.kind == "sandbox" and mode in ("sandbox", "record")

    def suite(chosen: str, suite_mode: str) -> int:
        return int(
            run_suite(
                chosen,
                suite_mode,
                report_dir,
                extra,
                quiet=args.quiet,
                targets=[str(SUITE)],
                cassette_dir=cassette_dir,
                run_id=run_id,
            )
        )

    if mode == "replay":
        if args.start:
            raise CheckError("--mode replay answers from cassettes: it starts no token service (drop --start)")
        assert cassette_dir is not None
        recorded = cassette_dir / f"{SERVED_PROFILE}.toml"
        chosen = str(recorded) if profile.kind == "sandbox" and recorded.is_file() else args.profile
        return suite(chosen, mode)
    if serve_sandbox and not args.start:
        raise CheckError(
            "the sandbox is served for this check only, so the check starts your token service too: pass --start "
            "'COMMAND' (it gets ACS_CONNECTION_STRING, ENTRA_AUTHORITY_HOST, ENTRA_CLIENT_ID, CA_BUNDLE and PORT), "
            "or serve the sandbox yourself (cte sandbox serve --write-profile) and check with --mode live"
        )
    output = ServiceOutput()
    with contextlib.ExitStack() as stack:
        chosen, suite_mode = args.profile, mode
        if serve_sandbox:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cte-backend-")))
            served = stack.enter_context(served_sandbox(folder, args.token_lifetime or SANDBOX_TOKEN_LIFETIME_S))
            os.environ.update(served["env"])  # the served tenant's secrets: this process and the suite's only
            chosen, suite_mode = served["profile"], ("record" if mode == "record" else "live")
            if cassette_dir is not None:  # replay reads the recording with the profile it was made with
                cassette_dir.mkdir(parents=True, exist_ok=True)
                for written in (Path(served["profile"]), Path(served["ca_bundle"])):
                    shutil.copy(written, cassette_dir / written.name)
        if args.start:
            try:
                tenant = load_profile(chosen).for_live()
            except ProfileError as err:
                raise CheckError(str(err)) from None
            stack.enter_context(started_service(args.start, url, service_environment(tenant, url), output))
        outcome = suite(chosen, suite_mode)
    finding = output.finding()
    if finding is None:
        return outcome
    print(f"FAIL  {finding}", file=sys.stderr)
    return outcome or 1
