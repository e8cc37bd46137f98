"""Graph chats and their messages: create a chat (oneOnOne idempotent on the pair), list and get
chats (`$expand`, `$select`, paging), send, list, get, edit and soft-delete chat messages; each change
is handed to the subscriptions that cover it."""

from __future__ import annotations

import base64
import re
import urllib.parse
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.sandbox.graph import odata
from harness.sandbox.graph.messages import message_json, message_page, new_message
from harness.sandbox.graph.odata import GraphError, bad_request, graph_time, note, with_projection
from harness.sandbox.http import emulator_defined
from harness.sandbox.state import Chat, Message, Tenant

if TYPE_CHECKING:
    from harness.sandbox.graph.service import Caller, Graph

# The chat properties the sandbox fills (what `$select` may name besides UNFILLED_PROPERTIES).
CHAT_PROPERTIES = (
    "id",
    "topic",
    "createdDateTime",
    "lastUpdatedDateTime",
    "chatType",
    "webUrl",
    "tenantId",
    "onlineMeetingInfo",
    "viewpoint",
    "isHiddenForAllMembers",
)


def chat_for(caller: Caller, chat_id: str) -> Chat:
    chat = caller.tenant.chats.get(chat_id)
    if chat is None:
        raise GraphError(404, "NotFound", "Unknown chat type")
    if caller.user.oid not in chat.members:
        raise GraphError(403, "Forbidden", "Forbidden")
    return chat


async def export_refused(request: Request, caller: Caller, request_id: str) -> Response:
    """getAllMessages (the Teams export API). The service's gate refuses every caller the sandbox can have
    before this runs: a delegated token (not supported) and an app-only one (no sandbox app holds
    protected-API approval); docs/contracts/graph.md §9.2."""
    raise GraphError(403, "Forbidden", "Protected API access is required.", emulated="no caller reaches the export API")


