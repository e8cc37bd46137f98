"""Microsoft's Python Graph SDK (`msgraph-sdk`, unmodified, its default middleware) against the sandbox's Graph.

The SDK is configured the way its documentation allows: an httpx client that trusts the sandbox's CA
and has the sandbox's Graph base URL, loaded with the SDK's default middleware by `GraphClientFactory`,
a `GraphRequestAdapter`, and an azure-core TokenCredential that hands over the tokens MSAL got from the
sandbox's Entra ID. Nothing in the SDK is patched. The SDK sends `.../v1.0//me` (its base URL ends in
`/`, its URL templates start with one), so every call here also checks the sandbox's path handling.

The last part drives the same path and query handling with plain HTTP requests and with the parser
itself (docs/contracts/graph.md §8).
"""

from __future__ import annotations

import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msal
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.chats.item.chat_item_request_builder import ChatItemRequestBuilder
from msgraph.generated.chats.item.messages.messages_request_builder import MessagesRequestBuilder
from msgraph.generated.models.aad_user_conversation_member import AadUserConversationMember
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.channel_membership_type import ChannelMembershipType
from msgraph.generated.models.chat import Chat
from msgraph.generated.models.chat_message import ChatMessage
from msgraph.generated.models.chat_message_importance import ChatMessageImportance
from msgraph.generated.models.chat_message_type import ChatMessageType
from msgraph.generated.models.chat_type import ChatType
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.online_meeting import OnlineMeeting
from msgraph.generated.models.online_meeting_role import OnlineMeetingRole
from msgraph.generated.models.teamwork_user_identity_type import TeamworkUserIdentityType
from msgraph.generated.users.item.chats.chats_request_builder import ChatsRequestBuilder
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.graph_request_adapter import options as sdk_default_options
from msgraph_core import GraphClientFactory
from msgraph_core.tasks.page_iterator import PageIterator

from harness.sandbox.graph import GraphError, Query, collapse_empty_segments, with_projection
from harness.sandbox.server import Sandbox
from harness.wire.contract import EMULATOR_DEFINED_HEADER
from harness.wire.tenant import TenantInfo
from tests.support import device_code_sign_in, run_async

pytestmark = pytest.mark.integration
GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]


# -- the SDK, configured as documented -------------------------------------------------------------


class MsalCredential:
    """azure-core's TokenCredential protocol over an MSAL public client signed in to the sandbox's
    Entra ID: each `get_token` is MSAL's silent acquisition (its cache, or its refresh token)."""

    def __init__(self, app: msal.PublicClientApplication) -> None:
        self.app = app
        self.asked: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, claims: str | None = None, **_: Any) -> AccessToken:
        self.asked.append(scopes)
        account = self.app.get_accounts()[0]
        result = self.app.acquire_token_silent(list(scopes), account=account, claims_challenge=claims)
        if not result or "access_token" not in result:
            raise ClientAuthenticationError(f"MSAL gave no token for {scopes}: {result}")
        return AccessToken(result["access_token"], int(time.time()) + int(result["expires_in"]))


def sign_in(info: TenantInfo, alias: str) -> MsalCredential:
    """The device-code flow against the sandbox's authority, the user entering their password."""
    app, signed_in = device_code_sign_in(info, GRAPH_SCOPES, info.user(alias))
    assert "access_token" in signed_in
    return MsalCredential(app)


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def info(sandbox: Sandbox) -> dict:
    return sandbox.tenant_info("contoso", canonical=False)


@pytest.fixture(scope="module")
def oids(info: TenantInfo) -> dict[str, str]:
    return info.oids()


@pytest.fixture(scope="module")
def credentials(info: TenantInfo) -> dict[str, MsalCredential]:
    return {alias: sign_in(info, alias) for alias in ("adele", "megan")}


class Sdk:
    """One GraphServiceClient over one httpx client; `sent` is every request the server answered,
    as (method, URL as sent after the middleware, status)."""

    def __init__(self, info: TenantInfo, credential: MsalCredential) -> None:
        self.sent: list[tuple[str, httpx.URL, int]] = []

        async def record(response: httpx.Response) -> None:
            self.sent.append((response.request.method, response.request.url, response.status_code))

        http = httpx.AsyncClient(
            base_url=info.graph_base_url,
            verify=ssl.create_default_context(cafile=info.ca_bundle),
            trust_env=False,
            timeout=30,
            event_hooks={"response": [record]},
        )
        # The SDK's own default middleware, with the options GraphRequestAdapter uses when it builds
        # its client itself (the /me URL replacement and the telemetry header).
        self.http = GraphClientFactory.create_with_default_middleware(client=http, options=sdk_default_options)
        auth = AzureIdentityAuthenticationProvider(credential, scopes=GRAPH_SCOPES, allowed_hosts=["localhost"])
        self.adapter = GraphRequestAdapter(auth, self.http)
        self.client = GraphServiceClient(request_adapter=self.adapter)


