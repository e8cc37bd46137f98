"""The specification under test: the "Supported use cases" table of the source document
(docs/source-table.md), in table order, and its webinar footnote."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    number: int
    scenario: str
    supported: bool
    area: str
    footnote: str | None = None


WEBINAR_FOOTNOTE = (
    "Teams users may join a Teams webinar. However, the presenter and attendee roles aren't honored for "
    "Teams users. Thus Teams users on Azure Communication Services SDKs could perform actions not intended "
    "for attendees, such as screen sharing, turning their camera on/off, or unmuting themselves if your "
    "application provides UX for those actions."
)

ROWS: tuple[Row, ...] = (
    Row(1, "Make a voice-over-IP (VoIP) call to Teams user", True, "calling"),
    Row(2, "Make a phone (PSTN) call", True, "calling"),
    Row(3, "Accept incoming voice-over-IP (VoIP) call for Teams user", True, "calling"),
    Row(4, "Accept incoming phone (PSTN) for Teams user", True, "calling"),
    Row(5, "Join Teams meeting", True, "calling"),
    Row(6, "Join channel Teams meeting", True, "calling"),
    Row(7, "Join Teams webinar [1]", True, "calling", WEBINAR_FOOTNOTE),
    Row(8, "Join Teams live events", False, "calling"),
    Row(9, "Join Teams meeting scheduled in an application for personal use", False, "calling"),
    Row(10, "Join Teams 1:1 or group call", False, "calling"),
    Row(11, "Send a message to 1:1 chat, group chat or Teams meeting chat", True, "chat"),
    Row(12, "Get messages from 1:1 chat, group chat or Teams meeting chat", True, "chat"),
)


def row(number: int) -> Row:
    return ROWS[number - 1]
