"""Azure Communication Services Chat, as far as a Teams user's app meets it: create a chat thread, send
and list its messages (`/chat/threads...`, api-versions 2021-09-07 and 2024-03-07, the one azure-communication-chat 1.3
speaks), authenticated by an ACS token.

What it models (docs/contracts/identity.md §9):

- An ACS user whose token has the `chat` scope creates threads and posts to the threads it is in
  [doc: https://learn.microsoft.com/azure/communication-services/quickstarts/chat/get-started].
- A **Teams user's** ACS token (from `teamsUser/:exchangeAccessToken`) is refused: ACS Chat is not for
  Teams users, who chat through Microsoft Graph. Microsoft says so in prose ("you can't use Azure
  Communication Services to ... chat as Teams user. You can use Graph API for this scenario",
  https://github.com/microsoft/MicrosoftCloud/issues/29, answered by the ACS Teams-interop program
  manager; https://learn.microsoft.com/azure/communication-services/concepts/teams-endpoint lists Graph
  as the chat API for Teams users). The answer's body is not documented: the sandbox answers 403
  `Forbidden` with the text ACS Chat gives an initiator without permission, as third parties report it
  (https://github.com/Azure/Communication/issues/600) — **emulator-defined**.
- A token without the `chat` scope gets the same 403 (emulator-defined: no source shows that answer).
"""

from __future__ import annotations

from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.sandbox.context import SandboxContext
from harness.sandbox.http import Service, ServiceError, json_object
from harness.wire import contract

API_VERSIONS = ("2021-09-07", "2024-03-07")  # stable versions; azure-communication-chat 1.3.0 sends 2024-03-07
NO_PERMISSION = "The initiator doesn't have the permission to perform the requested operation."
TEAMS_USER_REFUSED = (
    "a Teams user's ACS token is refused by ACS Chat: Microsoft states Teams users chat through Graph "
    "(microsoft/MicrosoftCloud#29); the body is as third parties report it (Azure/Communication#600)"
)


class ChatError(ServiceError):
    """ACS's error envelope `{"error": {"code", "message"}}` (the Chat API's CommunicationErrorResponse)."""

    def __init__(self, status: int, code: str, message: str, *, emulated: str = "") -> None:
        super().__init__(status, message, emulated=emulated)
        self.code = code

    def render(self, request: Request, service: Any, **options: Any) -> Response:
        body = {"error": {"code": self.code, "message": self.message}}
        return self.marked(JSONResponse(body, status_code=self.status, headers=service.headers()))


class AcsChat(Service):
    """ACS Chat on the ACS resource's host: threads and their messages, per ACS identity."""

    workload = "acs"  # the same resource as the identity routes (faults and the report count it there)
    hosts = (f"*{contract.ACS_HOST_SUFFIX}",)
    prefixes = ("/chat/",)

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        self.threads: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        with self.ctx.lock:
            self.threads.clear()

    def routes(self) -> list[Route]:
        return [
            self.route("/chat/threads", self.create_thread, ["POST"]),
            self.route("/chat/threads/{thread}/messages", self.send_message, ["POST"]),
            self.route("/chat/threads/{thread}/messages", self.list_messages, ["GET"]),
        ]

    def headers(self) -> dict[str, str]:
        return {"MS-CV": self.ctx.ids.next("ms-cv"), "api-supported-versions": ", ".join(API_VERSIONS)}

    def _caller(self, request: Request) -> str:
        """The ACS identity calling (its `8:acs:` id), or the refusal its token earns."""
        if request.query_params.get("api-version") not in API_VERSIONS:
            raise ChatError(
                400,
                "UnsupportedApiVersion",
                f"The api-version '{request.query_params.get('api-version')}' is not supported.",
                emulated="the text for an unsupported api-version on ACS Chat",
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            claims = self.ctx.acs_signer.verify(token.strip()) if scheme.lower() == "bearer" else None
        except jwt.InvalidTokenError:
            claims = None
        if not claims or int(claims.get("exp", 0)) <= self.ctx.epoch():
            raise ChatError(
                401, "Unauthorized", "The access token is not valid.", emulated="ACS Chat's 401 body is not documented"
            )
        if claims.get("tid") or str(claims.get("skypeid", "")).startswith("orgid:"):  # a Teams user's token
            raise ChatError(403, "Forbidden", NO_PERMISSION, emulated=TEAMS_USER_REFUSED)
        if "chat" not in str(claims.get("acsScope", "")).split(","):
            raise ChatError(
                403,
                "Forbidden",
                NO_PERMISSION,
                emulated="the answer to a token without the chat scope is not documented",
            )
        return f"8:{claims['skypeid']}"

    async def create_thread(self, request: Request) -> Response:
        caller = self._caller(request)
        body = json_object(await request.body())
        if body is None or not isinstance(body.get("topic"), str) or not body["topic"]:
            raise ChatError(400, "BadRequest", "The topic is required.", emulated="ACS Chat's text for a missing topic")
        members = [caller]
        for participant in body.get("participants") or []:
            raw = (
                (participant.get("communicationIdentifier") or {}).get("rawId")
                if isinstance(participant, dict)
                else None
            )
            if isinstance(raw, str) and raw not in members:
                members.append(raw)
        thread_id = f"19:acsV1_{self.ctx.ids.next('acs-chat-thread').replace('-', '')}@thread.v2"
        created = self.ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.ctx.lock:
            self.threads[thread_id] = {"topic": body["topic"], "members": members, "messages": [], "created": created}
        thread = {
            "id": thread_id,
            "topic": body["topic"],
            "createdOn": created,
            "createdByCommunicationIdentifier": {"rawId": caller, "communicationUser": {"id": caller}},
        }
        return JSONResponse({"chatThread": thread}, status_code=201, headers=self.headers())

    def _thread(self, request: Request, caller: str) -> dict[str, Any]:
        thread = self.threads.get(request.path_params["thread"])
        if thread is None or caller not in thread["members"]:
            raise ChatError(403, "Forbidden", NO_PERMISSION, emulated="a thread unknown to the caller")
        return thread

    async def send_message(self, request: Request) -> Response:
        caller = self._caller(request)
        thread = self._thread(request, caller)
        body = json_object(await request.body())
        if body is None or not isinstance(body.get("content"), str):
            raise ChatError(400, "BadRequest", "The content is required.", emulated="ACS Chat's text for no content")
        message_id = str(1_700_000_000_000 + len(thread["messages"]) + 1)
        with self.ctx.lock:
            thread["messages"].append(
                {
                    "id": message_id,
                    "type": body.get("type") or "text",
                    "sequenceId": str(len(thread["messages"]) + 1),
                    "version": message_id,
                    "content": {"message": body["content"]},
                    "senderDisplayName": body.get("senderDisplayName") or "",
                    "createdOn": self.ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "senderCommunicationIdentifier": {"rawId": caller, "communicationUser": {"id": caller}},
                }
            )
        return JSONResponse({"id": message_id}, status_code=201, headers=self.headers())

    async def list_messages(self, request: Request) -> Response:
        caller = self._caller(request)
        thread = self._thread(request, caller)
        return JSONResponse({"value": list(reversed(thread["messages"]))}, headers=self.headers())