def run(info: TenantInfo, credential: MsalCredential, scenario: Callable[[Sdk], Awaitable[Any]]) -> Any:
    """The scenario on a fresh event loop in its own thread: the test process may keep a loop running on
    the main thread (Playwright's sync API, shared with the browser tests)."""

    async def main() -> Any:
        sdk = Sdk(info, credential)
        try:
            return await scenario(sdk)
        finally:
            await sdk.http.aclose()

    return run_async(main())


def member(oid: str) -> AadUserConversationMember:
    return AadUserConversationMember(
        roles=["owner"], additional_data={"user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{oid}')"}
    )


def unknown_properties(model: Any) -> set[str]:
    """Properties the SDK's v1.0 model does not know (annotations aside): the sandbox sends none."""
    return {k for k in model.additional_data if not k.startswith("@odata.")}


def assert_message(
    message: ChatMessage, *, sender: str, content: str, chat_id: str | None = None, channel: tuple | None = None
) -> None:
    """A chatMessage as Graph returns one (docs/contracts/graph.md §2.1), every field parsed."""
    assert message.id and message.id.isdigit() and message.etag == message.id
    assert message.message_type == ChatMessageType.Message
    assert isinstance(message.created_date_time, datetime) and message.created_date_time.tzinfo is not None
    assert message.last_modified_date_time == message.created_date_time
    assert message.last_edited_date_time is None and message.deleted_date_time is None
    assert message.importance == ChatMessageImportance.Normal and message.locale == "en-us"
    assert message.reply_to_id is None and message.subject is None and message.policy_violation is None
    assert message.body is not None and message.body.content == content and message.body.content_type == BodyType.Text
    assert message.attachments == [] and message.mentions == [] and message.reactions == []
    user = message.from_.user if message.from_ else None
    assert user is not None and user.id == sender and user.display_name
    assert user.user_identity_type == TeamworkUserIdentityType.AadUser
    assert message.chat_id == chat_id
    if channel is None:
        assert message.channel_identity is None and message.web_url is None
    else:
        assert (message.channel_identity.team_id, message.channel_identity.channel_id) == channel
        assert message.web_url and message.web_url.startswith("https://teams.microsoft.com/l/message/")
    assert unknown_properties(message) == set()


def assert_chat(chat: Chat, info: TenantInfo, chat_type: ChatType, topic: str | None) -> None:
    assert chat.id and chat.chat_type == chat_type and chat.topic == topic
    assert isinstance(chat.created_date_time, datetime) and isinstance(chat.last_updated_date_time, datetime)
    assert chat.tenant_id == info.tenant_id
    assert chat.web_url and chat.web_url.startswith("https://teams.microsoft.com/l/chat/")
    assert chat.viewpoint is not None and chat.viewpoint.is_hidden is False
    assert isinstance(chat.viewpoint.last_message_read_date_time, datetime)
    assert chat.is_hidden_for_all_members is False
    assert unknown_properties(chat) == set()


async def send(sdk: Sdk, chat_id: str, content: str) -> ChatMessage:
    sent = await sdk.client.chats.by_chat_id(chat_id).messages.post(ChatMessage(body=ItemBody(content=content)))
    assert sent is not None
    return sent


async def new_group(sdk: Sdk, oids: dict[str, str], topic: str) -> Chat:
    chat = await sdk.client.chats.post(
        Chat(chat_type=ChatType.Group, topic=topic, members=[member(oids["adele"]), member(oids["megan"])])
    )
    assert chat is not None
    return chat


# -- the chat rows, end to end -------------------------------------------------------------------------


