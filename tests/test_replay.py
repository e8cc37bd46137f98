"""Replay mode: answered from cassettes, network blocked, and a clear line when a cassette lacks a request."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.wire import transport

ROOT = Path(__file__).resolve().parent.parent
LICENSED = "cassettes/identity/token-exchange/a-licensed-teams-user-exchanges-an-entra-token-for-an-acs-token.yaml"


def replay(cassettes: Path, tmp_path: Path, k: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTE_CASSETTE_DIR": str(cassettes)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.run.cli",
            "run",
            "--mode",
            "replay",
            "-q",
            "-k",
            k,
            "--report-dir",
            str(tmp_path / "reports"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def cassettes(tmp_path: Path) -> Path:
    copy = tmp_path / "cassettes"
    shutil.copytree(ROOT / "cassettes", copy)
    return copy


def test_a_missing_cassette_names_the_request_the_cassette_and_the_command(cassettes: Path, tmp_path: Path) -> None:
    (cassettes.parent / LICENSED).unlink()
    result = replay(cassettes, tmp_path, "licensed")
    assert result.returncode != 0
    line = next(line for line in result.stdout.splitlines() if "is not in cassette" in line)
    assert "GET https://login.microsoftonline.com/" in line
    assert LICENSED in line and "does not exist" in line
    assert "cte record -k test_a_licensed_teams_user_exchanges_an_entra_token_for_an_acs_token" in line


def test_a_changed_request_is_a_mismatch_not_a_network_call(cassettes: Path, tmp_path: Path) -> None:
    path = cassettes.parent / LICENSED
    path.write_text(path.read_text().replace("api-version=2023-10-01", "api-version=2022-10-01"))
    result = replay(cassettes, tmp_path, "licensed")
    assert result.returncode != 0
    line = next(line for line in result.stdout.splitlines() if "is not in cassette" in line)
    assert "POST https://acs-resource.communication.azure.com/teamsUser/:exchangeAccessToken" in line
    assert "holds no matching interaction" in line


def test_replay_of_the_committed_cassettes_passes(tmp_path: Path) -> None:
    result = replay(ROOT / "cassettes", tmp_path, "licensed or garbage")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "2 PASS" in result.stdout


def test_block_network_refuses_every_connection() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        with transport.block_network("test"), pytest.raises(transport.NetworkBlocked):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # unblocked again afterwards
    finally:
        listener.close()


def test_route_hosts_resolves_canonical_names_to_the_given_port() -> None:
    with transport.route_hosts({"*.communication.azure.com": ("127.0.0.1", 4321)}):
        infos = socket.getaddrinfo("cte-sandbox.communication.azure.com", 443, type=socket.SOCK_STREAM)
    assert {info[4] for info in infos} == {("127.0.0.1", 4321)}
