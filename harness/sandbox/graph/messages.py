"""Chat and channel messages as Graph shows them: a new message from a request body, a message's
JSON, and a page of messages (newest first, `$orderby`, `$filter` on the dates, `$top`, a cursor
`$skiptoken`)."""

from __future__ import annotations

import re
import urllib.parse
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from harness.sandbox.context import SandboxContext
from harness.sandbox.graph import odata
from harness.sandbox.graph.odata import GraphError, bad_request, graph_time, normal_time, with_projection
from harness.sandbox.state import Message, Team, Tenant

if TYPE_CHECKING:
    from harness.sandbox.graph.service import Caller, Graph

MAX_MESSAGE_BYTES = 28 * 1024  # "Approximately 28 KB per post" (Teams limits); the exact edge is emulator-defined


def new_message(ctx: SandboxContext, sender: str, body: dict[str, Any]) -> Message:
    item = body.get("body")
    if not isinstance(item, dict) or not isinstance(item.get("content"), str):
        raise bad_request("Message body cannot be empty.", "the 400 body for a message without body.content")
    content_type = item.get("contentType", "text")
    if content_type not in ("text", "html"):
        raise bad_request("contentType must be text or html.", "the message for an unknown contentType")
    if len(item["content"].encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise GraphError(
            413,
            "RequestEntityTooLarge",
            "The request size exceeds the maximum limit.",
            emulated="Teams documents ~28 KB per post; the status and body when exceeded are not",
        )
    with ctx.lock:
        now = ctx.now()
        millis = int(now.timestamp() * 1000)
        ctx.last_message_ms = millis = max(millis, ctx.last_message_ms + 1)
    moment = datetime.fromtimestamp(millis // 1000, now.tzinfo) + timedelta(milliseconds=millis % 1000)
    return Message(str(millis), moment, moment, sender, item["content"], content_type)


def message_json(
    tenant: Tenant,
    message: Message,
    *,
    chat_id: str | None = None,
    team: Team | None = None,
    channel_id: str | None = None,
) -> dict[str, Any]:
    sender = tenant.user_by_oid(message.sender)
    web_url = None
    if team and channel_id:
        web_url = (
            f"https://teams.microsoft.com/l/message/{urllib.parse.quote(channel_id, safe='')}/"
            f"{message.id}?groupId={team.id}&tenantId={tenant.tenant_id}&createdTime={message.id}"
            f"&parentMessageId={message.id}"
        )
    return {
        "id": message.id,
        "replyToId": None,
        "etag": str(int(message.id) + message.version) if message.version else message.id,
        "messageType": "message",
        "createdDateTime": graph_time(message.created),
        "lastModifiedDateTime": graph_time(message.last_modified),
        "lastEditedDateTime": graph_time(message.edited) if message.edited else None,
        "deletedDateTime": graph_time(message.deleted) if message.deleted else None,
        "subject": None,
        "summary": None,
        "chatId": chat_id,
        "importance": "normal",
        "locale": "en-us",
        "webUrl": web_url,
        "channelIdentity": {"teamId": team.id, "channelId": channel_id} if team else None,
        "policyViolation": None,
        "eventDetail": None,
        "from": {
            "application": None,
            "device": None,
            "conversation": None,
            "user": {
                "@odata.type": "#microsoft.graph.teamworkUserIdentity",
                "id": message.sender,
                "displayName": sender.display_name if sender else None,
                "userIdentityType": "aadUser",
                "tenantId": tenant.tenant_id,
            },
        },
        "body": {"contentType": message.content_type, "content": message.content},
        "attachments": [],
        "mentions": [],
        "reactions": [],
    }


def message_page(
    graph: Graph,
    request: Request,
    caller: Caller,
    request_id: str,
    messages: list[Message],
    context: str,
    *,
    replies: bool = False,
    **where: Any,
) -> Response:
    top = odata.top(request)
    query = odata.query(request)
    order = query.get("orderby") or ""
    prop, _, direction = order.strip().partition(" ")
    prop = prop or "lastModifiedDateTime"
    if prop not in ("lastModifiedDateTime", "createdDateTime") or direction.strip() not in ("", "desc"):
        raise bad_request(
            f"$orderby '{order}' is not supported: only lastModifiedDateTime or createdDateTime in descending order.",
            "the message for an unsupported $orderby",
        )
    attr = "last_modified" if prop == "lastModifiedDateTime" else "created"
    selected = [m for m in messages if _matches(m, attr, prop, query.get("filter"), bool(order))]
    selected.sort(key=lambda m: (getattr(m, attr), int(m.id)), reverse=True)
    cursor = odata.cursor(request)
    if cursor:
        selected = [m for m in selected if (getattr(m, attr), int(m.id)) < cursor]
    page = selected[:top]
    body: dict[str, Any] = {
        "@odata.context": odata.context(request, context),
        "@odata.count": len(page),
        "value": [message_json(caller.tenant, m, **where) for m in page],
    }
    if replies:  # `$expand=replies` on a channel: the sandbox's channel messages have no replies
        body["@odata.context"] = with_projection(body["@odata.context"], ["replies()"])
        for item in body["value"]:
            item["replies"] = []
    if len(selected) > top:
        last = page[-1]
        params = {"$top": str(top)}
        for name in ("orderby", "filter", "expand"):
            if query.get(name):
                params[f"${name}"] = str(query.get(name))
        body["@odata.nextLink"] = odata.next_link(
            request, params, {"after": graph_time(getattr(last, attr)), "id": last.id}
        )
    return odata.page_note(request, graph.json(request, body, 200, request_id))


def _matches(message: Message, attr: str, prop: str, expression: str | None, ordered: bool) -> bool:
    """`$filter` on the date properties; ignored unless `$orderby` names the same property."""
    if not expression or not ordered:
        return True
    value = graph_time(getattr(message, attr))
    clauses = re.findall(r"(\w+)\s+(gt|lt)\s+([0-9T:\-.Z]+)", expression)
    if not clauses or any(name != prop for name, _, _ in clauses):
        return True  # "otherwise, the $filter query option is ignored"
    if prop == "createdDateTime" and any(op != "lt" for _, op, _ in clauses):
        raise bad_request(
            "createdDateTime supports only the lt operator in $filter.",
            "the documented rule (lt only) has no documented error",
        )
    for _, operator, bound in clauses:
        bound = bound if bound.endswith("Z") else bound + "Z"
        if operator == "gt" and not value > normal_time(bound):
            return False
        if operator == "lt" and not value < normal_time(bound):
            return False
    return True