def test_me_through_the_sdk_whose_paths_have_an_empty_segment(info, oids, credentials) -> None:
    async def scenario(sdk: Sdk) -> None:
        me = await sdk.client.me.get()
        assert me is not None and me.id == oids["adele"]
        assert (me.display_name, me.given_name, me.surname) == ("Adele Vance", "Adele", "Vance")
        assert me.user_principal_name == me.mail and me.mail.startswith("adele@")
        assert me.preferred_language == "en-US" and me.business_phones == []
        assert unknown_properties(me) == set()
        (method, url, status) = sdk.sent[-1]
        assert (method, url.path, status) == ("GET", "/v1.0//me", 200), "the SDK's own path, answered as Graph does"

    run(info, credentials["adele"], scenario)
    assert credentials["adele"].asked[-1] == tuple(GRAPH_SCOPES)


def test_one_on_one_is_created_once_and_group_chats_every_time(info, oids, credentials) -> None:
    pair = [member(oids["adele"]), member(oids["megan"])]

    async def as_adele(sdk: Sdk) -> tuple[Chat, Chat, Chat, Chat]:
        first = await sdk.client.chats.post(Chat(chat_type=ChatType.OneOnOne, members=pair))
        again = await sdk.client.chats.post(Chat(chat_type=ChatType.OneOnOne, members=pair))
        group_a, group_b = await new_group(sdk, oids, "sdk group"), await new_group(sdk, oids, "sdk group")
        return first, again, group_a, group_b

    async def as_megan(sdk: Sdk) -> Chat:
        return await sdk.client.chats.post(Chat(chat_type=ChatType.OneOnOne, members=list(reversed(pair))))

    first, again, group_a, group_b = run(info, credentials["adele"], as_adele)
    from_megan = run(info, credentials["megan"], as_megan)
    assert first.id == again.id == from_megan.id and first.id.endswith("@unq.gbl.spaces")
    assert_chat(first, info, ChatType.OneOnOne, None)
    assert group_a.id != group_b.id and group_a.id.endswith("@thread.v2")
    for group in (group_a, group_b):
        assert_chat(group, info, ChatType.Group, "sdk group")


def test_every_message_is_seen_exactly_once_across_every_page(info, oids, credentials) -> None:
    """Ten messages from two senders; the SDK's PageIterator with $top=3 walks four pages; one more
    message sent in the middle of the walk does not make any message appear twice."""

    async def scenario(sdk: Sdk) -> None:
        chat = await new_group(sdk, oids, "paging")
        sent = [await send(sdk, chat.id, f"message {n}") for n in range(10)]
        first = await sdk.client.chats.by_chat_id(chat.id).messages.get(
            RequestConfiguration(
                query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(top=3)
            )
        )
        assert first is not None and len(first.value) == 3 and first.odata_next_link
        iterator = PageIterator(first, sdk.adapter)
        late = await send(sdk, chat.id, "sent while paging")
        seen: list[ChatMessage] = []
        await iterator.iterate(lambda message: seen.append(message) or True)
        counts = Counter(m.id for m in seen)
        assert all(n == 1 for n in counts.values()), f"seen twice: {[i for i, n in counts.items() if n > 1]}"
        assert {m.id for m in sent} <= set(counts), "a message sent before the listing is missing"
        assert set(counts) <= {m.id for m in sent} | {late.id}
        by_id = {m.id: m for m in seen}
        for n, message in enumerate(sent):
            assert_message(by_id[message.id], sender=oids["adele"], content=f"message {n}", chat_id=chat.id)
        pages = [url for method, url, status in sdk.sent if method == "GET" and "messages" in url.path]
        assert len(pages) == 4 and all("$skiptoken=" in str(url) for url in pages[1:])

    run(info, credentials["adele"], scenario)


def test_one_message_and_my_chats(info, oids, credentials) -> None:
    async def adele(sdk: Sdk) -> tuple[str, str]:
        chat = await new_group(sdk, oids, "one message")
        sent = await send(sdk, chat.id, "read me back")
        assert_message(sent, sender=oids["adele"], content="read me back", chat_id=chat.id)
        return chat.id, sent.id

    chat_id, message_id = run(info, credentials["adele"], adele)

    async def megan(sdk: Sdk) -> None:
        got = await sdk.client.chats.by_chat_id(chat_id).messages.by_chat_message_id(message_id).get()
        assert_message(got, sender=oids["adele"], content="read me back", chat_id=chat_id)
        listed = await sdk.client.me.chats.get()
        assert listed is not None and listed.odata_count == len(listed.value)
        mine = {c.id: c for c in listed.value}
        assert chat_id in mine
        assert_chat(mine[chat_id], info, ChatType.Group, "one message")

    run(info, credentials["megan"], megan)


