"""Graph refusals that share a status but not a cause (docs/contracts/graph.md §9): the sandbox answers each as
partners report Graph answering it (marked emulator-defined), and the harness's diagnosis tells them apart."""

from __future__ import annotations

import pytest

from harness.client.auth import EntraSignIn
from harness.client.graph import GRAPH_SCOPES, GraphClient, GraphResult, MarkerSource
from harness.client.identity import entra_credential
from harness.conformance.flows.chat import graph_diagnosis
from harness.core.config import load_profile
from harness.sandbox.server import Sandbox
from harness.wire import transport

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world():
    with Sandbox(deterministic=True) as sandbox, transport.route_hosts(sandbox.host_routes()):
        info = sandbox.tenant_info("contoso")
        tenant = load_profile("acs-entra").for_sandbox(info, sandbox.host_routes(), "sandbox")

        def delegated(alias: str) -> GraphClient:
            signed = EntraSignIn(tenant).with_password(alias, GRAPH_SCOPES)
            assert signed.ok, signed
            return GraphClient(tenant, str(signed.access_token), sleep=lambda _: None, markers=MarkerSource(alias))

        app_token = entra_credential(tenant).get_token("https://graph.microsoft.com/.default").token
        app = GraphClient(tenant, app_token, sleep=lambda _: None, markers=MarkerSource("app"))
        yield delegated, app, info.oids()


def test_an_unlicensed_users_chat_is_refused_for_the_licence(world) -> None:
    delegated, _, oids = world
    refused = delegated("pradeep").create_chat("oneOnOne", [oids["pradeep"], oids["megan"]])
    assert (refused.status, refused.code) == (403, "Forbidden")
    assert "license information" in (refused.message or "") and refused.emulator_defined
    meaning, remedy = graph_diagnosis(refused)
    assert "licence" in (meaning or "") and "member" not in (meaning or "") and "Licenses and apps" in (remedy or "")
    # A licensed user outside the chat still gets the membership diagnosis: the two causes stay apart.
    chat = delegated("megan").create_chat("oneOnOne", [oids["megan"], oids["lynne"]])
    outsider = delegated("adele").request("GET", f"chats/{chat.body['id']}/messages")
    assert outsider.status == 403 and "member" in (graph_diagnosis(outsider)[0] or "")


def test_a_delegated_token_cannot_call_the_export_api(world) -> None:
    delegated, _, oids = world
    for kwargs in ({"user_id": oids["adele"]}, {"team_id": "any-team"}):
        refused = delegated("adele").get_all_messages(**kwargs, model="B")
        assert (refused.status, refused.code) == (403, "Forbidden") and refused.emulator_defined
        assert "GET /chats/{id}/messages" in (graph_diagnosis(refused)[1] or "")


def test_an_app_only_token_needs_protected_api_approval_for_the_export_api(world) -> None:
    _, app, oids = world
    refused = app.get_all_messages(user_id=oids["adele"], model="A")
    assert (refused.status, refused.code) == (403, "Forbidden")
    assert refused.message and refused.message.startswith("Invoked API requires Protected API access")
    assert "aka.ms/teamsgraph/requestaccess" in (graph_diagnosis(refused)[1] or "")


def test_an_app_only_token_posting_a_chat_message_is_told_it_is_for_import_only(world) -> None:
    delegated, app, oids = world
    chat = delegated("adele").create_chat("oneOnOne", [oids["adele"], oids["megan"]])
    refused = app.send(f"chats/{chat.body['id']}/messages", "from the daemon").result
    assert (refused.status, refused.code) == (401, "Unauthorized")
    assert "only for import purposes" in (refused.message or "")
    meaning, remedy = graph_diagnosis(refused)
    assert "import" in (meaning or "") and "delegated token" in (remedy or "") and "sign in again" not in (remedy or "")
    # On a delegated-only route the app-only token keeps the generic 401.
    assert app.me().status == 401


def test_a_payment_refusal_of_the_export_api_names_the_payment_models() -> None:
    """402 (Microsoft's teams-licenses page, "Payment-related errors"): not produced by the sandbox, diagnosed."""
    result = GraphResult("GET", "users/x/chats/getAllMessages", 402, code="PaymentRequired", message="...")
    meaning, remedy = graph_diagnosis(result)
    assert "payment" in (meaning or "") and "model=A" in (remedy or "") and "model=B" in (remedy or "")
