"""Fixtures shared by all step modules, and the step modules themselves (pytest-bdd finds steps as fixtures)."""

from __future__ import annotations

import pytest

from harness.conformance.flows.backend import BackendFlow
from harness.conformance.flows.calling import CallingFlow
from harness.conformance.flows.chat import ChatFlow
from harness.conformance.flows.identity import IdentityFlow
from harness.conformance.flows.notifications import NotificationFlow
from harness.core.config import Tenant
from harness.core.prerequisites import MissingPrerequisite
from harness.steps.backend import *  # noqa: F403
from harness.steps.calling import *  # noqa: F403
from harness.steps.chat import *  # noqa: F403
from harness.steps.identity import *  # noqa: F403
from harness.steps.notifications import *  # noqa: F403
from harness.steps.policies import *  # noqa: F403


@pytest.fixture
def flow_tenant(tenant: Tenant) -> Tenant:
    """The tenant a scenario works in: the run's profile unless a Given step names another."""
    return tenant


@pytest.fixture
def identity_flow(flow_tenant: Tenant) -> IdentityFlow:
    return IdentityFlow(flow_tenant)


@pytest.fixture
def chat_flow(flow_tenant: Tenant, graph_pacing):  # type: ignore[no-untyped-def]
    flow = ChatFlow(flow_tenant, markers=graph_pacing.markers, sleep=graph_pacing.sleep)
    yield flow
    flow.close()


@pytest.fixture
def calling_flow(flow_tenant: Tenant, graph_pacing, scenario_cleanup, calling_sdk_cassette):  # type: ignore[no-untyped-def]
    flow = CallingFlow(
        flow_tenant, sleep=graph_pacing.sleep, on_cleanup=scenario_cleanup, sdk_cassette=calling_sdk_cassette
    )
    scenario_cleanup(flow.close)  # inside the scenario's cassettes: the SDK's transcripts are recorded too
    yield flow
    flow.close()


@pytest.fixture
def notification_flow(chat_flow: ChatFlow, notification_environment, graph_pacing, scenario_cleanup):  # type: ignore[no-untyped-def]
    flow = NotificationFlow(chat_flow, notification_environment, key_id=f"cte-{graph_pacing.markers.next()}")
    scenario_cleanup(flow.close)
    return flow


@pytest.fixture
def backend_flow(flow_tenant: Tenant, cte, graph_pacing):  # type: ignore[no-untyped-def]
    """The partner's token service under test (`cte backend check`); SKIP without one."""
    try:
        setup = cte.token_service()
    except MissingPrerequisite as err:
        pytest.skip(str(err))
    flow = BackendFlow(flow_tenant, setup, sleep=graph_pacing.sleep)
    yield flow
    flow.close()
