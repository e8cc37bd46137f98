"""Chat as a Teams user, as scenarios drive it: sign in for Graph, share a chat, send, poll, page.

Rows 11 and 12 of the source table. Each method returns an Observation built from a real Graph
answer; checks are functions returning (passed, detail).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.client.auth import run_sign_ins
from harness.client.graph import GRAPH_SCOPES, MARKER_PREFIX, ChatMessage, GraphClient, GraphResult, MarkerSource, Sent
from harness.client.identity import entra_credential
from harness.conformance.flows import observe
from harness.conformance.flows.identity import sign_in_observation
from harness.conformance.verdicts import Observation, ObservationLog
from harness.core.config import Tenant
from harness.core.prerequisites import MissingPrerequisite, token_wait

KINDS = ("one-on-one", "group", "meeting", "channel")
EXPORT_STAGE = "getAllMessages"
THIRD_MEMBER = "lynne"  # a group chat has a third member who never needs to sign in
MISSING_SCOPE = re.compile(r"API requires one of '([^']+)'")


# A 403 whose message names a policy (chat turned off by the messaging policy): the diagnosis follows the message.
MESSAGING_POLICY = re.compile(r"messaging policy|chat is (turned )?off|turned off .*by (the|a|its) .*policy", re.I)


# Graph refusals that share a status with others but not a cause (docs/contracts/graph.md §9): each is told
# by its message, which names the cause, and gets its own remedy.
NO_LICENCE = re.compile(r"licen[cs]e information|valid Office ?365 licen[cs]e|not licensed", re.I)
IMPORT_ONLY = re.compile(r"application-only context only for import", re.I)
PROTECTED_API = re.compile(r"Protected API access", re.I)
EXPORT_API = re.compile(r"/getAllMessages$", re.I)


def _export_refusal(result: GraphResult) -> tuple[str, str] | None:
    """getAllMessages (the Teams export API) refused: application-only, protected, metered."""
    if result.status == 402:
        return (
            "a metered Teams API refused for payment: evaluation-mode capacity spent, model=A without the licences it "
            "needs, or no Azure billing set up for the app",
            "pass model=A (security and compliance apps, users licensed for it) or model=B and set up billing for the "
            "app (https://learn.microsoft.com/graph/teams-licenses); read less often (delta, change notifications)",
        )
    if result.status != 403:
        return None
    if result.message and PROTECTED_API.search(result.message):
        return (
            "getAllMessages is a protected API and the app has not been approved for it",
            "request protected-API access for the app (https://aka.ms/teamsgraph/requestaccess, see "
            "https://learn.microsoft.com/graph/teams-protected-apis) and call it with an app-only token and "
            "model=A or model=B; a Teams user's app reads each chat with GET /chats/{id}/messages instead",
        )
    return (
        "getAllMessages (the Teams export API) takes application permissions only: a user's delegated token "
        "cannot call it",
        "read the user's chats with GET /chats/{id}/messages (delegated Chat.Read); export belongs to an app-only "
        "service with protected-API approval and model=A or model=B",
    )


# A 403 for a subscription over Graph's quota (one per chat and app; docs/contracts/graph.md §4).
SUBSCRIPTION_QUOTA = re.compile(r"subscription quota", re.I)


def graph_diagnosis(result: GraphResult) -> tuple[str | None, str | None]:
    """What a Graph rejection means and how to fix it."""
    if EXPORT_API.search(result.path) and (export := _export_refusal(result)):
        return export
    if result.status == 401 and result.message and IMPORT_ONLY.search(result.message):
        return (
            "an app-only token cannot post chat messages: Graph allows that only to import history into a chat or "
            "channel in migration mode",
            "post as the user, with a delegated token carrying ChatMessage.Send (sign the user in); app-only posting "
            "is for migration only (Teamwork.Migrate.All: "
            "https://learn.microsoft.com/microsoftteams/platform/graph-api/import-messages/import-external-messages-to-teams)",
        )
    if result.status == 403 and result.message and NO_LICENCE.search(result.message):
        # Graph says why: the user's licence, not membership. Another chat would fail the same way.
        return (
            "the user has no licence that includes Microsoft Teams (Graph could not find one for them)",
            "assign the user a Microsoft 365 or Office 365 licence with Microsoft Teams (Microsoft 365 admin center > "
            "Users > Active users > Licenses and apps), let it take effect, and sign in again",
        )
    if result.status == 403 and result.message and (missing := MISSING_SCOPE.search(result.message)):
        needed = [p.strip() for p in missing.group(1).split(",")]
        return (
            f"the token lacks the delegated permission this call needs ({' or '.join(needed)})",
            f"add the Microsoft Graph delegated permission {needed[0]} to the app registration (API permissions), "
            "grant admin consent, and sign in again",
        )
    if result.status == 403 and result.message and MESSAGING_POLICY.search(result.message):
        # Graph says why: a Teams policy, not membership. Its remedy is an admin's, not another chat.
        return (
            "a Teams messaging policy turns chat off for this user",
            "assign the user a messaging policy with chat on (Teams admin center > Messaging policies); "
            "where chat is off on purpose, hide chat for that user in your app",
        )
    if result.status == 403 and result.message and SUBSCRIPTION_QUOTA.search(result.message):
        return (
            "over the subscription quota: the app already holds the subscriptions Graph allows for this resource",
            "reuse the existing subscription (GET /subscriptions) or delete it before subscribing again; after an "
            "ambiguous failure, list before creating again",
        )
    known = {
        401: ("Graph did not accept the access token", "sign in again for https://graph.microsoft.com"),
        403: ("the user is not a member of this chat or team, or lost access", "use a chat the user belongs to"),
        404: ("the chat, team or channel does not exist", "check the id"),
        413: ("the message is over the ~28 KB Teams limit", "send smaller messages"),
        429: ("throttled beyond the retry budget", "slow down: Teams allows 20 chat messages a second per app"),
    }
    return known.get(result.status or 0, (None, None))


def graph_observation(result: GraphResult, stage: str, **evidence: object) -> Observation:
    observed = observe.answer(
        result,
        stage,
        {k: v for k, v in evidence.items() if v not in (None, [], "")},
        allowed=result.ok,
        status=result.status,
        code=result.code,
        message=result.message,
        found=None if result.ok else graph_diagnosis(result),
        retries=result.retries,
    )
    if result.transport_error and not result.ok:  # a rejection's transport failure, after the retries
        observed.evidence["transport_error"] = result.transport_error
    return observed


@dataclass
class ChatFlow(ObservationLog):
    tenant: Tenant
    markers: MarkerSource = field(default_factory=MarkerSource)
    sleep: Callable[[float], None] = time.sleep
    clients: dict[str, GraphClient] = field(default_factory=dict)
    oids: dict[str, str] = field(default_factory=dict, repr=False)
    observations: list[Observation] = field(default_factory=list)
    path: str | None = None  # where the shared conversation's messages live
    sent: list[Sent] = field(default_factory=list)
    listing: list[ChatMessage] = field(default_factory=list)
    pages: int = 0

    def client(self, alias: str) -> GraphClient | None:
        """A Graph client signed in as `alias` (None, with the rejection recorded, if sign-in fails)."""
        if alias in self.clients:
            return self.clients[alias]
        signed = run_sign_ins().with_password(self.tenant, alias, GRAPH_SCOPES)  # once per run (its token cache)
        if not signed.ok:
            self._record(sign_in_observation(signed))
            return None
        self.oids[alias] = signed.oid or ""
        self.clients[alias] = GraphClient(
            self.tenant,
            str(signed.access_token),
            sleep=self.sleep,
            markers=self.markers,
            reacquire=lambda: self._reacquire(alias),
        )
        return self.clients[alias]

    def _reacquire(self, alias: str) -> str | None:
        """Graph said `alias`'s token had expired: a new one, as an app gets it (MSAL's refresh token)."""
        signed = run_sign_ins().again(self.tenant, alias, GRAPH_SCOPES)
        return str(signed.access_token) if signed.ok else None

    # -- a conversation that outlives the sign-in ------------------------------------------------------

    def outlive_token(self, alias: str, max_wait_s: float) -> None:
        """Wait until `alias`'s Graph token has expired, by the service's clock (the sandbox's model clock
        moves on instead; a replay does not wait). Longer than `max_wait_s`: a SKIP naming the setting."""
        client = self.client(alias)
        assert client is not None, f"{alias} could not sign in"
        now = client.server_now().timestamp()
        self.sleep(token_wait(f"{alias}'s Graph token", client.token_expiries[-1], now, max_wait_s))

    def token_renewed(self, alias: str) -> tuple[bool, str]:
        """The send after the expiry went out with a second token, one that expires later than the first."""
        client = self.clients.get(alias)
        expiries = client.token_expiries if client is not None else []
        renewed = len(expiries) >= 2 and (expiries[-1] or 0) > (expiries[0] or 0)
        return renewed, f"token expiries in use, in order: {expiries}"

    def oid(self, client: GraphClient, alias: str) -> str | None:
        if alias not in self.oids:
            result = client.user(self.tenant.user(alias).upn)
            if not result.ok:
                self._record(graph_observation(result, "look up user"))
                return None
            self.oids[alias] = result.body["id"]
        return self.oids[alias]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    # -- set-up ------------------------------------------------------------------------------------

    def share(self, kind: str, owner: str, other: str) -> Observation:
        """`owner` creates a conversation of `kind` that `other` is in."""
        client = self.client(owner)
        if client is None:
            return self.last
        other_oid = self.oid(client, other)
        if other_oid is None:
            return self.last
        if kind == "channel":
            return self._share_channel(client, other_oid)
        if kind == "meeting":
            result = client.create_meeting("cte conformance meeting", [other_oid])
            if result.ok:
                self.path = client.messages_path(chat_id=result.body["chatInfo"]["threadId"])
            return self._record(graph_observation(result, "create meeting"))
        members = [self.oids[owner], other_oid]
        if kind == "group":
            third = self.oid(client, THIRD_MEMBER)
            if third is None:
                return self.last
            members.append(third)
        result = client.create_chat(
            "oneOnOne" if kind == "one-on-one" else "group", members, "cte conformance" if kind == "group" else None
        )
        if result.ok:
            self.path = client.messages_path(chat_id=result.body["id"])
        return self._record(
            graph_observation(
                result, "create chat", chat_type=result.body.get("chatType") if isinstance(result.body, dict) else None
            )
        )

    @property
    def chat_id(self) -> str | None:
        """The shared chat's id (its thread id), once one was made."""
        if self.path and self.path.startswith("chats/"):
            return self.path.split("/")[1]
        return None

    def share_with_external(self, owner: str, upn: str) -> Observation:
        """A 1:1 chat with someone of another organisation (external access decides)."""
        client = self.client(owner)
        if client is None:
            return self.last
        result = client.create_chat("oneOnOne", [self.oids[owner], upn])
        if result.ok:
            self.path = client.messages_path(chat_id=result.body["id"])
        return self._record(graph_observation(result, "create chat"))

    def _share_channel(self, client: GraphClient, other_oid: str) -> Observation:
        teams = client.joined_teams()
        if not teams.ok or not teams.body.get("value"):
            return self._record(graph_observation(teams, "find a team"))
        team_id = teams.body["value"][0]["id"]
        channels = client.channels(team_id)
        if not channels.ok or not channels.body.get("value"):
            return self._record(graph_observation(channels, "find a channel"))
        general = next((c for c in channels.body["value"] if c["displayName"] == "General"), channels.body["value"][0])
        self.path = client.messages_path(team_id=team_id, channel_id=general["id"])
        return self._record(graph_observation(channels, "find a channel"))

    # -- what a partner's app gets wrong -------------------------------------------------------------

    def app_client(self) -> GraphClient:
        """A Graph client with the app's own (app-only) token: client credentials for https://graph.microsoft.com."""
        spec = self.tenant.app_credential or self.tenant.acs_credential
        if spec is None:
            raise MissingPrerequisite(
                f"profile {self.tenant.profile!r} names no confidential credential of the app for an app-only Graph "
                "token; add [app] client_secret_env naming a variable that holds the app's client secret"
            )
        if "app" not in self.clients:
            key = (
                "app",
                spec.kind,
                spec.authority_host,
                spec.tenant_id,
                spec.client_id,
                str(self.tenant.ca_bundle or ""),
            )
            token = run_sign_ins().app_token(
                key, lambda: entra_credential(self.tenant, spec), "https://graph.microsoft.com/.default"
            )
            self.clients["app"] = GraphClient(self.tenant, token, sleep=self.sleep, markers=self.markers)
        return self.clients["app"]

    def get_all_messages(self, alias: str, *, as_app: bool = False) -> Observation:
        """`alias`'s chat messages through the Teams export API, with `alias`'s delegated token or the app's own."""
        client = self.app_client() if as_app else self.client(alias)
        if client is None:
            return self.last
        user_id = self.oids.get(alias) or self.tenant.user(alias).oid or self.tenant.user(alias).upn
        result = client.get_all_messages(user_id=user_id)
        return self._record(graph_observation(result, EXPORT_STAGE, token="app-only" if as_app else "delegated"))

    def send_as_app(self) -> Observation:
        """Post to the shared chat with the app's own token, as a daemon or bot back end would."""
        if self.blocked:
            return self.blocking
        assert self.path, "share a chat before sending"
        sent = self.app_client().send(self.path, "Hello from the app itself")
        self.sent.append(sent)
        return self._record(graph_observation(sent.result, "send", token="app-only"))

    # -- send and get ------------------------------------------------------------------------------

    def send(
        self,
        alias: str,
        content: str = "Hello from the conformance harness",
        content_type: str = "text",
        count: int = 1,
    ) -> Observation:
        if self.blocked:
            return self.blocking
        client = self.client(alias)
        if client is None:
            return self.last
        assert self.path, "share a chat before sending"
        for _ in range(count):
            sent = client.send(self.path, content, content_type)
            self.sent.append(sent)
            if not sent.result.ok:
                break
        observation = graph_observation(
            self.sent[-1].result,
            "send",
            messages_sent=sum(1 for s in self.sent if s.result.ok),
            attempts=max(s.attempts for s in self.sent),
            recovered_by_listing=any(s.recovered_by_listing for s in self.sent) or None,
        )
        if retries := [r for s in self.sent for r in s.result.retries]:
            observation.evidence["retries"] = retries
        return self._record(observation)

    def edit_last(self, alias: str, content: str = "Edited by the conformance harness") -> Observation:
        """Edit the last message sent (the sender edits their own)."""
        if self.blocked:
            return self.blocking
        client = self.clients[alias]
        sent = self.sent[-1]
        assert sent.message and self.path
        result = client.update_message(self.path, sent.message.id, content)
        return self._record(graph_observation(result, "edit"))

    def delete_last(self, alias: str) -> Observation:
        if self.blocked:
            return self.blocking
        client = self.clients[alias]
        sent = self.sent[-1]
        assert sent.message and self.path and self.path.startswith("chats/")
        chat_id = self.path.split("/")[1]
        result = client.soft_delete_message(self.oids[alias], chat_id, sent.message.id)
        return self._record(graph_observation(result, "delete"))

    def poll(self, alias: str, top: int | None = None) -> Observation:
        if self.blocked:
            return self.blocking
        client = self.client(alias)
        if client is None:
            return self.last
        assert self.path, "share a chat before polling"
        self.listing, pages = client.all_messages(self.path, top=top)
        self.pages = len(pages)
        failed = next((p for p in pages if not p.ok), None)
        result = failed or pages[-1]
        retries = [r for p in pages for r in p.retries]
        observation = graph_observation(result, "get", pages=len(pages), messages_listed=len(self.listing))
        if retries:
            observation.evidence["retries"] = retries
        return self._record(observation)

    # -- checks --------------------------------------------------------------------------------------

    def each_sent_once_newest_first(self) -> tuple[bool, str]:
        """Every message sent is in the listing exactly once, and in reverse order of sending."""
        markers = [s.marker for s in self.sent if s.result.ok]
        positions = []
        problems = []
        for marker in markers:
            hits = [i for i, m in enumerate(self.listing) if f"{MARKER_PREFIX}{marker}]" in m.content]
            if len(hits) != 1:
                problems.append(f"message {marker} listed {len(hits)} times")
            else:
                positions.append(hits[0])
        if not problems and positions != sorted(positions, reverse=True):
            problems.append("messages are not newest first")
        ids = [m.id for m in self.listing]
        if len(ids) != len(set(ids)):
            problems.append("a message id is listed twice")
        return not problems, "; ".join(problems) or f"{len(markers)} messages, each once, newest first"

    def content_intact(self) -> tuple[bool, str]:
        """What was listed is byte for byte what was posted (not what the service echoed back)."""
        posted = {s.marker: s.content for s in self.sent if s.result.ok}
        found = 0
        for message in self.listing:
            for marker, content in posted.items():
                if f"{MARKER_PREFIX}{marker}]" in message.content:
                    found += 1
                    if message.content != content:
                        return False, f"message {marker} came back changed"
        return found == len(posted), f"{found} of {len(posted)} messages compared, contents identical"
