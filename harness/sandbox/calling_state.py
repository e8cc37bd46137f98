"""What the calling model remembers: agents, calls, incoming calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Agent:
    id: str
    tenant: str
    oid: str


@dataclass
class Call:
    id: str
    agent: str | None  # None for a simulated peer (a Teams client, the phone network)
    direction: str
    peer: str  # who is on the other end: "8:orgid:<oid>" or "4:+1..."
    state: str = "None"
    history: list[str] = field(default_factory=list)
    end_reason: tuple[int, int] | None = None
    role: str = "Unknown"
    capabilities: dict[str, dict[str, Any]] = field(default_factory=dict)
    meeting_kind: str | None = None
    meeting: str | None = None  # the meeting's id, for a join
    member: str | None = None  # "8:orgid:<oid>" of the agent's user
    linked: str | None = None  # the call on the other end, when both ends are agents
    emulated: str = ""
    capability_changes: list[dict[str, Any]] = field(default_factory=list)  # capabilitiesChanged events

    def move(self, *states: str) -> None:
        for state in states:
            self.state = state
            self.history.append(state)

    def end(self, code: int, sub_code: int) -> None:
        if self.state != "Disconnected":
            self.move("Disconnecting", "Disconnected") if self.state == "Connected" else self.move("Disconnected")
        self.end_reason = (code, sub_code)


@dataclass
class Incoming:
    id: str
    agent: str
    caller: str  # "8:orgid:<oid>" or "4:+1..."
    caller_call: str | None  # the caller's Call, if the caller is an agent
    state: str = "Ringing"  # Ringing | Accepted | Rejected (here) | Ended (elsewhere: end_reason says how)
    end_reason: tuple[int, int] | None = None


@dataclass
class CallingState:
    agents: dict[str, Agent] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)
    incoming: dict[str, Incoming] = field(default_factory=dict)

    def clear(self) -> None:
        self.agents.clear()
        self.calls.clear()
        self.incoming.clear()
