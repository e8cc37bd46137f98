"""Graph online meetings: `POST /me/onlineMeetings` creates the meeting and its chat."""

from __future__ import annotations

import base64
import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.sandbox.graph import odata
from harness.sandbox.graph.odata import GraphError, bad_request, graph_time
from harness.sandbox.state import Chat, Meeting

if TYPE_CHECKING:
    from harness.sandbox.graph.service import Caller, Graph


class Meetings:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.ctx = graph.ctx

    def routes(self) -> list[Route]:
        return [self.graph.endpoint("POST /me/onlineMeetings", "/me/onlineMeetings", self.create_meeting)]

    async def create_meeting(self, request: Request, caller: Caller, request_id: str) -> Response:
        body = await odata.json_body(request)
        subject = body.get("subject") or ""
        try:
            now = self.ctx.now()
            start = datetime.fromisoformat(str(body.get("startDateTime") or graph_time(now)))
            end = datetime.fromisoformat(str(body.get("endDateTime") or graph_time(now + timedelta(hours=1))))
        except ValueError:
            raise bad_request(
                "startDateTime and endDateTime must be ISO 8601 date-times.", "the message for a bad meeting time"
            ) from None
        start, end = (m if m.tzinfo else m.replace(tzinfo=UTC) for m in (start, end))
        if end <= start:
            raise bad_request("endDateTime must be after startDateTime.", "the message for a meeting ending early")
        attendees = []
        participants = body.get("participants") or {}
        listed = participants.get("attendees") or [] if isinstance(participants, dict) else []
        if not isinstance(listed, list) or not all(isinstance(a, dict) for a in listed):
            raise bad_request("participants.attendees must be a list of objects.", "malformed attendees")
        for attendee in listed:
            identity = attendee.get("identity")
            ident = identity.get("user") if isinstance(identity, dict) else None
            ident = ident if isinstance(ident, dict) else {}
            user = caller.tenant.user_by_oid(str(ident.get("id", ""))) or caller.tenant.user_by_upn(
                str(attendee.get("upn", ""))
            )
            if user is None:
                raise GraphError(404, "NotFound", "An attendee was not found.", emulated="unknown meeting attendee")
            attendees.append(user.oid)
        ids = self.ctx.ids
        meeting_id = base64.b64encode(f"1*{caller.user.oid}*0**{ids.next('meeting')}".encode()).decode()
        thread_key = base64.b64encode(ids.next("meeting-thread").encode()).decode().rstrip("=")
        thread = f"19:meeting_{thread_key}@thread.v2"
        context = urllib.parse.quote(
            json.dumps({"Tid": caller.tenant.tenant_id, "Oid": caller.user.oid}, separators=(",", ":")), safe=""
        )
        join_url = (
            f"https://teams.microsoft.com/l/meetup-join/{urllib.parse.quote(thread, safe='')}/0?context={context}"
        )
        meeting = Meeting(meeting_id, subject, caller.user.oid, attendees, thread, join_url, start, end)
        with self.ctx.lock:
            caller.tenant.meetings[meeting_id] = meeting
            caller.tenant.chats[thread] = Chat(
                thread, "meeting", [caller.user.oid, *attendees], self.ctx.now(), subject or None, meeting_id
            )
        organizer = caller.user
        result = {
            "@odata.type": "#microsoft.graph.onlineMeeting",
            "@odata.context": odata.context(request, f"users('{organizer.oid}')/onlineMeetings/$entity"),
            "id": meeting_id,
            "creationDateTime": graph_time(self.ctx.now()),
            "startDateTime": graph_time(start),
            "endDateTime": graph_time(end),
            "joinWebUrl": join_url,
            "subject": subject,
            "chatInfo": {"threadId": thread, "messageId": "0", "replyChainMessageId": None},
            "participants": {
                "organizer": {
                    "identity": {"user": {"id": organizer.oid, "displayName": organizer.display_name}},
                    "upn": organizer.upn,
                    "role": "presenter",
                },
                "attendees": [{"identity": {"user": {"id": oid}}, "role": "attendee"} for oid in attendees],
            },
        }
        return self.graph.json(request, result, 201, request_id)
