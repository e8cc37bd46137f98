"""Graph's endpoints as their v1.0 reference pages describe them: the delegated permissions each
accepts, the system query options each GET takes, what `$expand` may name. A new Graph endpoint adds
its entries here and its route and handler in the module of its resource.
"""

from __future__ import annotations

# Delegated permissions per route, from the v1.0 reference pages quoted in docs/contracts/graph.md.
READ_CHAT = ("Chat.ReadBasic", "Chat.Read", "Chat.ReadWrite")
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "GET /me": ("User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All"),
    "GET /users/{id}": ("User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All"),
    "POST /chats": ("Chat.Create", "Chat.ReadWrite"),
    "GET /me/chats": READ_CHAT,
    "GET /chats/{id}": READ_CHAT,
    "POST /chats/{id}/messages": ("ChatMessage.Send", "Chat.ReadWrite"),
    "GET /chats/{id}/messages": ("Chat.Read", "Chat.ReadWrite"),
    "GET /chats/{id}/messages/{id}": ("Chat.Read", "Chat.ReadWrite"),
    "PATCH /chats/{id}/messages/{id}": ("Chat.ReadWrite",),
    "POST /users/{id}/chats/{id}/messages/{id}/softDelete": ("ChatMessage.ReadWrite",),
    "POST /me/onlineMeetings": ("OnlineMeetings.ReadWrite",),
    "GET /me/joinedTeams": ("Team.ReadBasic.All", "TeamSettings.Read.All", "TeamSettings.ReadWrite.All"),
    "GET /teams/{id}/channels": ("Channel.ReadBasic.All", "ChannelSettings.Read.All", "ChannelSettings.ReadWrite.All"),
    "POST /teams/{id}/channels/{id}/messages": ("ChannelMessage.Send",),
    "GET /teams/{id}/channels/{id}/messages": ("ChannelMessage.Read.All",),
    # The Teams export API: application permissions only ("Delegated: Not supported" on both reference pages,
    # https://learn.microsoft.com/graph/api/chats-getallmessages?view=graph-rest-1.0 and
    # https://learn.microsoft.com/graph/api/channel-getallmessages?view=graph-rest-1.0); answered by the service.
    "GET /users/{id}/chats/getAllMessages": (),
    "GET /teams/{id}/channels/getAllMessages": (),
    # Subscriptions: the permission depends on the subscribed resource; checked by the handler.
    "POST /subscriptions": (),
    "GET /subscriptions": (),
    "PATCH /subscriptions/{id}": (),
    "DELETE /subscriptions/{id}": (),
    "POST /subscriptions/{id}/reauthorize": (),
}

# The options each GET route accepts, from its v1.0 reference page (docs/contracts/graph.md §8.3).
# Another system query option is answered 400, as Teams endpoints have been seen to do.
QUERY_OPTIONS: dict[str, frozenset[str]] = {
    "GET /me": frozenset({"select"}),
    "GET /users/{id}": frozenset({"select"}),
    "GET /me/chats": frozenset({"top", "skiptoken", "expand", "filter", "orderby", "select", "count"}),
    "GET /chats/{id}": frozenset({"expand"}),
    "GET /chats/{id}/messages": frozenset({"top", "skiptoken", "orderby", "filter", "count"}),
    "GET /chats/{id}/messages/{id}": frozenset(),
    "GET /me/joinedTeams": frozenset(),
    "GET /teams/{id}/channels": frozenset({"filter", "select"}),
    "GET /teams/{id}/channels/{id}/messages": frozenset({"top", "skiptoken", "expand", "count"}),
    "GET /subscriptions": frozenset(),
    "GET /users/{id}/chats/getAllMessages": frozenset({"top", "filter"}),
    "GET /teams/{id}/channels/getAllMessages": frozenset({"top", "filter"}),
}

# Routes that accept no delegated token at all (their pages list delegated permissions as not supported).
APPLICATION_ONLY = frozenset({"GET /users/{id}/chats/getAllMessages", "GET /teams/{id}/channels/getAllMessages"})
# Routes that post a message: with an app-only token Graph allows them for import (migration) only.
MESSAGE_POSTS = frozenset({"POST /chats/{id}/messages", "POST /teams/{id}/channels/{id}/messages"})
# Routes of the Teams workload, which needs the user to hold a licence with Teams (users and subscriptions
# are directory and notification routes: not gated).
TEAMS_WORKLOAD = frozenset(
    route
    for route in PERMISSIONS
    if ("/chats" in route or "/teams" in route or "joinedTeams" in route) and route not in APPLICATION_ONLY
)

# What `$expand` may name, per route.
EXPANDABLE: dict[str, tuple[str, ...]] = {
    "GET /me/chats": ("members", "lastMessagePreview"),
    "GET /chats/{id}": ("members",),
    "GET /teams/{id}/channels/{id}/messages": ("replies",),
}
