"""A run asks Entra ID for a user's token once per resource (issue 17): counted where Entra answers.

The suite runs in sandbox mode in a process of its own, with the sandbox's token endpoint wrapped to
note every request it is sent (its tenant, client id, user, resource and whether a token came back):
a count the harness under test cannot bend. The goal it must meet: token requests <= users x
resources + the requests the scenarios are about (a sign-in that is the scenario's subject: a wrong
password, MFA required, consent missing, ...). Before the run kept a token cache, the suite sent 91.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.client import auth
from harness.client.auth import SignIns, resource_of
from harness.client.graph import GRAPH_SCOPES
from harness.core.places import SUITE_PYTEST_ARGS
from harness.wire import contract

ROOT = Path(__file__).resolve().parent.parent

# A pytest plugin for the suite's process (and each xdist worker's): Entra's token endpoint notes what it is sent.
COUNTING_PLUGIN = """
import json, os
from harness.sandbox import entra
from harness.sandbox.http import form_fields

seen = []
issued = {}  # refresh token -> the user it was issued to (the sandbox forgets its own at each scenario)
original = entra.Entra.token


async def token(self, request):
    fields = await form_fields(request)
    grant = fields.get("grant_type", "")
    # Whose request it is: the user named (password), the user a refresh token or a code was issued to, or
    # the app itself (client credentials), as the report names it: "app".
    holder = issued.get(fields.get("refresh_token", "")) or self.authorization_codes.get(
        fields.get("code", ""), {}
    ).get("user")
    entry = {
        "tenant": request.path_params["tenant"],
        "client_id": fields.get("client_id", ""),
        "grant": grant,
        "user": fields.get("username", "").partition("@")[0]
        or holder
        or ("app" if grant == "client_credentials" else grant),
        "scopes": [s for s in fields.get("scope", "").split() if s not in ("openid", "profile", "offline_access")],
        "ok": False,
    }
    seen.append(entry)
    response = await original(self, request)
    entry["ok"] = response.status_code == 200
    if entry["ok"] and (refresh := json.loads(response.body).get("refresh_token")):
        issued[refresh] = entry["user"]
    return response


entra.Entra.token = token


def pytest_unconfigure(config):
    with open(os.path.join(os.environ["CTE_TOKEN_COUNTS"], f"{os.getpid()}.json"), "w") as out:
        json.dump(seen, out)
