"""Random fault injection (the `flaky` profile): the plan itself, and each client against each fault
it is documented to cope with, over real HTTPS: MSAL, azure-communication-identity, the Graph client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.client.auth import EntraSignIn
from harness.client.graph import GRAPH_SCOPES, GraphClient, MarkerSource
from harness.client.identity import AcsIdentity
from harness.conformance.flows.identity import exchange_observation, sign_in_observation
from harness.core.config import load_profile
from harness.sandbox.faults import FREE_PASSES, FaultPlan, WorkloadFaults, plan_from_profile, workload_of
from harness.sandbox.server import Sandbox
from harness.wire import transport

ROOT = Path(__file__).resolve().parents[1]


# -- the plan ------------------------------------------------------------------------------------


def test_workloads_are_told_apart_by_path() -> None:
    assert workload_of("POST", "/contoso-id/oauth2/v2.0/token") == "entra"
    assert workload_of("GET", "/contoso-id/v2.0/.well-known/openid-configuration") is None
    assert workload_of("POST", "/teamsUser/:exchangeAccessToken") == "acs"
    assert workload_of("POST", "/identities") == "acs"
    assert workload_of("GET", "/v1.0/me/chats") == "graph"
    assert workload_of("POST", "/v1/agents") == "calling"


def decisions(plan: FaultPlan, n: int) -> list[str]:
    out = []
    for i in range(n):
        _, decision = plan.decide("GET", f"/v1.0/chats/{i}")
        out.append(decision.kind if decision else "-")
    return out


def test_the_same_seed_gives_the_same_faults_and_the_rates_are_roughly_kept() -> None:
    rates = {"graph": WorkloadFaults(throttle=0.1, server_error=0.1, drop=0.1)}
    first, second = decisions(FaultPlan(rates, seed=7), 2000), decisions(FaultPlan(rates, seed=7), 2000)
    assert first == second
    assert first != decisions(FaultPlan(rates, seed=8), 2000)
    for kind in ("throttle", "server_error", "drop"):
        assert 140 < first.count(kind) < 260, (kind, first.count(kind))


def test_after_a_fault_the_next_requests_on_that_path_go_through() -> None:
    plan = FaultPlan({"graph": WorkloadFaults(server_error=1.0)}, seed=1)
    kinds = [plan.decide("POST", "/v1.0/chats")[1] for _ in range(2 * (FREE_PASSES + 1))]
    assert [k is not None for k in kinds] == 2 * ([True] + [False] * FREE_PASSES)
    assert plan.summary() == {"graph": {"requests": 2 * (FREE_PASSES + 1), "server_error": 2}}
    assert plan.decide("POST", "/v1.0/other")[1] is not None, "a free pass is per method and path"


@pytest.mark.parametrize(
    ("table", "names"),
    [
        ({"seed": "x"}, "[faults].seed"),
        ({"teams": {}}, "[faults.teams] is not a workload"),
        ({"graph": {"throttle": 2}}, "[faults.graph].throttle = 2 is not a rate"),
        ({"graph": {"throttle": 0.6, "drop": 0.6}}, "add up to more than 1"),
        ({"graph": {"statuses": [418]}}, "[faults.graph].statuses"),
        ({"graph": {"latency_ms": [50, 10]}}, "[faults.graph].latency_ms"),
        ({"graph": {"retry_after": 1.5}}, "[faults.graph].retry_after"),
        ({"graph": {"thrtotle": 0.1}}, "[faults.graph].thrtotle is not a fault setting"),
        (1, "faults is not a table"),
        ({"graph": {"statuses": [[500]]}}, "[faults.graph].statuses"),
        ({"graph": {"statuses": [500.0]}}, "[faults.graph].statuses"),
        ({"graph": {"latency_ms": ["a", "b"]}}, "[faults.graph].latency_ms"),
        ({"graph": {"throttle": True}}, "[faults.graph].throttle = True is not a rate"),
        ({"seed": True}, "[faults].seed"),
    ],
)
def test_a_bad_faults_table_is_one_line_naming_the_key(table, names) -> None:
    with pytest.raises(ValueError) as err:
        plan_from_profile(table, "harness/profiles/bad.toml")
    message = str(err.value)
    assert names in message and "harness/profiles/bad.toml" in message and "\n" not in message


def test_the_flaky_profile_loads_and_builds_a_plan() -> None:
    profile = load_profile("flaky")
    plan = plan_from_profile(dict(profile.data["faults"]), "flaky")
    assert set(plan.workloads) == {"entra", "acs", "graph", "calling"}
    assert plan.workloads["graph"].drop > 0 and plan.workloads["graph"].after_processing > 0


def test_a_record_run_refuses_a_profile_that_injects_faults(tmp_path) -> None:
    profile = tmp_path / "faulty.toml"
    profile.write_text('kind = "sandbox"\n[faults.graph]\nthrottle = 0.1\n', encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "harness.run.cli", "record", "--profile", str(profile), "-k", "nothing_matches"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "injects faults; record with a profile without [faults]" in run.stdout + run.stderr


# -- each client against its faults, over HTTPS ------------------------------------------------------


@pytest.fixture()
def sandbox_with():
    """A sandbox whose plan the test sets; yields (sandbox, tenant, set_plan)."""
    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        tenant = load_profile("sandbox").for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")

        def set_plan(workload: str, **rates) -> FaultPlan:
            plan = FaultPlan({workload: WorkloadFaults(retry_after=0, **rates)}, seed=3)
            sandbox.ctx.faults.plan = plan
            return plan

        yield sandbox, tenant, set_plan


@pytest.mark.integration
@pytest.mark.parametrize(
    ("rates", "why"),
    [
        ({"throttle": 1.0}, "HTTP 429"),
        ({"server_error": 1.0, "statuses": (503,)}, "HTTP Error: 503"),
        ({"drop": 1.0}, "connection dropped"),
    ],
)
def test_msal_sign_in_survives_each_entra_fault_with_one_retry(sandbox_with, rates, why) -> None:
    _, tenant, set_plan = sandbox_with
    plan = set_plan("entra", **rates)
    sign_in = EntraSignIn(tenant)
    signed = sign_in.with_password("adele", GRAPH_SCOPES)
    assert signed.ok, signed
    assert len(sign_in.retries) == 1 and why in sign_in.retries[0], sign_in.retries
    assert sign_in_observation(signed).evidence["retries"] == sign_in.retries, "retries reach the report"
    assert plan.summary()["entra"]["requests"] == 2


@pytest.mark.integration
def test_a_wrong_password_is_not_retried_as_if_transient(sandbox_with) -> None:
    _, tenant, set_plan = sandbox_with
    set_plan("entra", latency_ms=(0, 1))
    sign_in = EntraSignIn(tenant)
    assert not sign_in.with_password("adele", GRAPH_SCOPES, wrong_password=True).ok
    assert sign_in.retries == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("rates", "harness_retries"),
    [
        ({"throttle": 1.0}, 0),  # azure-core retries whatever carries Retry-After
        ({"throttle": 1.0, "send_retry_after": False}, 1),  # but leaves a POST's bare 429 to the caller
        ({"server_error": 1.0, "statuses": (503,), "send_retry_after": False}, 0),  # and retries a POST's 503
    ],
)
def test_the_acs_exchange_survives_its_faults_without_double_retrying(sandbox_with, rates, harness_retries) -> None:
    _, tenant, set_plan = sandbox_with
    entra = EntraSignIn(tenant).with_password("adele")
    plan = set_plan("acs", **rates)
    acs = AcsIdentity(tenant)
    exchanged = acs.exchange(str(entra.access_token), tenant.client_id, str(entra.oid))
    assert exchanged.ok, exchanged
    assert len(acs.retries) == harness_retries, acs.retries
    assert exchange_observation(exchanged).evidence.get("retries", []) == acs.retries
    assert plan.summary()["acs"]["requests"] == 2, "one fault, one retry: by the harness or by azure-core"


@pytest.mark.integration
def test_a_send_cut_off_after_graph_stored_it_is_found_by_its_marker_not_sent_again(sandbox_with) -> None:
    sandbox, tenant, set_plan = sandbox_with
    graph = GraphClient(
        tenant,
        str(EntraSignIn(tenant).with_password("adele", GRAPH_SCOPES).access_token),
        sleep=lambda _: None,
        markers=MarkerSource("adele"),
    )
    oids = sandbox.tenant_info("contoso").oids()
    chat = graph.create_chat("group", [oids["adele"], oids["megan"]], "faults").body["id"]
    set_plan("graph", drop=1.0, after_processing=1.0)
    sent = graph.send(f"chats/{chat}/messages", "exactly once despite the drop")
    graph.close()
    assert sent.result.ok and sent.recovered_by_listing, sent
    assert len(sandbox.ctx.directory.tenants["contoso"].chats[chat].messages) == 1
    assert sandbox.health()["messages_sent_twice"] == 0


# -- the whole suite -----------------------------------------------------------------------------------


def run_suite(profile: str, report_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CTE_MODE": "sandbox"}
    with log.open("wb") as out:  # a file, not a pipe: two runs side by side never stall on a full pipe
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.run.cli",
                "run",
                "-q",
                "--profile",
                profile,
                "--report-dir",
                str(report_dir),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.integration
def test_the_flaky_profile_gives_the_clean_runs_verdicts_with_bounded_retries(tmp_path) -> None:
    runs = {name: run_suite(name, tmp_path / name, tmp_path / f"{name}.log") for name in ("sandbox", "flaky")}
    try:
        for process in runs.values():
            process.wait(timeout=600)
    finally:
        for process in runs.values():
            process.kill()
    reports = {}
    for name in runs:
        log = (tmp_path / f"{name}.log").read_text(encoding="utf-8", errors="replace")
        assert (tmp_path / name / "conformance.json").is_file(), log[-3000:]
        reports[name] = json.loads((tmp_path / name / "conformance.json").read_text(encoding="utf-8"))
    clean, flaky = reports["sandbox"], reports["flaky"]
    verdicts = {name: {s["id"]: s["verdict"] for s in r["scenarios"]} for name, r in reports.items()}
    assert verdicts["flaky"] == verdicts["sandbox"]
    assert set(verdicts["flaky"].values()) <= {"PASS", "WARN"}
    health = flaky["run"]["sandbox"]
    injected = {
        w: sum(n for k, n in health["faults"].get(w, {}).items() if k != "requests")
        for w in ("entra", "acs", "graph", "calling")
    }
    # The run was not lucky: every workload with fault rates had faults, Graph had every kind.
    assert all(injected[w] > 0 for w in ("entra", "acs", "graph")), health["faults"]
    assert all(health["faults"]["graph"].get(k, 0) > 0 for k in ("throttle", "server_error", "drop"))
    assert health["messages_sent_twice"] == 0 == clean["run"]["sandbox"]["messages_sent_twice"]
    # No retry storm: each fault costs at most two extra requests (a send cut off is listed, then resent).
    for workload in ("entra", "acs", "graph"):
        extra = health["requests"][workload] - clean["run"]["sandbox"]["requests"][workload]
        assert 0 <= extra <= 2 * injected[workload], (workload, extra, injected[workload])
