"""Two witnesses for every calling operation offline: the sandbox model and the real Calling SDK.

`cte run --calling browser` against a sandbox profile: each createTeamsCallAgent, startCall and join
goes to both. Where the SDK answers for itself (a synchronous CallingCommunicationError, its
client-side checks) the model must give the same code and subCode; the observation carries both
answers, and a disagreement is a failed check, so a FAIL. Where the SDK accepts and then cannot go
on offline, the row needs a live tenant (SKIP: it needs Microsoft's calling services), whatever the
model says, unless the model refused with one of the SDK's own client-side codes, which the SDK has
just shown it does not raise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from harness.client.calling.browser_driver import CLIENT_SIDE_SUBCODES, SDK, BrowserCallingDriver, sandbox_offline
from harness.client.calling.credential import TokenCredential
from harness.client.calling.protocol import (
    Call,
    CallingCommunicationError,
    CallingDriver,
    Locator,
    NeedsLiveTenant,
    Target,
    TeamsCallAgent,
)

MODEL = "sandbox model"

T = TypeVar("T")


def _attempt(operation: Callable[[], T]) -> tuple[T | None, Exception | None]:
    try:
        return operation(), None
    except (CallingCommunicationError, NeedsLiveTenant) as err:
        return None, err


def _said(err: Exception | None, accepted: str) -> str:
    if isinstance(err, CallingCommunicationError):
        return f"{err.code}/{err.sub_code} {err.message}"
    return accepted


def compare(what: str, model: Exception | None, sdk: Exception | None) -> None:
    """Raise what the two answers amount to; return when both accepted."""
    model_said = _said(model, f"{what} accepted")
    client_side = any(
        isinstance(e, CallingCommunicationError) and e.sub_code in CLIENT_SIDE_SUBCODES for e in (model, sdk)
    )
    if isinstance(sdk, CallingCommunicationError) and not client_side:
        # Not one of the SDK's own checks: offline, an error from the services it could not reach.
        raise sandbox_offline(
            f"offline, the {SDK} failed {what} with {sdk.code}/{sdk.sub_code} ({sdk.message}), "
            f"not one of its client-side checks ({MODEL}: {model_said})"
        )
    if isinstance(sdk, CallingCommunicationError):
        same = isinstance(model, CallingCommunicationError) and (model.code, model.sub_code) == (
            sdk.code,
            sdk.sub_code,
        )
        sdk.evidence = {**sdk.evidence, MODEL: model_said}
        sdk.agreement = (same, f"{SDK}: {sdk.code}/{sdk.sub_code}; {MODEL}: {model_said}")
        raise sdk
    if isinstance(model, CallingCommunicationError) and model.sub_code in CLIENT_SIDE_SUBCODES:
        sdk_said = str(sdk) if sdk else f"{what} accepted"
        model.evidence = {**model.evidence, MODEL: model_said, SDK: sdk_said}
        model.agreement = (False, f"{MODEL} refused client-side ({model.sub_code}); {SDK}: {sdk_said}")
        raise model
    if isinstance(sdk, NeedsLiveTenant):
        raise NeedsLiveTenant(f"{sdk} ({MODEL}: {model_said})")
    if model is not None:  # the model refused server-side what the SDK accepted: offline, unknowable
        raise sandbox_offline(f"{SDK} accepted {what}; only the service can refuse it ({MODEL}: {model_said})")


class CrossCheckedAgent:
    def __init__(self, model: TeamsCallAgent, sdk: TeamsCallAgent) -> None:
        self.model, self.sdk = model, sdk
        self.identity = sdk.identity
        self.evidence: dict[str, Any] = {MODEL: "TeamsCallAgent created", **getattr(sdk, "evidence", {})}

    def _both(self, what: str, on_model: Callable[[], Call], on_sdk: Callable[[], Call]) -> Call:
        model_call, model_err = _attempt(on_model)
        try:
            sdk_call, sdk_err = _attempt(on_sdk)
            compare(what, model_err, sdk_err)
        finally:
            if model_call is not None:
                with contextlib.suppress(Exception):
                    model_call.hang_up()
        assert sdk_call is not None  # both accepted: only a live SDK gets here, and it is not cross-checked
        return sdk_call

    def start_call(self, targets: Target | list[Target], thread_id: str | None = None) -> Call:
        return self._both(
            "startCall",
            lambda: self.model.start_call(targets, thread_id),
            lambda: self.sdk.start_call(targets, thread_id),
        )

    def join(self, locator: Locator) -> Call:
        return self._both("join", lambda: self.model.join(locator), lambda: self.sdk.join(locator))

    def wait_for_incoming_call(self, timeout: float = 30.0, caller: str | None = None) -> Any:
        return self.sdk.wait_for_incoming_call(timeout, caller)

    def token_in_use(self) -> int | None:
        return self.sdk.token_in_use()

    def dispose(self) -> None:
        try:
            self.model.dispose()
        finally:
            self.sdk.dispose()


class CrossCheckedDriver:
    """The sandbox model and the offline real SDK, side by side."""

    name = "browser (cross-checked with the sandbox model)"

    def __init__(self, model: CallingDriver, sdk: BrowserCallingDriver) -> None:
        self.model, self.sdk = model, sdk

    def create_teams_call_agent(self, credential: TokenCredential | str) -> CrossCheckedAgent:
        """Both clients hold the one credential: a token the SDK's refresher got is the model's too."""
        model_agent, model_err = _attempt(lambda: self.model.create_teams_call_agent(credential))
        sdk_agent = None
        try:
            sdk_agent, sdk_err = _attempt(lambda: self.sdk.create_teams_call_agent(credential))
            compare("createTeamsCallAgent", model_err, sdk_err)
        except Exception:
            for agent in (model_agent, sdk_agent):
                if agent is not None:
                    agent.dispose()
            raise
        assert model_agent is not None and sdk_agent is not None
        return CrossCheckedAgent(model_agent, sdk_agent)

    def pass_time(self, seconds: float) -> None:
        self.sdk.pass_time(seconds)
        self.model.pass_time(seconds)

    def phone_network(self) -> Any:
        return self.sdk.phone_network()

    def teams_client(self) -> Any:
        return self.sdk.teams_client()

    def close(self) -> None:
        try:
            self.model.close()
        finally:
            self.sdk.close()
