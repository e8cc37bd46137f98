"""An Entra authority that is not login.microsoftonline.com: a tenant served on `https://localhost:PORT`
(`cte sandbox serve`), as a sovereign cloud or a private authority would be.

The tenant here is NOT routed with `transport.route_hosts`: its authority is the loopback URL itself,
so MSAL sees an unknown host with an explicit port. The network is blocked except for loopback ports
the test names, so nothing here can reach login.microsoftonline.com (instance discovery would).
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msal
import pytest
import requests
import trustme

from harness.client import auth
from harness.client.auth import EntraSignIn, ObservingSession
from harness.core.config import Tenant, load_profile
from harness.run.doctor import Doctor
from harness.sandbox.server import Sandbox
from harness.wire import transport
from harness.wire.tenant import TenantInfo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def info(sandbox: Sandbox) -> TenantInfo:
    return sandbox.tenant_info("contoso", canonical=False)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def loopback_only(sandbox: Sandbox, closed_port: int) -> Iterator[None]:
    """Only the sandbox's port (and the closed one, to be refused for real) are reachable."""
    with transport.block_network("test_custom_authority: loopback only", allow_ports={sandbox.port, closed_port}):
        yield


@pytest.fixture(autouse=True)
def user_realm_discovery_on_localhost() -> Iterator[None]:
    """MSAL skips user-realm discovery for a host it once saw answer 404 (a class-wide set): make sure
    it is asked here, so the password grant shows which port it went to."""
    domains = msal.authority.Authority._domains_without_user_realm_discovery
    had = "localhost" in domains
    domains.discard("localhost")
    yield
    if had:
        domains.add("localhost")


def loopback_tenant(info: TenantInfo, **changes: Any) -> Tenant:
    """A live-like tenant whose every URL is `https://localhost:PORT/...`, with no host routes."""
    tenant = load_profile("sandbox").for_sandbox(info, {}, "live")
    assert tenant.authority.startswith("https://localhost:") and not tenant.host_routes
    return dataclasses.replace(tenant, **changes)


def untrusting_ca_bundle(tmp_path: Path) -> str:
    """A CA that issued nothing the sandbox serves."""
    path = tmp_path / "other-ca.pem"
    trustme.CA(organization_name="not the sandbox's CA").cert_pem.write_to_path(str(path))
    return str(path)


def failed(checks: list[Any]) -> list[Any]:
    return [c for c in checks if c.status == "fail"]


# -- (a) the password grant, user-realm discovery included, on the authority's port -------------------


def test_password_grant_against_a_loopback_authority(sandbox: Sandbox, info: TenantInfo) -> None:
    sign_in = EntraSignIn(loopback_tenant(info))
    urls: list[str] = []
    sign_in.session.hooks["response"].append(lambda response, *args, **kwargs: urls.append(response.url))
    result = sign_in.with_password("adele")
    assert result.ok, result
    assert result.claims.get("tid") == info.tenant_id
    base = f"https://localhost:{sandbox.port}"
    assert any(url.startswith(f"{base}/common/userrealm/") for url in urls), urls
    assert all(url.startswith(f"{base}/") for url in urls), urls
    assert not any("/common/discovery/instance" in url for url in urls), "no instance discovery for this host"


def test_the_session_keeps_only_the_authoritys_host_on_its_port() -> None:
    sent: list[str] = []

    class Recorder(requests.adapters.BaseAdapter):
        def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
            sent.append(str(request.url))
            response = requests.Response()
            response.status_code, response.url, response.request = 200, str(request.url), request
            return response

        def close(self) -> None:
            pass

    session = ObservingSession(None, "https://login.example.test:8443/tenant-id")
    session.mount("https://", Recorder())
    session.mount("http://", Recorder())
    for url in (
        "https://login.example.test/common/userrealm/a@b.test?api-version=1.0",
        "https://LOGIN.example.test/tenant-id/v2.0/.well-known/openid-configuration",
        "https://login.example.test:9999/explicit",
        "https://other.example.test/elsewhere",
        "http://login.example.test/plain-http",
    ):
        session.get(url)
    assert sent == [
        "https://login.example.test:8443/common/userrealm/a@b.test?api-version=1.0",
        "https://login.example.test:8443/tenant-id/v2.0/.well-known/openid-configuration",
        "https://login.example.test:9999/explicit",
        "https://other.example.test/elsewhere",
        "http://login.example.test/plain-http",
    ]

    plain = ObservingSession(None, "https://login.microsoftonline.com/tenant-id")
    plain.mount("https://", Recorder())
    plain.get("https://login.microsoftonline.com/common/userrealm/a@b.test")
    assert sent[-1] == "https://login.microsoftonline.com/common/userrealm/a@b.test"