class Chats:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.ctx = graph.ctx

    def routes(self) -> list[Route]:
        endpoint = self.graph.endpoint
        return [
            endpoint("POST /chats", "/chats", self.create_chat),
            endpoint("GET /me/chats", "/me/chats", self.list_chats),
            endpoint("GET /chats/{id}", "/chats/{chat}", self.get_chat),
            endpoint("POST /chats/{id}/messages", "/chats/{chat}/messages", self.post_message),
            endpoint("GET /chats/{id}/messages", "/chats/{chat}/messages", self.list_messages),
            endpoint("GET /chats/{id}/messages/{id}", "/chats/{chat}/messages/{message}", self.get_message),
            endpoint("PATCH /chats/{id}/messages/{id}", "/chats/{chat}/messages/{message}", self.update_message),
            endpoint("GET /users/{id}/chats/getAllMessages", "/users/{user}/chats/getAllMessages", export_refused),
            endpoint(
                "POST /users/{id}/chats/{id}/messages/{id}/softDelete",
                "/users/{user}/chats/{chat}/messages/{message}/softDelete",
                self.soft_delete,
            ),
        ]

    # -- chats -----------------------------------------------------------------------------------

    def _member_oid(self, tenant: Tenant, member: Any) -> str:
        if not isinstance(member, dict):
            raise bad_request("Each member must be a conversationMember object.", "malformed members")
        bind = member.get("user@odata.bind", "")
        if not isinstance(bind, str):
            raise bad_request("user@odata.bind must be a string.", "malformed members")
        match = re.search(r"users\('([^']+)'\)", bind)
        key = match.group(1) if match else ""
        user = (tenant.user_by_oid(key) or tenant.user_by_upn(key)) if match else None
        if user is None and match:  # someone of another organisation: external access decides
            external = next(
                (
                    t
                    for t in self.ctx.directory.tenants.values()
                    if t.name != tenant.name and (t.user_by_oid(key) or t.user_by_upn(key))
                ),
                None,
            )
            if external is not None:
                if external.domain in tenant.blocked_domains or tenant.domain in external.blocked_domains:
                    raise GraphError(
                        403,
                        "Forbidden",
                        f"External access to {external.domain} is blocked by your organization's policy.",
                        emulated="the error when external access blocks a chat member is not documented",
                    )
                user = external.user_by_oid(key) or external.user_by_upn(key)
        if user is None:
            raise GraphError(
                404,
                "NotFound",
                f"User '{match.group(1) if match else bind}' was not found.",
                emulated="the error for an unknown chat member is not documented",
            )
        roles = member.get("roles", [])
        if not isinstance(roles, list) or not roles or not all(r in ("owner", "guest") for r in roles):
            raise bad_request("Each member must be assigned a role of owner or guest.", "member roles")
        return user.oid

    def _chat_json(
        self,
        request: Request,
        tenant: Tenant,
        chat: Chat,
        *,
        expand_members: bool = False,
        expand_preview: bool = False,
        context: str = "chats/$entity",
    ) -> dict[str, Any]:
        encoded = urllib.parse.quote(chat.id, safe="")
        body: dict[str, Any] = {
            "@odata.context": odata.context(request, context),
            "id": chat.id,
            "topic": chat.topic,
            "createdDateTime": graph_time(chat.created),
            "lastUpdatedDateTime": graph_time(chat.created),
            "chatType": chat.chat_type,
            "webUrl": f"https://teams.microsoft.com/l/chat/{encoded}/0?tenantId={tenant.tenant_id}",
            "tenantId": tenant.tenant_id,
            "onlineMeetingInfo": None,
            "viewpoint": {"isHidden": False, "lastMessageReadDateTime": "0001-01-01T00:00:00Z"},
            "isHiddenForAllMembers": False,
        }
        if chat.meeting_id:
            meeting = tenant.meetings[chat.meeting_id]
            body["onlineMeetingInfo"] = {
                "calendarEventId": None,
                "joinWebUrl": meeting.join_url,
                "organizer": {"id": meeting.organizer, "displayName": None, "userIdentityType": "aadUser"},
            }
        if expand_members:
            body["members"] = [self._member_json(tenant, chat, oid) for oid in chat.members]
        if expand_preview:
            body["lastMessagePreview"] = self._preview_json(tenant, chat)
        return body

    def _preview_json(self, tenant: Tenant, chat: Chat) -> dict[str, Any] | None:
        """A chatMessageInfo of the newest message (`$expand=lastMessagePreview`), None in an empty chat."""
        if not chat.messages:
            return None
        newest = max(chat.messages, key=lambda m: (m.created, int(m.id)))
        full = message_json(tenant, newest, chat_id=chat.id)
        return {
            "id": newest.id,
            "createdDateTime": full["createdDateTime"],
            "isDeleted": newest.deleted is not None,
            "messageType": full["messageType"],
            "eventDetail": None,
            "body": full["body"],
            "from": full["from"],
        }

    def _member_json(self, tenant: Tenant, chat: Chat, oid: str) -> dict[str, Any]:
        user = tenant.user_by_oid(oid)
        member_id = base64.b64encode(f"{chat.id}##{oid}".encode()).decode()
        return {
            "@odata.type": "#microsoft.graph.aadUserConversationMember",
            "id": member_id,
            "roles": ["owner"],
            "displayName": user.display_name if user else None,
            "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
            "userId": oid,
            "email": user.upn if user else None,
            "tenantId": tenant.tenant_id,
        }

    async def create_chat(self, request: Request, caller: Caller, request_id: str) -> Response:
        body = await odata.json_body(request)
        chat_type = body.get("chatType")
        if chat_type not in ("oneOnOne", "group"):
            raise bad_request("chatType must be oneOnOne or group.", "the message for a bad chatType")
        members = body.get("members")
        if not isinstance(members, list) or not members:
            raise bad_request("Members are required.", "the message for missing members")
        oids = list(dict.fromkeys(self._member_oid(caller.tenant, m) for m in members))
        if caller.user.oid not in oids:
            raise bad_request(
                "The caller must be one of the members of the chat.", "the message when the caller is not listed"
            )
        topic = body.get("topic")
        if chat_type == "oneOnOne":
            if len(oids) != 2 or topic:
                raise bad_request(
                    "A oneOnOne chat has exactly two members and no topic.", "the message for a malformed oneOnOne chat"
                )
            chat_id = f"19:{'_'.join(sorted(oids))}@unq.gbl.spaces"
        else:
            if len(oids) < 2 or (topic is not None and not isinstance(topic, str)):
                raise bad_request("A group chat needs at least two members.", "the message for a small group")
            chat_id = f"19:{self.ctx.ids.next('group-chat').replace('-', '')}@thread.v2"
        with self.ctx.lock:
            chat = caller.tenant.chats.get(chat_id)
            if chat is None:  # oneOnOne is idempotent on the member pair; group always creates
                chat = Chat(chat_id, chat_type, oids, self.ctx.now(), topic if chat_type == "group" else None)
                caller.tenant.chats[chat_id] = chat
        return self.graph.json(request, self._chat_json(request, caller.tenant, chat), 201, request_id)

    async def get_chat(self, request: Request, caller: Caller, request_id: str) -> Response:
        chat = chat_for(caller, request.path_params["chat"])
        expand = odata.expanded(request, "GET /chats/{id}", "chat")
        context = with_projection(odata.context(request, "chats/$entity"), [f"{name}()" for name in expand])
        body = self._chat_json(request, caller.tenant, chat, expand_members="members" in expand)
        body["@odata.context"] = context
        if "members" in expand:  # as in the chat-get page's example
            encoded = urllib.parse.quote(chat.id, safe="")
            members = body.pop("members")
            body["members@odata.context"] = odata.context(request, f"chats('{encoded}')/members")
            body["members"] = members
        return self.graph.json(request, body, 200, request_id)

    async def list_chats(self, request: Request, caller: Caller, request_id: str) -> Response:
        top = odata.top(request)
        expand = odata.expanded(request, "GET /me/chats", "chat")
        mine = [c for c in caller.tenant.chats.values() if caller.user.oid in c.members]
        mine.sort(key=lambda c: c.created, reverse=True)
        order = " ".join((odata.query(request).get("orderby") or "").split())
        ordered = order.lower() == "lastmessagepreview/createddatetime desc"  # the one documented order
        if ordered:
            newest = {c.id: max((m.created for m in c.messages), default=None) for c in mine}
            mine.sort(key=lambda c: (newest[c.id] is not None, newest[c.id] or c.created), reverse=True)
        start = odata.skip(request)
        page = mine[start : start + top]
        items = [
            self._chat_json(
                request,
                caller.tenant,
                c,
                expand_members="members" in expand,
                expand_preview="lastMessagePreview" in expand,
            )
            for c in page
        ]
        selected = odata.selected(request, "chat", CHAT_PROPERTIES)
        projection = [*(selected or []), *(f"{name}()" for name in expand)]
        body: dict[str, Any] = {
            "@odata.context": with_projection(odata.context(request, "chats"), projection),
            "@odata.count": len(page),
            "value": [odata.project(item, selected, keep=("id", *expand)) for item in items],
        }
        if start + top < len(mine):
            params = {"$top": str(top)}
            for name in ("expand", "select", "orderby", "filter"):
                if odata.query(request).get(name):
                    params[f"${name}"] = str(odata.query(request).get(name))
            body["@odata.nextLink"] = odata.next_link(request, params, {"offset": start + top})
        for item in body["value"]:
            item.pop("@odata.context", None)
        response = odata.page_note(request, self.graph.json(request, body, 200, request_id))
        if order and not ordered:
            note(response, "an unsupported $orderby on chats is ignored, as Graph was seen to do")
        if odata.query(request).get("filter"):
            note(response, "$filter on chats is accepted but not applied")
        return response

    # -- messages ----------------------------------------------------------------------------------

    async def post_message(self, request: Request, caller: Caller, request_id: str) -> Response:
        chat_id = request.path_params["chat"]
        if chat_id not in caller.tenant.chats:
            raise GraphError(
                404, "NotFound", "Unknown chat type", emulated="the 404 for an unknown chat is documented for GET only"
            )
        chat = chat_for(caller, chat_id)
        if not caller.user.chat_enabled:
            raise GraphError(
                403,
                "Forbidden",
                "Chat is turned off for this user by the messaging policy.",
                emulated="the error when a messaging policy turns chat off is not documented",
            )
        message = new_message(self.ctx, caller.user.oid, await odata.json_body(request))
        with self.ctx.lock:
            chat.messages.append(message)
        body = message_json(caller.tenant, message, chat_id=chat.id)
        self._publish(caller.tenant, chat, "created", body)
        encoded = urllib.parse.quote(chat.id, safe="")
        body = {"@odata.context": odata.context(request, f"chats('{encoded}')/messages/$entity"), **body}
        return self.graph.json(request, body, 201, request_id)

    def _own_message(self, caller: Caller, chat_id: str, message_id: str) -> tuple[Chat, Message]:
        chat = chat_for(caller, chat_id)
        message = next((m for m in chat.messages if m.id == message_id), None)
        if message is None or message.deleted:
            raise GraphError(404, "NotFound", "Message not found.", emulated="the 404 body for an unknown message")
        if message.sender != caller.user.oid:
            raise GraphError(
                403,
                "Forbidden",
                "Only the sender can change a message.",
                emulated="the 403 text for changing someone else's message",
            )
        return chat, message

    async def update_message(self, request: Request, caller: Caller, request_id: str) -> Response:
        """Edit a message's body: 204, and an `updated` change notification."""
        chat, message = self._own_message(caller, request.path_params["chat"], request.path_params["message"])
        edited = new_message(self.ctx, caller.user.oid, await odata.json_body(request))
        with self.ctx.lock:
            message.content, message.content_type = edited.content, edited.content_type
            message.edited = message.last_modified = edited.created
            message.version += 1
        self._publish(caller.tenant, chat, "updated", message_json(caller.tenant, message, chat_id=chat.id))
        return self.graph.no_content(request, request_id)

    async def soft_delete(self, request: Request, caller: Caller, request_id: str) -> Response:
        """Soft-delete one's own message: 204, and a `deleted` change notification (emulator-defined:
        which changeType Graph sends for a soft delete is not documented)."""
        if request.path_params["user"] not in (caller.user.oid, caller.user.upn):
            raise GraphError(
                403,
                "Forbidden",
                "A user can only delete their own messages.",
                emulated="the 403 text for another user's path",
            )
        chat, message = self._own_message(caller, request.path_params["chat"], request.path_params["message"])
        with self.ctx.lock:
            message.deleted = message.last_modified = self.ctx.now()
            message.version += 1
        self._publish(caller.tenant, chat, "deleted", message_json(caller.tenant, message, chat_id=chat.id))
        response = self.graph.no_content(request, request_id)
        return emulator_defined(response, "a soft delete is notified as changeType deleted (not documented)")

    def _publish(self, tenant: Tenant, chat: Chat, change_type: str, message: dict[str, Any]) -> None:
        """Hand the change to every subscription that covers it."""
        notifier = self.ctx.notifier
        if notifier is None:
            return
        for subscription in list(self.ctx.subscriptions.values()):
            covers = subscription.chat_id == chat.id or (
                subscription.chat_id is None and subscription.creator in chat.members
            )
            if subscription.tenant == tenant.name and covers and change_type in subscription.change_types:
                notifier.message_changed(
                    # validation tokens are checked against the receiver's real clock, whatever the model's
                    subscription,
                    tenant.tenant_id,
                    change_type,
                    chat.id,
                    message,
                    int(self.ctx.wall_clock.now().timestamp()),
                )

    async def get_message(self, request: Request, caller: Caller, request_id: str) -> Response:
        chat = chat_for(caller, request.path_params["chat"])
        message = next((m for m in chat.messages if m.id == request.path_params["message"]), None)
        if message is None:
            raise GraphError(404, "NotFound", "Message not found.", emulated="the 404 body for an unknown message")
        encoded = urllib.parse.quote(chat.id, safe="")
        body = {
            "@odata.context": odata.context(request, f"chats('{encoded}')/messages/$entity"),
            **message_json(caller.tenant, message, chat_id=chat.id),
        }
        return self.graph.json(request, body, 200, request_id)

    async def list_messages(self, request: Request, caller: Caller, request_id: str) -> Response:
        chat = chat_for(caller, request.path_params["chat"])
        encoded = urllib.parse.quote(chat.id, safe="")
        return message_page(
            self.graph, request, caller, request_id, chat.messages, f"chats('{encoded}')/messages", chat_id=chat.id
        )