"""


def counted_run(folder: Path, *options: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The sandbox's record of the token requests one run of the suite sent, and the run's report."""
    (folder / "plugin").mkdir()
    (folder / "plugin" / "cte_count_tokens.py").write_text(COUNTING_PLUGIN)
    (folder / "counts").mkdir()
    env = {**os.environ, "CTE_TOKEN_COUNTS": str(folder / "counts")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder / "plugin"), env.get("PYTHONPATH")]))
    env = {k: v for k, v in env.items() if not k.startswith("CTE_") or k == "CTE_TOKEN_COUNTS"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *SUITE_PYTEST_ARGS, "-p", "cte_count_tokens", "-p", "no:cacheprovider"]
        + ["--cte-mode=sandbox", f"--cte-report-dir={folder / 'report'}", "-q", *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    seen = [entry for path in (folder / "counts").glob("*.json") for entry in json.loads(path.read_text())]
    return seen, json.loads((folder / "report" / "conformance.json").read_text())


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return counted_run(tmp_path_factory.mktemp("serial"))


SIGN_IN_STAGES = ("sign-in", "authorize request", "code redemption")


def renewals_in(document: dict[str, Any]) -> int:
    """Scenarios that renewed a token after it expired (a chat's Graph token, a call's ACS token)."""
    return sum(
        1 for s in document["scenarios"] if any("signed in again" in r for r in s["evidence"].get("retries", []))
    )


def about_sign_in(document: dict[str, Any]) -> int:
    """Scenarios whose subject is a sign-in (the password grant, a browser's authorization code) or a token
    renewed after it expired: the answer they judge is Entra's, never one from the run's cache."""
    return renewals_in(document) + sum(
        1 for s in document["scenarios"] if (s["observed"] or {}).get("stage") in SIGN_IN_STAGES
    )


def test_a_run_asks_entra_for_each_users_token_once_per_resource(serial_run) -> None:  # type: ignore[no-untyped-def]
    seen, document = serial_run
    users = {entry["user"] for entry in seen}
    resources = {resource_of(entry["scopes"]) for entry in seen}
    subjects = about_sign_in(document)
    assert subjects >= 7, "the wrong password, MFA, undefined scope and four misconfigured apps are judged on sign-in"
    by_user = collections.Counter(entry["user"] for entry in seen)
    assert len(seen) <= len(users) * len(resources) + subjects, f"{len(seen)} token requests: {dict(by_user)}"
    # Each app, user and resource: one token asked for (and given) in the run, whatever else failed.
    # (A browser's code and a renewal's refresh token are each their scenario's subject: not from the cache.)
    given = collections.Counter(
        (e["tenant"], e["client_id"], e["user"], resource_of(e["scopes"]), tuple(sorted(e["scopes"])))
        for e in seen
        if e["ok"] and e["grant"] not in ("authorization_code", "refresh_token")
    )
    assert max(given.values()) == 1, [key for key, n in given.items() if n > 1]
    # A token renewed after it expired is redeemed with MSAL's refresh token, as on a live tenant: the
    # sandbox's sessions outlive each scenario's fresh world.
    refreshed = sum(1 for e in seen if e["ok"] and e["grant"] == "refresh_token")
    assert refreshed >= renewals_in(document) >= 2, (refreshed, renewals_in(document))
    assert document["summary"]["PASS"] == 82 and document["summary"]["WARN"] == 1


def test_the_report_counts_the_requests_entra_was_sent_by_user_and_resource(serial_run) -> None:  # type: ignore[no-untyped-def]
    seen, document = serial_run
    counted = collections.Counter((entry["user"], resource_of(entry["scopes"])) for entry in seen)
    reported = document["run"]["token_requests"]
    assert {(user, resource): n for user, by in reported.items() for resource, n in by.items()} == counted
    assert not any("@" in user for user in reported), "users are named by their alias, never their UPN"
    assert document["run"]["sandbox"]["requests"]["entra"] == len(seen), "the sandbox's own count agrees"


def test_with_workers_each_process_keeps_its_own_cache(tmp_path: Path) -> None:
    seen, document = counted_run(tmp_path, "-n", "2")
    given = collections.Counter(
        (e["tenant"], e["client_id"], e["user"], tuple(sorted(e["scopes"])))
        for e in seen
        if e["ok"] and e["grant"] not in ("authorization_code", "refresh_token")
    )
    # At most once per worker, and once more for each token renewed after it expired (in whichever worker).
    assert min(given.values()) >= 1 and sum(max(0, n - 2) for n in given.values()) <= renewals_in(document), given
    reported = document["run"]["token_requests"]
    assert sum(n for by in reported.values() for n in by.values()) == len(seen), "every worker's requests reported"


@pytest.fixture(scope="module")
def sandbox_tenant():  # type: ignore[no-untyped-def]
    from harness.core.config import load_profile
    from harness.sandbox.server import Sandbox
    from harness.wire import transport

    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        yield load_profile("sandbox").for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")


def test_a_rejected_sign_in_and_a_wrong_password_are_never_answered_from_the_cache(sandbox_tenant) -> None:  # type: ignore[no-untyped-def]
    sign_ins = SignIns()
    first = sign_ins.with_password(sandbox_tenant, "licensed")
    again = sign_ins.with_password(sandbox_tenant, "licensed")
    assert first.ok and not first.cached and again.ok and again.cached
    assert str(again.access_token) == str(first.access_token) and again.oid == first.oid
    wrong = sign_ins.with_password(sandbox_tenant, "licensed", wrong_password=True)
    assert not wrong.ok and wrong.aadsts == 50126, "a wrong password is Entra's to refuse, not the cache's to accept"
    undefined = [f"{contract.ACS_RESOURCE}/Teams.ManageEverything"]
    rejected = [sign_ins.with_password(sandbox_tenant, "licensed", undefined) for _ in range(2)]
    assert [r.aadsts for r in rejected] == [70011, 70011] and all(r.status == 400 for r in rejected)
    licensed = sandbox_tenant.user("licensed").alias
    assert sign_ins.requests[licensed, contract.ACS_RESOURCE] == 4, "one grant, the wrong password, two rejections"


def test_a_cached_token_near_its_expiry_is_refreshed_first(sandbox_tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(auth, "CACHED_TOKEN_MIN_LIFE_S", 10**6)  # every cached token is "about to expire"
    sign_ins = SignIns()
    first = sign_ins.with_password(sandbox_tenant, "colleague", GRAPH_SCOPES)
    refreshed = sign_ins.with_password(sandbox_tenant, "colleague", GRAPH_SCOPES)
    assert first.ok and refreshed.ok and not refreshed.cached and refreshed.status == 200
    assert str(refreshed.access_token) != str(first.access_token)
    colleague = sandbox_tenant.user("colleague").alias
    assert sign_ins.requests[colleague, f"https://{contract.GRAPH_HOST}"] == 2, "the grant, then one refresh"
