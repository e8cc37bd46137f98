"""Profiles and cassettes are untrusted input (a partner's cassette most of all): whatever they hold,
loading them gives either a result or one clear line, and never runs anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.core.cassettes import check_cassette, explain_mismatch, make_vcr
from harness.core.config import ProfileError, load_profile, validate
from harness.sandbox.faults import plan_from_profile

ROOT = Path(__file__).resolve().parents[1]
LICENSED = "identity/token-exchange/a-licensed-teams-user-exchanges-an-entra-token-for-an-acs-token.yaml"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

toml_values = st.recursive(
    st.none().map(lambda _: "") | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
profile_keys = st.sampled_from(
    ["name", "kind", "sandbox_tenant", "tenant", "users", "secrets", "faults", "phone_numbers", "meetings", "x"]
)


@FUZZ
@given(data=st.dictionaries(profile_keys, toml_values, max_size=6), kind=st.sampled_from(["sandbox", "live", None]))
def test_any_profile_table_validates_or_fails_with_one_line(data, kind) -> None:
    if kind is not None:
        data = {**data, "kind": kind}
    try:
        validate(data, Path("harness/profiles/fuzzed.toml"))
    except ProfileError as err:
        assert "\n" not in str(err) and str(err).startswith("harness/profiles/fuzzed.toml")


@FUZZ
@given(table=toml_values | st.dictionaries(st.sampled_from(["seed", "entra", "graph", "x"]), toml_values, max_size=3))
def test_any_faults_table_builds_a_plan_or_fails_with_one_line(table) -> None:
    try:
        plan_from_profile(table, "harness/profiles/fuzzed.toml")
    except ValueError as err:
        assert "\n" not in str(err) and str(err).startswith("harness/profiles/fuzzed.toml")


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_profile_file_loads_or_fails_with_one_line(tmp_path_factory, raw) -> None:
    path = tmp_path_factory.mktemp("profiles") / "fuzzed.toml"
    path.write_bytes(raw)
    try:
        load_profile(str(path))
    except ProfileError as err:
        assert "\n" not in str(err) and str(path) in str(err)


scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
near_cassettes = st.fixed_dictionaries(
    {
        "interactions": st.lists(
            st.fixed_dictionaries(
                {
                    "request": st.fixed_dictionaries(
                        {
                            "method": st.sampled_from(["GET", "POST"]) | st.text(max_size=5),
                            "uri": st.just("https://graph.microsoft.com/v1.0/me") | st.text(max_size=30),
                            "headers": st.dictionaries(st.text(max_size=8), scalars | st.lists(scalars, max_size=2)),
                            "body": scalars | st.dictionaries(st.text(max_size=8), scalars, max_size=2),
                        }
                    ),
                    "response": st.fixed_dictionaries(
                        {
                            "status": st.fixed_dictionaries({"code": st.integers(100, 599), "message": scalars}),
                            "headers": st.dictionaries(st.text(max_size=8), scalars | st.lists(scalars, max_size=2)),
                            "body": st.dictionaries(st.sampled_from(["string", "x"]), scalars, max_size=2),
                        }
                    ),
                }
            ),
            max_size=3,
        ),
        "version": st.just(1),
    }
).map(lambda d: yaml.safe_dump(d).encode())

cassette_texts = st.one_of(
    near_cassettes,
    st.binary(max_size=400),
    st.text(max_size=400).map(str.encode),
    st.sampled_from(
        [
            b"interactions: 1\nversion: 1\n",
            b"interactions:\n- {}\nversion: 1\n",
            b"interactions:\n- request: {}\n  response: {}\nversion: 1\n",
            b"[" * 2000,
            b"version: 99\n",
            b"!!python/object/apply:os.system ['true']\n",
            b"&a [*a]\n",
        ]
    ),
)


@FUZZ
@given(raw=cassette_texts)
def test_any_cassette_replays_or_fails_with_one_line(tmp_path_factory, raw) -> None:
    cassette = tmp_path_factory.mktemp("cassettes") / "fuzzed.yaml"
    cassette.write_bytes(raw)
    recorder, _ = make_vcr(dict, record=False)
    try:
        check_cassette(cassette)  # what the plugin does before replaying from a cassette
        with recorder.use_cassette(str(cassette)), httpx.Client() as client:
            client.get("https://graph.microsoft.com/v1.0/me")
    except Exception as err:  # noqa: BLE001 - the property is about every failure
        line = explain_mismatch(err, cassette, "test_fuzzed")
        assert line is not None, f"{type(err).__name__}: {err}"
        assert "\n" not in line and "fuzzed.yaml" in line
    else:
        assert b"https://graph.microsoft.com/v1.0/me" in raw, "a fuzzed cassette answered a request it never recorded"


def test_a_cassette_that_would_run_code_is_refused_not_run(tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    (cassettes / LICENSED).parent.mkdir(parents=True)
    planted = tmp_path / "pwned"
    (cassettes / LICENSED).write_text(
        f'interactions:\n- request: !!python/object/apply:os.system ["touch {planted}"]\n'
        "  response: {}\nversion: 1\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "harness.run.cli", "run", "--mode", "replay", "-q", "-k", "licensed"]
        + ["--report-dir", str(tmp_path / "report")],
        cwd=ROOT,
        env={**os.environ, "CTE_CASSETTE_DIR": str(cassettes)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert not planted.exists(), "the cassette ran code"
    line = next(line for line in result.stdout.splitlines() if line.startswith("replay: cassette"))
    assert LICENSED in line
    assert "not valid or not safe YAML" in line and "python/object/apply" in line and "cte record -k" in line
