"""The emulated ACS Chat (harness/sandbox/acs_chat.py) driven by the real azure-communication-chat SDK: an ACS
user with the chat scope chats; a Teams user's ACS token is refused, and the refusal is marked emulator-defined."""

from __future__ import annotations

import pytest
from azure.communication.chat import ChatClient, ChatThreadClient, CommunicationTokenCredential
from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.core.exceptions import HttpResponseError

from harness.conformance import diagnosis
from harness.sandbox.server import Sandbox
from harness.wire import contract
from harness.wire.tenant import TenantInfo
from tests.support import device_code_sign_in

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def info():
    with Sandbox() as sandbox:
        yield sandbox.tenant_info("contoso", canonical=False)


def identity(info: TenantInfo) -> CommunicationIdentityClient:
    return CommunicationIdentityClient.from_connection_string(
        info.acs_connection_string, connection_verify=info.ca_bundle
    )


def chat(info: TenantInfo, token: str) -> ChatClient:
    return ChatClient(
        info.acs_endpoint, CommunicationTokenCredential(token), connection_verify=info.ca_bundle, retry_total=0
    )


def test_an_acs_user_with_the_chat_scope_creates_a_thread_and_chats(info: TenantInfo) -> None:
    _, token = identity(info).create_user_and_token([CommunicationTokenScope.CHAT])
    client = chat(info, token.token)
    thread = client.create_chat_thread("cte").chat_thread
    assert thread.id.startswith("19:") and thread.topic == "cte"
    # get_chat_thread_client() does not pass connection_verify on: build the thread client as the SDK's own
    thread_client = ChatThreadClient(
        info.acs_endpoint, CommunicationTokenCredential(token.token), thread.id, connection_verify=info.ca_bundle
    )
    sent = thread_client.send_message("hello")
    listed = list(thread_client.list_messages())
    assert [m.id for m in listed] == [sent.id] and listed[0].content.message == "hello"


def test_a_token_without_the_chat_scope_is_refused(info: TenantInfo) -> None:
    _, token = identity(info).create_user_and_token([CommunicationTokenScope.VOIP])
    with pytest.raises(HttpResponseError) as raised:
        chat(info, token.token).create_chat_thread("cte")
    assert raised.value.status_code == 403
    assert raised.value.response.headers[contract.EMULATOR_DEFINED_HEADER]


def test_a_teams_users_acs_token_is_refused_and_diagnosed_as_graph_s_to_serve(info: TenantInfo) -> None:
    entra = device_code_sign_in(info, contract.TEAMS_SCOPES)[1]
    exchanged = identity(info).get_token_for_teams_user(
        entra["access_token"], info.client_id, entra["id_token_claims"]["oid"]
    )
    with pytest.raises(HttpResponseError) as raised:
        chat(info, exchanged.token).create_chat_thread("cte")
    err = raised.value
    assert (err.status_code, err.error.code) == (403, "Forbidden")
    assert "Azure/Communication#600" in err.response.headers[contract.EMULATOR_DEFINED_HEADER]
    found = diagnosis.for_acs_chat(err.status_code, err.error.code)
    assert found is not None and "Teams users chat through Microsoft Graph" in found.remedy


def test_an_unsigned_token_is_refused_401(info: TenantInfo) -> None:
    with pytest.raises(HttpResponseError) as raised:
        chat(info, "eyJhbGciOiJub25lIn0.eyJleHAiOjk5OTk5OTk5OTl9.").create_chat_thread("cte")
    assert raised.value.status_code == 401