def test_a_meeting_chat_through_the_online_meeting(info, oids, credentials) -> None:
    async def scenario(sdk: Sdk) -> None:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        meeting = await sdk.client.me.online_meetings.post(
            OnlineMeeting(subject="sdk meeting", start_date_time=start, end_date_time=start + timedelta(minutes=30))
        )
        assert meeting is not None and meeting.id and meeting.subject == "sdk meeting"
        assert (meeting.start_date_time, meeting.end_date_time) == (start, start + timedelta(minutes=30))
        assert isinstance(meeting.creation_date_time, datetime)
        assert meeting.join_web_url and meeting.join_web_url.startswith("https://teams.microsoft.com/l/meetup-join/")
        thread = meeting.chat_info.thread_id
        assert thread.startswith("19:meeting_") and meeting.chat_info.message_id == "0"
        organizer = meeting.participants.organizer
        assert (
            organizer.identity.user.id == oids["adele"]
            and organizer.upn
            and organizer.role == OnlineMeetingRole.Presenter
        )
        assert unknown_properties(meeting) == set()
        posted = await send(sdk, thread, "in the meeting chat")
        assert_message(posted, sender=oids["adele"], content="in the meeting chat", chat_id=thread)
        chat = await sdk.client.chats.by_chat_id(thread).get()
        assert chat.chat_type == ChatType.Meeting and chat.topic == "sdk meeting"
        assert chat.online_meeting_info.join_web_url == meeting.join_web_url
        assert chat.online_meeting_info.organizer.id == oids["adele"]

    run(info, credentials["adele"], scenario)


def test_a_channel_post_through_joined_teams_and_channels(info, oids, credentials) -> None:
    async def scenario(sdk: Sdk) -> None:
        teams = await sdk.client.me.joined_teams.get()
        assert teams is not None and teams.value
        team = teams.value[0]
        assert team.id and team.display_name and team.is_archived is False and team.tenant_id == info.tenant_id
        assert unknown_properties(team) == set()
        channels = await sdk.client.teams.by_team_id(team.id).channels.get()
        channel = channels.value[0]
        assert channel.id.startswith("19:") and channel.display_name == "General"
        assert channel.membership_type == ChannelMembershipType.Standard and channel.tenant_id == info.tenant_id
        assert unknown_properties(channel) == set()
        messages = sdk.client.teams.by_team_id(team.id).channels.by_channel_id(channel.id).messages
        posted = await messages.post(ChatMessage(body=ItemBody(content="to the channel")))
        assert_message(posted, sender=oids["adele"], content="to the channel", channel=(team.id, channel.id))
        listed = await messages.get()
        assert posted.id in {m.id for m in listed.value}

    run(info, credentials["adele"], scenario)


def test_select_expand_and_count_through_the_request_configuration(info, oids, credentials) -> None:
    async def scenario(sdk: Sdk) -> None:
        chosen = await sdk.client.me.get(
            RequestConfiguration(
                query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
                    select=["displayName", "mail"]
                )
            )
        )
        assert chosen.display_name == "Adele Vance" and chosen.mail
        assert chosen.id is None and chosen.given_name is None and chosen.preferred_language is None
        assert chosen.additional_data["@odata.context"].endswith("#users(displayName,mail)/$entity")

        chat = await new_group(sdk, oids, "shaped")
        await send(sdk, chat.id, "one")
        await send(sdk, chat.id, "two")
        expanded = await sdk.client.chats.by_chat_id(chat.id).get(
            RequestConfiguration(
                query_parameters=ChatItemRequestBuilder.ChatItemRequestBuilderGetQueryParameters(expand=["members"])
            )
        )
        assert {m.user_id for m in expanded.members} == {oids["adele"], oids["megan"]}
        for m in expanded.members:
            assert isinstance(m, AadUserConversationMember) and m.display_name and m.email and m.roles == ["owner"]
            assert m.tenant_id == info.tenant_id and isinstance(m.visible_history_start_date_time, datetime)

        query = ChatsRequestBuilder.ChatsRequestBuilderGetQueryParameters(
            select=["topic", "chatType"], expand=["members"], top=2, count=True
        )
        first = await sdk.client.me.chats.get(RequestConfiguration(query_parameters=query))
        assert first.odata_count == len(first.value) == 2 and first.odata_next_link
        listed: list[Chat] = []
        await PageIterator(first, sdk.adapter).iterate(lambda c: listed.append(c) or True)
        shaped = next(c for c in listed if c.id == chat.id)
        assert shaped.topic == "shaped" and shaped.chat_type == ChatType.Group
        assert shaped.created_date_time is None and shaped.web_url is None, "not selected, not sent"
        assert {m.user_id for m in shaped.members} == {oids["adele"], oids["megan"]}
        assert len({c.id for c in listed}) == len(listed)

        counted = await sdk.client.chats.by_chat_id(chat.id).messages.get(
            RequestConfiguration(
                query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(top=1, count=True)
            )
        )
        assert counted.odata_count == 1 and len(counted.value) == 1 and counted.value[0].body.content == "two"
        sent_queries = [url.params for method, url, status in sdk.sent if method == "GET"]
        assert any(q.get("$count") == "true" and q.get("$top") == "1" for q in sent_queries)

    run(info, credentials["adele"], scenario)


