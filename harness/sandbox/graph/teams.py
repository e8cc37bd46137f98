"""Graph teams and channels: joined teams, a team's channels, posting and listing channel messages."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.sandbox.graph import odata
from harness.sandbox.graph.chats import export_refused
from harness.sandbox.graph.messages import message_json, message_page, new_message
from harness.sandbox.graph.odata import GraphError, note, with_projection
from harness.sandbox.state import Team

if TYPE_CHECKING:
    from harness.sandbox.graph.service import Caller, Graph


class Teams:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.ctx = graph.ctx

    def routes(self) -> list[Route]:
        endpoint = self.graph.endpoint
        messages = "/teams/{team}/channels/{channel}/messages"
        return [
            endpoint("GET /me/joinedTeams", "/me/joinedTeams", self.joined_teams),
            endpoint("GET /teams/{id}/channels", "/teams/{team}/channels", self.channels),
            endpoint(
                "GET /teams/{id}/channels/getAllMessages", "/teams/{team}/channels/getAllMessages", export_refused
            ),
            endpoint("POST /teams/{id}/channels/{id}/messages", messages, self.post_channel_message),
            endpoint("GET /teams/{id}/channels/{id}/messages", messages, self.list_channel_messages),
        ]

    async def joined_teams(self, request: Request, caller: Caller, request_id: str) -> Response:
        teams = [t for t in caller.tenant.teams.values() if caller.user.oid in t.members]
        value = [
            {
                "id": t.id,
                "displayName": t.display_name,
                "description": None,
                "isArchived": False,
                "tenantId": caller.tenant.tenant_id,
            }
            for t in teams
        ]
        return self.graph.json(
            request,
            {"@odata.context": odata.context(request, "teams"), "@odata.count": len(value), "value": value},
            200,
            request_id,
        )

    def _team_for(self, caller: Caller, team_id: str) -> Team:
        team = caller.tenant.teams.get(team_id)
        if team is None:
            raise GraphError(
                404, "NotFound", "No team found with Group Id " + team_id, emulated="the 404 body for an unknown team"
            )
        if caller.user.oid not in team.members:
            raise GraphError(403, "Forbidden", "Forbidden", emulated="the 403 body for a team the user is not in")
        return team

    async def channels(self, request: Request, caller: Caller, request_id: str) -> Response:
        team = self._team_for(caller, request.path_params["team"])
        channel_properties = ("id", "displayName", "description", "membershipType", "tenantId")
        selected = odata.selected(request, "channel", channel_properties)
        value = [
            {
                "id": c.id,
                "displayName": c.display_name,
                "description": None,
                "membershipType": "standard",
                "tenantId": caller.tenant.tenant_id,
            }
            for c in team.channels.values()
        ]
        context = with_projection(odata.context(request, f"teams('{team.id}')/channels"), selected or [])
        value = [odata.project(item, selected, keep=("id",)) for item in value]
        response = self.graph.json(
            request, {"@odata.context": context, "@odata.count": len(value), "value": value}, 200, request_id
        )
        if odata.query(request).get("filter"):
            note(response, "$filter on channels is accepted but not applied")
        return response

    def _channel_for(self, caller: Caller, request: Request) -> tuple[Team, Any]:
        team = self._team_for(caller, request.path_params["team"])
        channel = team.channels.get(request.path_params["channel"])
        if channel is None:
            raise GraphError(404, "NotFound", "Channel not found.", emulated="the 404 body for an unknown channel")
        return team, channel

    async def post_channel_message(self, request: Request, caller: Caller, request_id: str) -> Response:
        team, channel = self._channel_for(caller, request)
        message = new_message(self.ctx, caller.user.oid, await odata.json_body(request))
        with self.ctx.lock:
            channel.messages.append(message)
        encoded = urllib.parse.quote(channel.id, safe="")
        body = {
            "@odata.context": odata.context(request, f"teams('{team.id}')/channels('{encoded}')/messages/$entity"),
            **message_json(caller.tenant, message, team=team, channel_id=channel.id),
        }
        return self.graph.json(request, body, 201, request_id)

    async def list_channel_messages(self, request: Request, caller: Caller, request_id: str) -> Response:
        team, channel = self._channel_for(caller, request)
        expand = odata.expanded(request, "GET /teams/{id}/channels/{id}/messages", "chatMessage")
        encoded = urllib.parse.quote(channel.id, safe="")
        return message_page(
            self.graph,
            request,
            caller,
            request_id,
            channel.messages,
            f"teams('{team.id}')/channels('{encoded}')/messages",
            replies="replies" in expand,
            team=team,
            channel_id=channel.id,
        )
