"""Graph users: `/me` and `/users/{id}`, shaped by `$select`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.sandbox.graph import odata
from harness.sandbox.graph.odata import GraphError, with_projection
from harness.sandbox.state import User

if TYPE_CHECKING:
    from harness.sandbox.graph.service import Caller, Graph


class Users:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def routes(self) -> list[Route]:
        return [
            self.graph.endpoint("GET /me", "/me", self.me),
            self.graph.endpoint("GET /users/{id}", "/users/{id}", self.user),
        ]

    @staticmethod
    def _user_json(request: Request, user: User, context: str) -> dict[str, Any]:
        given, _, surname = user.display_name.partition(" ")
        return {
            "@odata.context": odata.context(request, context),
            "businessPhones": [],
            "displayName": user.display_name,
            "givenName": given,
            "jobTitle": None,
            "mail": user.upn,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-US",
            "surname": surname,
            "userPrincipalName": user.upn,
            "id": user.oid,
        }

    def _user_answer(self, request: Request, user: User) -> dict[str, Any]:
        """The user, shaped by `$select`: only the selected properties and the annotations; as in the
        user-get page's example, `id` only when selected."""
        body = self._user_json(request, user, "users/$entity")
        selected = odata.selected(request, "user", body)
        if selected is not None:
            body["@odata.context"] = with_projection(body["@odata.context"], selected)
        return odata.project(body, selected)

    async def me(self, request: Request, caller: Caller, request_id: str) -> Response:
        return self.graph.json(request, self._user_answer(request, caller.user), 200, request_id)

    async def user(self, request: Request, caller: Caller, request_id: str) -> Response:
        key = request.path_params["id"]
        user = caller.tenant.user_by_oid(key) or caller.tenant.user_by_upn(key)
        if user is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
            )
        return self.graph.json(request, self._user_answer(request, user), 200, request_id)
