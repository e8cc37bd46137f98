"""The real Calling SDK in recordings: every bridge call and its answer, and every page's SDK event
transcript, kept (scrubbed) beside the scenario's cassette as `<cassette>.calling-sdk.yaml`.

In record mode the browser driver's pages are wrapped so that what the SDK answered is written down;
in replay mode the driver gets pages that answer from the recording instead, with no browser at all,
and a call that differs from the recorded one (function or arguments, with identifiers and tokens
reduced to their kind, as the HTTP matcher does) stops the scenario with a one-line error that names
the cassette, the call and the command to re-record.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from harness.client.calling.browser import BridgeError
from harness.core.cassettes import CassetteError, CassetteMismatch, display_path, load_yaml, without_identities

FORMAT = 1
# How often the SDK asked the page's token refresher for a token during a call, or while time passed.
TOKEN_REFRESHES = "token_refreshes"


def sdk_cassette_path(cassette: Path) -> Path:
    return cassette.with_name(cassette.stem + ".calling-sdk.yaml")


def normalised(value: Any) -> str:
    return without_identities(json.dumps(value, sort_keys=True, ensure_ascii=False))


class RecordingPage:
    """A real SdkPage whose every bridge call is written down, with the times the SDK asked the page's
    token refresher for a token during it (a replay asks the refresher as often, at the same point)."""

    def __init__(self, page: Any, cassette: SdkCassette, index: int) -> None:
        self._page, self._cassette, self.index = page, cassette, index
        self.virtual_clock = page.virtual_clock
        self._refreshes = 0

    def expose_token_refresher(self, refresher: Callable[[], str | None]) -> None:
        def counted() -> str | None:
            self._refreshes += 1
            return refresher()

        self._page.expose_token_refresher(counted)

    def call(self, function: str, *args: Any, timeout_s: float = 90.0) -> dict[str, Any]:
        entry: dict[str, Any] = {"page": self.index, "call": function, "args": list(args)}
        before = self._refreshes
        try:
            entry["answer"] = self._page.call(function, *args, timeout_s=timeout_s)
        except BridgeError as err:  # kept too: replay then fails where the recording did
            entry["raised"] = str(err)
            raise
        finally:
            if self._refreshes > before:
                entry[TOKEN_REFRESHES] = self._refreshes - before
            self._cassette.calls.append(self._cassette.scrub(entry))
        return entry["answer"]

    def advance(self, ms: int) -> None:
        before = self._refreshes
        self._page.advance(ms)
        if self._refreshes > before:  # time passing made the SDK refresh its token: kept in its place
            self._cassette.calls.append({"page": self.index, "advanced": ms, TOKEN_REFRESHES: self._refreshes - before})

    def transcript(self) -> list[dict[str, Any]]:
        return self._page.transcript()

    def close(self) -> None:
        self._cassette.transcripts[self.index] = self._cassette.scrub(self._page.transcript())
        self._page.close()


class ReplayedPage:
    """A page that answers from the recording, in order; time passes instantly. Where the recorded SDK
    asked the page's token refresher for a token, the replay asks it as often (the refresher's own
    requests then come from the HTTP cassette)."""

    def __init__(self, cassette: SdkCassette, index: int) -> None:
        self._cassette, self.index = cassette, index
        self.virtual_clock = cassette.virtual_clock  # the driver waits as it did when recording
        self._refresher: Callable[[], str | None] | None = None

    def expose_token_refresher(self, refresher: Callable[[], str | None]) -> None:
        self._refresher = refresher

    def _refresh(self, times: Any) -> None:
        for _ in range(times if isinstance(times, int) and self._refresher is not None else 0):
            assert self._refresher is not None
            self._refresher()

    def call(self, function: str, *args: Any, timeout_s: float = 90.0) -> dict[str, Any]:
        recorded = self._cassette.next_entry(self.index, function, list(args))
        self._refresh(recorded.get(TOKEN_REFRESHES))
        return self._cassette.answer_of(recorded, function)

    def advance(self, ms: int) -> None:
        self._refresh(self._cassette.next_advance(self.index))

    def transcript(self) -> list[dict[str, Any]]:
        return list(self._cassette.transcripts.get(self.index, []))

    def close(self) -> None:
        return None


class SdkCassette:
    """One scenario's SDK recording: written in record mode, read in replay mode."""

    def __init__(self, cassette: Path, *, record: bool, scrub: Callable[[Any], Any], offline: bool = False) -> None:
        self.path, self.record, self.scrub = sdk_cassette_path(cassette), record, scrub
        self.offline, self.virtual_clock = offline, False
        self.live_tenant = False  # recorded against a live profile (no sandbox model beside the SDK)
        self.calls: list[dict[str, Any]] = []
        self.transcripts: dict[int, list[dict[str, Any]]] = {}
        self._pages = 0
        self._next = 0
        self._loaded = False
        self.diverged = False

    # -- replay ------------------------------------------------------------------------------------

    def load(self) -> SdkCassette:
        if self.record or self._loaded:
            return self
        where = display_path(self.path)
        if not self.path.is_file():
            raise CassetteMismatch(f"{where} does not exist: the real Calling SDK was not recorded for this scenario")
        try:
            data = load_yaml(self.path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as err:
            raise CassetteError(f"{where}: not a Calling SDK recording ({type(err).__name__})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("calls"), list):
            raise CassetteError(f"{where}: not a Calling SDK recording of format {FORMAT}")
        self.offline, self.virtual_clock = bool(data.get("offline")), bool(data.get("virtual_clock"))
        self.live_tenant = bool(data.get("live_tenant"))
        self.calls = [c for c in data["calls"] if isinstance(c, dict)]
        transcripts = data.get("transcripts") or {}
        if not isinstance(transcripts, dict) or not all(
            str(k).isdigit() and isinstance(v, list) for k, v in transcripts.items()
        ):
            raise CassetteError(f"{where}: its transcripts are not lists of SDK events by page number")
        self.transcripts = {int(k): v for k, v in transcripts.items()}
        self._loaded = True
        return self

    def next_advance(self, page: int) -> int:
        """The token refreshes recorded while `page`'s time passed at this point (0: none recorded here)."""
        recorded = self.calls[self._next] if self._next < len(self.calls) else {}
        if recorded.get("page") != page or "advanced" not in recorded:
            return 0
        self._next += 1
        times = recorded.get(TOKEN_REFRESHES)
        return times if isinstance(times, int) else 0

    def next_answer(self, page: int, function: str, args: list[Any]) -> dict[str, Any]:
        return self.answer_of(self.next_entry(page, function, args), function)

    def answer_of(self, recorded: dict[str, Any], function: str) -> dict[str, Any]:
        where = display_path(self.path)
        if isinstance(recorded.get("raised"), str):
            raise BridgeError(f"{recorded['raised']} (as recorded in {where})")
        answer = recorded.get("answer")
        if not isinstance(answer, dict):
            raise CassetteError(f"{where}: call {self._next} ({function}) has no recorded answer")
        return answer

    def next_entry(self, page: int, function: str, args: list[Any]) -> dict[str, Any]:
        where, n = display_path(self.path), self._next + 1
        if self._next >= len(self.calls):
            self.diverged = True
            raise CassetteMismatch(f"{where}: call {n} ({function}) was not recorded")
        recorded = self.calls[self._next]
        wanted = (page, function, normalised(args))
        got = (recorded.get("page"), recorded.get("call"), normalised(recorded.get("args")))
        if wanted != got:
            self.diverged = True
            raise CassetteMismatch(
                f"{where}: call {n} is page {page} {function}{normalised(args)}, but the recording has page "
                f"{got[0]} {got[1]}{got[2]}"
            )
        self._next += 1
        return recorded

    # -- both --------------------------------------------------------------------------------------

    def open_page(self, real_page: Callable[[], Any] | None = None) -> RecordingPage | ReplayedPage:
        index, self._pages = self._pages, self._pages + 1
        if self.record:
            assert real_page is not None
            return RecordingPage(real_page(), self, index)
        return ReplayedPage(self.load(), index)

    def finish(self) -> None:
        """At the end of the scenario: record mode writes the file; replay checks every recorded call
        was asked for (a replay that stopped short went another way than the recording)."""
        if self.record:
            self.write()
        elif self._loaded and not self.diverged and self._next < len(self.calls):
            left = self.calls[self._next]
            raise CassetteMismatch(
                f"{display_path(self.path)}: the replay asked for {self._next} of {len(self.calls)} recorded calls; "
                f"the next was page {left.get('page')} {left.get('call')}"
            )

    def write(self) -> None:
        """Record mode, at the end of the scenario: the file, or none when the SDK was not used."""
        if not self.record:
            return
        if not self.calls:
            self.path.unlink(missing_ok=True)
            return
        document = {
            "format": FORMAT,
            "offline": self.offline,
            "virtual_clock": self.virtual_clock,
            "live_tenant": self.live_tenant,
            "calls": self.calls,
            "transcripts": {str(k): v for k, v in sorted(self.transcripts.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)  # written before the scenario's HTTP cassette
        self.path.write_text(yaml.safe_dump(document, sort_keys=True, allow_unicode=True), encoding="utf-8")
