"""Hostile input against every sandbox endpoint: never a 5xx, always a JSON (or HTML) error body.

Bounded: a fixed number of examples per endpoint family, so CI time stays small.
"""

from __future__ import annotations

import json
import ssl
import string
from urllib.parse import quote

import httpx
import pytest
from azure.communication.identity._shared.policy import HMACCredentialsPolicy
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import HttpRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.client.auth import EntraSignIn
from harness.client.graph import GRAPH_SCOPES
from harness.conformance.flows.identity import IdentityFlow
from harness.core.config import load_profile
from harness.sandbox.server import Sandbox
from harness.wire import contract, transport

pytestmark = pytest.mark.integration

# Characters h11 accepts in a header value; other bytes fail client-side, before the sandbox sees them.
HEADER_SAFE = string.ascii_letters + string.digits + "._-~+/="
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
hostile_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["\ud800", "²", "9" * 5000, "' OR 1=1 --", "../../etc", "%00", "\x00", "{}", "[]", "null"]),
)
bodies = st.one_of(
    st.binary(max_size=500),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b"[" * 5000 + b"]" * 5000),
    st.just(b'{"topic": "\\ud800"}'),
)


@pytest.fixture(scope="module")
def world():
    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        tenant = load_profile("sandbox").for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")
        graph_token = str(EntraSignIn(tenant).with_password("adele", GRAPH_SCOPES).access_token)
        identity = IdentityFlow(tenant)
        identity.sign_in_with_password("adele")
        identity.exchange_token()
        verify = ssl.create_default_context(cafile=tenant.ca_bundle)
        with httpx.Client(verify=verify, timeout=20) as client:
            yield sandbox, tenant, client, graph_token, str(identity.exchange.token)


def assert_handled(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url}: {response.status_code}"
    assert response.status_code < 500, where
    if response.status_code >= 400 and "html" not in response.headers.get("content-type", ""):
        assert isinstance(response.json(), dict), f"{where} error body is not a JSON object"


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "grant_type",
                "client_id",
                "username",
                "password",
                "scope",
                "refresh_token",
                "device_code",
                "client_secret",
                "code",
            ]
        ),
        hostile_text,
        max_size=6,
    ),
    raw=st.binary(max_size=300),
    path=st.sampled_from(["token", "devicecode"]),
)
def test_entra_token_endpoints(world, fields, raw, path) -> None:
    _, tenant, client, _, _ = world
    url = f"{tenant.authority}/oauth2/v2.0/{path}"
    assert_handled(
        client.post(
            url, data={k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in fields.items()}
        )
    )
    assert_handled(client.post(url, content=raw, headers={"content-type": "application/x-www-form-urlencoded"}))


@FUZZ
@given(
    segment=hostile_text,
    form=st.dictionaries(st.sampled_from(["user_code", "username", "password"]), st.text(max_size=20), max_size=3),
)
def test_entra_discovery_realm_and_device_page(world, segment, form) -> None:
    _, _, client, _, _ = world
    safe = quote(segment.encode("utf-8", "surrogatepass").decode("utf-8", "replace"), safe="")
    for url in (
        f"https://login.microsoftonline.com/{safe}/v2.0/.well-known/openid-configuration",
        f"https://login.microsoftonline.com/common/userrealm/{safe}?api-version=1.0",
        f"https://login.microsoftonline.com/{safe}/discovery/v2.0/keys",
    ):
        assert_handled(client.get(url))
    assert_handled(client.post("https://login.microsoftonline.com/common/oauth2/deviceauth", data=form))


def signed(tenant, method: str, path: str, body: str) -> HttpRequest:
    request = HttpRequest(method, tenant.acs_endpoint + path)
    request.body = body
    HMACCredentialsPolicy(tenant.acs_endpoint, str(tenant.acs_access_key)).on_request(
        PipelineRequest(request, PipelineContext(None))
    )
    return request


@FUZZ
@given(
    body=json_values.map(json.dumps),
    path=st.sampled_from(
        [
            "/teamsUser/:exchangeAccessToken?api-version=2023-10-01",
            "/identities?api-version=2023-10-01",
            "/identities/8%3Aacs%3Ax/:issueAccessToken?api-version=2023-10-01",
            "/teamsUser/:exchangeAccessToken?api-version=x",
        ]
    ),
)
def test_acs_identity_signed_and_unsigned(world, body, path) -> None:
    _, tenant, client, _, _ = world
    request = signed(tenant, "POST", path, body)
    response = client.post(request.url, content=body.encode(), headers=dict(request.headers))
    assert_handled(response)
    assert response.headers["content-type"].startswith("application/json")
    assert_handled(client.post(tenant.acs_endpoint + path, content=body.encode()))


@FUZZ
@given(
    body=bodies,
    route=st.sampled_from(
        [
            "chats",
            "me/onlineMeetings",
            "subscriptions",
            "chats/19:x@thread.v2/messages",
            "chats/19:x@thread.v2/messages/1",
        ]
    ),
    method=st.sampled_from(["POST", "PATCH"]),
)
def test_graph_bodies(world, body, route, method) -> None:
    _, tenant, client, graph_token, _ = world
    response = client.request(
        method,
        f"{tenant.graph_base_url}/{route}",
        content=body,
        headers={"Authorization": f"Bearer {graph_token}", "Content-Type": "application/json"},
    )
    assert_handled(response)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["$top", "$orderby", "$filter", "$skiptoken", "$expand"]),
        hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass").decode("utf-8", "replace")),
        max_size=4,
    ),
    token=st.one_of(st.none(), st.text(alphabet=HEADER_SAFE, min_size=1, max_size=40)),
)
def test_graph_queries_and_tokens(world, params, token) -> None:
    sandbox, tenant, client, graph_token, _ = world
    chats = sandbox.ctx.directory.tenants["contoso"].chats
    chat = next(iter(chats))
    headers = {"Authorization": f"Bearer {graph_token if token is None else token}"}
    assert_handled(client.get(f"{tenant.graph_base_url}/chats/{chat}/messages", params=params, headers=headers))
    assert_handled(client.get(f"{tenant.graph_base_url}/me/chats", params=params, headers=headers))


@FUZZ
@given(
    body=bodies,
    route=st.sampled_from(
        [
            "agents/{agent}/calls",
            "calls/x/actions",
            "calls/x/lobby/admit",
            "pstn/calls",
            "simulated/meetings/x/options",
            "simulated/meetings/x/promote",
            "simulated/users/x/policies",
            "incomingCalls/x/accept",
        ]
    ),
)
def test_calling_bodies(world, body, route) -> None:
    _, tenant, client, _, acs_token = world
    headers = {"Authorization": f"Bearer {acs_token}", "Content-Type": "application/json"}
    agent = client.post(f"{tenant.calling_base_url}/agents", headers=headers).json()["agentId"]
    response = client.post(f"{tenant.calling_base_url}/{route.format(agent=agent)}", content=body, headers=headers)
    assert_handled(response)


def test_the_sandbox_survived(world) -> None:
    sandbox, tenant, client, _, _ = world
    assert client.get(f"{tenant.authority}/v2.0/.well-known/openid-configuration").status_code == 200
    assert contract.EMULATOR_DEFINED_HEADER