def test_instance_discovery_only_for_microsofts_own_authority_hosts() -> None:
    assert auth.is_well_known_authority("https://login.microsoftonline.com/tenant-id")
    assert auth.is_well_known_authority("https://login.microsoftonline.us/tenant-id")  # a national cloud MSAL knows
    assert not auth.is_well_known_authority("https://localhost:8443/tenant-id")
    assert not auth.is_well_known_authority("https://login.sovereign.example/tenant-id")


# -- (b) the doctor on that tenant ------------------------------------------------------------------


def test_doctor_on_a_loopback_authority_is_ready(info: TenantInfo) -> None:
    checks = Doctor(loopback_tenant(info), ["adele", "megan"]).run()
    assert not failed(checks), [(c.name, c.detail, c.remedy) for c in checks]
    names = [c.name for c in checks]
    assert names[:4] == ["authority reachable", "cloud", "sign-in of adele", "sign-in of megan"]
    assert "Graph scopes for chat and meetings" in names


# -- (c) a CA bundle that does not trust the authority's certificate ----------------------------------


def assert_names_the_untrusted_host(check: Any, hostport: str) -> None:
    assert check.status == "fail"
    assert "\n" not in check.detail and check.detail, check
    assert hostport in check.remedy and "ca_bundle" in check.remedy, check
    assert "login.microsoftonline.com" not in check.remedy, check


def test_doctor_names_the_host_whose_certificate_is_not_trusted(
    sandbox: Sandbox, info: TenantInfo, tmp_path: Path
) -> None:
    tenant = loopback_tenant(info, ca_bundle=untrusting_ca_bundle(tmp_path))
    checks = Doctor(tenant, ["adele"]).run()
    first = failed(checks)[0]
    assert first.name == "authority reachable"
    assert_names_the_untrusted_host(first, f"localhost:{sandbox.port}")


def test_an_untrusted_certificate_met_by_msal_is_a_failed_check_too(
    sandbox: Sandbox, info: TenantInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same failure inside MSAL (the sign-in), had the authority check not caught it first."""
    monkeypatch.setattr(Doctor, "authority", lambda self: True)
    tenant = loopback_tenant(info, ca_bundle=untrusting_ca_bundle(tmp_path))
    checks = Doctor(tenant, ["adele"]).run()
    first = failed(checks)[0]
    assert first.name == "sign-in of adele"
    assert_names_the_untrusted_host(first, f"localhost:{sandbox.port}")


def test_an_untrusted_certificate_of_the_acs_resource_names_that_host(
    sandbox: Sandbox, info: TenantInfo, tmp_path: Path
) -> None:
    """The ACS SDK (azure-core) meets it: the remedy names the ACS host, not the authority."""
    tenant = loopback_tenant(
        info, acs_endpoint=f"https://127.0.0.1:{sandbox.port}", ca_bundle=untrusting_ca_bundle(tmp_path)
    )
    doctor = Doctor(tenant, ["adele"])
    assert doctor.acs_resource() is False
    [check] = doctor.checks
    assert check.name == "ACS resource and access key"
    assert_names_the_untrusted_host(check, f"127.0.0.1:{sandbox.port}")


# -- (d) an authority nothing answers on ---------------------------------------------------------------


def test_an_unreachable_authority_is_a_failed_check(info: TenantInfo, closed_port: int) -> None:
    tenant = loopback_tenant(info, authority=f"https://localhost:{closed_port}/{info.tenant_id}")
    checks = Doctor(tenant, ["adele"]).run()
    assert [c.status for c in checks] == ["fail"], checks
    assert checks[0].name == "authority reachable"
    assert "\n" not in checks[0].detail
    assert f"localhost:{closed_port}" in checks[0].remedy
    assert "login.microsoftonline.com" not in checks[0].remedy


def test_an_unreachable_authority_met_by_msal_is_a_failed_check(
    info: TenantInfo, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Doctor, "authority", lambda self: True)
    tenant = loopback_tenant(info, authority=f"https://localhost:{closed_port}/{info.tenant_id}")
    checks = Doctor(tenant, ["adele"]).run()
    assert [c.name for c in failed(checks)] == ["sign-in of adele"], checks
    assert "\n" not in checks[-1].detail
    assert f"localhost:{closed_port}" in checks[-1].remedy


def test_any_exception_in_a_check_is_a_failed_check(info: TenantInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Doctor) -> bool:
        raise RuntimeError("something unforeseen\nover two lines")

    monkeypatch.setattr(Doctor, "authority", boom)
    checks = Doctor(loopback_tenant(info), ["adele"]).run()
    [last] = checks
    assert (last.name, last.status) == ("authority reachable", "fail"), checks
    assert last.detail == "RuntimeError: something unforeseen over two lines"
    assert last.remedy