def test_unsupported_query_options_reach_the_sdk_as_graph_errors(info, oids, credentials) -> None:
    async def scenario(sdk: Sdk) -> None:
        with pytest.raises(ODataError) as unknown:
            await sdk.client.me.get(
                RequestConfiguration(
                    query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
                        select=["nickname"]
                    )
                )
            )
        assert unknown.value.response_status_code == 400 and unknown.value.error.code == "BadRequest"
        assert "nickname" in unknown.value.error.message and unknown.value.error.inner_error.request_id
        chat = await new_group(sdk, oids, "no select here")
        with pytest.raises(ODataError) as refused:
            await sdk.client.chats.by_chat_id(chat.id).messages.get(
                RequestConfiguration(
                    query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(select=["body"])
                )
            )
        assert refused.value.response_status_code == 400
        assert "Query option 'Select' is not allowed" in refused.value.error.message

    run(info, credentials["adele"], scenario)


# -- the path and query handling, without the SDK ------------------------------------------------------


@pytest.fixture(scope="module")
def http(info: TenantInfo, credentials: dict[str, MsalCredential]):
    token = credentials["adele"].get_token(*GRAPH_SCOPES).token
    with httpx.Client(
        base_url=info.graph_base_url + "/",
        verify=ssl.create_default_context(cafile=info.ca_bundle),
        trust_env=False,
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


@pytest.fixture(scope="module")
def five_messages(http: httpx.Client, oids: dict[str, str]) -> str:
    members = [
        {
            "@odata.type": "#microsoft.graph.aadUserConversationMember",
            "roles": ["owner"],
            "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{oids[alias]}')",
        }
        for alias in ("adele", "megan")
    ]
    chat = http.post("chats", json={"chatType": "group", "topic": "raw", "members": members}).json()["id"]
    for n in range(5):
        # empty segments anywhere in the path, on a POST too
        assert http.post(f"/chats//{chat}///messages", json={"body": {"content": f"raw {n}"}}).status_code == 201
    return chat


def test_empty_path_segments_are_ignored(http: httpx.Client, info: TenantInfo, oids: dict[str, str]) -> None:
    base = info.graph_base_url  # absolute URLs: httpx would read a relative "//me" as a host name
    for url in (f"{base}/me", f"{base}//me", f"{base}///me", f"{base.removesuffix('/v1.0')}//v1.0//me"):
        response = http.get(url)
        assert response.status_code == 200 and response.json()["id"] == oids["adele"], url
    assert http.get(f"{base}//nothing-here").status_code == 404


@pytest.mark.parametrize("name", ["$top", "$TOP", "$Top"])
def test_system_query_option_names_are_case_insensitive(http: httpx.Client, five_messages: str, name: str) -> None:
    response = http.get(f"chats/{five_messages}/messages", params={name: "2"})
    body = response.json()
    assert response.status_code == 200 and len(body["value"]) == 2
    assert "$top=2" in body["@odata.nextLink"] and EMULATOR_DEFINED_HEADER not in response.headers
    rest = http.get(body["@odata.nextLink"]).json()
    assert len(rest["value"]) == 2 and not {m["id"] for m in rest["value"]} & {m["id"] for m in body["value"]}


def test_an_option_without_dollar_is_ignored_on_v1(http: httpx.Client, five_messages: str) -> None:
    response = http.get(f"chats/{five_messages}/messages", params={"top": "2"})
    assert response.status_code == 200 and len(response.json()["value"]) == 5, "not read as $top"
    assert "without $ ignored (top)" in response.headers[EMULATOR_DEFINED_HEADER]
    odd = http.get(f"chats/{five_messages}/messages", params={"t\u00f6p\u0100": "2"})
    assert odd.status_code == 200 and "ignored (t?p?)" in odd.headers[EMULATOR_DEFINED_HEADER]


def test_an_unknown_option_is_graphs_400(http: httpx.Client, five_messages: str) -> None:
    response = http.get(f"chats/{five_messages}/messages", params={"$foo": "1"})
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "BadRequest"
    assert error["message"] == "The query parameter '$foo' is not supported."
    assert error["innerError"]["request-id"] and error["innerError"]["date"]
    assert response.headers[EMULATOR_DEFINED_HEADER]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"$top": "1", "$TOP": "2"}, "specified more than once"),
        ({"$count": "maybe"}, "not a valid count option"),
        ({"$expand": "members"}, "Query option 'Expand' is not allowed"),
    ],
)
def test_malformed_or_unsupported_options_are_400(
    http: httpx.Client, five_messages: str, params: dict, fragment: str
) -> None:
    response = http.get(f"chats/{five_messages}/messages", params=params)
    assert response.status_code == 400 and fragment in response.json()["error"]["message"]


