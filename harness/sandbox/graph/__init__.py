"""Microsoft Graph v1.0 for Teams chat: users, chats, messages, online meetings, teams and channels,
subscriptions; a module per resource, `service` for who may call, `odata` for what they share.

Wire contract: docs/contracts/graph.md. Where Microsoft documents no answer (a message over the size
limit, a malformed body, `$top` over 50, an unknown chat on send), the sandbox answers and marks the
answer emulator-defined.

Paths and query strings are read the way Graph reads them (docs/contracts/graph.md §8): empty path
segments are ignored (`/v1.0//me`, what Microsoft's Python SDK sends), system query option names are
case-insensitive (`$TOP`), each GET route accepts the options its reference page lists, and
`$select`, `$expand` and `$count` shape the answer.
"""

from harness.sandbox.graph.endpoints import PERMISSIONS, QUERY_OPTIONS
from harness.sandbox.graph.messages import MAX_MESSAGE_BYTES
from harness.sandbox.graph.odata import (
    DEFAULT_TOP,
    GraphError,
    GraphPaths,
    Query,
    collapse_empty_segments,
    graph_time,
    with_projection,
)
from harness.sandbox.graph.service import Caller, Graph

__all__ = [
    "DEFAULT_TOP",
    "MAX_MESSAGE_BYTES",
    "PERMISSIONS",
    "QUERY_OPTIONS",
    "Caller",
    "Graph",
    "GraphError",
    "GraphPaths",
    "Query",
    "collapse_empty_segments",
    "graph_time",
    "with_projection",
]