def test_select_returns_only_the_selected_properties(http: httpx.Client, five_messages: str) -> None:
    me = http.get("me", params={"$select": "displayName,MAIL"}).json()
    assert set(me) == {"@odata.context", "displayName", "mail"}, "a user's id only when selected (user-get example)"
    chats = http.get("me/chats", params={"$select": "topic", "$expand": "members"}).json()
    item = next(c for c in chats["value"] if c["id"] == five_messages)
    assert set(item) == {"id", "topic", "members"} and chats["@odata.context"].endswith("#chats(topic,members())")
    chat = http.get(f"chats/{five_messages}", params={"$expand": "members"}).json()
    assert chat["@odata.context"].endswith("#chats(members())/$entity") and len(chat["members"]) == 2
    assert chat["members@odata.context"].endswith("/members")


def test_count_is_accepted_where_the_collection_carries_it(http: httpx.Client, five_messages: str) -> None:
    for value in ("true", "false", "TRUE"):
        body = http.get(f"chats/{five_messages}/messages", params={"$count": value, "$top": "4"}).json()
        assert body["@odata.count"] == 4 and len(body["value"]) == 4
    assert http.get("me/joinedTeams", params={"$count": "true"}).status_code == 400, "joinedTeams takes no options"


def test_the_path_normalisation_itself() -> None:
    assert collapse_empty_segments("/v1.0//me") == "/v1.0/me"
    assert collapse_empty_segments("//v1.0///chats//19:a@thread.v2/messages") == "/v1.0/chats/19:a@thread.v2/messages"
    assert collapse_empty_segments("/v1.0/me") == "/v1.0/me"
    assert collapse_empty_segments("/common//oauth2/v2.0/token") == "/common//oauth2/v2.0/token", "Graph's only"
    assert collapse_empty_segments("/v1.01//x") == "/v1.01//x"


def test_the_query_parser_itself() -> None:
    route = "GET /chats/{id}/messages"
    parsed = Query.parse([("$TOP", "3"), ("$OrderBy", "createdDateTime desc"), ("top", "9")], route)
    assert parsed.options == {"top": "3", "orderby": "createdDateTime desc"} and parsed.ignored == ["top"]
    assert Query.parse([("$select", "id, topic ,,")], "GET /me/chats").names("select") == ["id", "topic"]
    for items in ([("$nope", "1")], [("$top", "1"), ("$Top", "2")], [("$select", "id")], [("$count", "yes")]):
        with pytest.raises(GraphError) as raised:
            Query.parse(items, route)
        assert raised.value.status == 400 and raised.value.code == "BadRequest" and raised.value.emulated
    assert with_projection("https://h/v1.0/$metadata#users/$entity", ["a", "b"]) == (
        "https://h/v1.0/$metadata#users(a,b)/$entity"
    )
    assert with_projection("https://h/v1.0/$metadata#chats", []) == "https://h/v1.0/$metadata#chats"
