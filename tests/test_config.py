"""harness/core/config.py: every bad profile fails with one line naming the file, the field and the fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from harness.core import scrubbing
from harness.core.config import (
    MODES,
    PROFILE_DIR,
    SANDBOX_TENANTS,
    Profile,
    ProfileError,
    Secret,
    Tenant,
    find_profile,
    load_profile,
    resolve_mode,
    validate,
)
from harness.core.prerequisites import MissingPrerequisite

TENANT_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
CLIENT_ID = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
ACS_ENDPOINT = "https://my-resource.communication.azure.com"
ACCESS_KEY = "c2VjcmV0LWFjY2Vzcy1rZXktZm9yLXRlc3Rz"
PASSWORD = "Pw!very-secret-password-42"
UPN = "adele@contoso.example.com"

LIVE: dict[str, Any] = {
    "name": "my-tenant",
    "kind": "live",
    "tenant": {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "acs_endpoint": ACS_ENDPOINT},
    "secrets": {"acs_connection_string_env": "CTE_TEST_ACS"},
    "users": {"adele": {"upn": UPN, "password_env": "CTE_TEST_PASSWORD_ADELE"}},
}
ENV = {
    "CTE_TEST_ACS": f"endpoint={ACS_ENDPOINT}/;accesskey={ACCESS_KEY}",
    "CTE_TEST_PASSWORD_ADELE": PASSWORD,
}


# -- helpers -----------------------------------------------------------------------------------------


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    raise TypeError(value)


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """A tiny TOML writer for the shapes profiles have: scalars and nested tables."""
    lines = [f"{key} = {_value(value)}" for key, value in data.items() if not isinstance(value, dict)]
    for key, value in data.items():
        if isinstance(value, dict):
            name = f"{prefix}{key}"
            scalars = {k: v for k, v in value.items() if not isinstance(v, dict)}
            if scalars or not value:
                lines += ["", f"[{name}]", to_toml(scalars).rstrip("\n")]
            nested = {k: v for k, v in value.items() if isinstance(v, dict)}
            if nested:
                lines.append(to_toml(nested, f"{name}."))
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, data: dict[str, Any], name: str | None = None) -> Path:
    path = tmp_path / (name or f"{data.get('name', 'mine')}.toml")
    path.write_text(to_toml(data), encoding="utf-8")
    return path


def live(**changes: Any) -> dict[str, Any]:
    """LIVE with changes; a key 'a.b' reaches into a table, a value of None deletes."""
    data = copy.deepcopy(LIVE)
    for dotted, value in changes.items():
        *tables, key = dotted.split(".")
        target = data
        for table in tables:
            target = target[table]
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return data


def one_line(excinfo: pytest.ExceptionInfo[ProfileError], *needles: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "\r" not in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def test_to_toml_round_trips() -> None:
    import tomllib

    assert tomllib.loads(to_toml(LIVE)) == LIVE


# -- validate / load_profile: bad profiles ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        pytest.param({"name": "x"}, ["kind = None", 'set kind = "sandbox" or kind = "live"'], id="kind-missing"),
        pytest.param(
            {"name": "x", "kind": "cloud"}, ["kind = 'cloud'", 'set kind = "sandbox" or kind = "live"'], id="kind-bad"
        ),
        pytest.param(
            {"name": "x", "kind": "sandbox", "sandbox_tenant": "northwind"},
            ["sandbox_tenant = 'northwind'", "use one of", *SANDBOX_TENANTS],
            id="sandbox-tenant-unknown",
        ),
        pytest.param(live(tenant=None), ["[tenant]", "missing", "add it with", "tenant_id"], id="tenant-table-missing"),
        pytest.param(
            live(**{"tenant.tenant_id": None}), ["[tenant].tenant_id", "missing", "set it to"], id="tenant_id-missing"
        ),
        pytest.param(
            live(**{"tenant.client_id": None}), ["[tenant].client_id", "missing", "set it to"], id="client_id-missing"
        ),
        pytest.param(
            live(**{"tenant.acs_endpoint": None}),
            ["[tenant].acs_endpoint", "missing", "https://<resource>.communication.azure.com"],
            id="acs_endpoint-missing",
        ),
        pytest.param(
            live(**{"tenant.tenant_id": "   "}), ["[tenant].tenant_id", "missing", "set it to"], id="tenant_id-blank"
        ),
        pytest.param(
            live(**{"tenant.tenant_id": "contoso.onmicrosoft.com"}),
            ["[tenant].tenant_id", "'contoso.onmicrosoft.com'", "not a GUID", "set it to", "GUID"],
            id="tenant_id-not-guid",
        ),
        pytest.param(
            live(**{"tenant.client_id": "my-app"}),
            ["[tenant].client_id", "'my-app'", "not a GUID", "set it to"],
            id="client_id-not-guid",
        ),
        pytest.param(
            live(**{"tenant.acs_endpoint": "http://my-resource.communication.azure.com"}),
            ["[tenant].acs_endpoint", "not an https:// URL", "https://<resource>.communication.azure.com"],
            id="acs_endpoint-http",
        ),
        pytest.param(
            live(**{"tenant.acs_endpoint": "https://my-resource.communication.azure.com/path"}),
            ["[tenant].acs_endpoint", "'https://my-resource.communication.azure.com/path'", "not an https:// URL"],
            id="acs_endpoint-with-path",
        ),
        pytest.param(
            live(**{"tenant.authority_host": "login.microsoftonline.us"}),
            ["[tenant].authority_host", "not an https:// URL", "https://login.microsoftonline.us"],
            id="authority_host-no-scheme",
        ),
        pytest.param(
            live(**{"tenant.ca_bundle": "no-such-ca.pem"}),
            ["[tenant].ca_bundle", "'no-such-ca.pem' is not a file", "PEM file"],
            id="ca_bundle-missing",
        ),
        pytest.param(
            live(roles={"caller": "adele"}), ["[roles] has unknown role 'caller'", "licensed"], id="role-unknown"
        ),
        pytest.param(
            live(roles={"licensed": "zoe"}),
            ["[roles] licensed = 'zoe' names no user", "[users.zoe]", "adele"],
            id="role-not-a-user",
        ),
        pytest.param(
            live(misconfigured={"broken": "x"}), ["[misconfigured] has unknown name 'broken'"], id="misconfigured"
        ),
        pytest.param(
            live(secrets=None), ["[secrets]", "missing", "acs_connection_string_env"], id="secrets-table-missing"
        ),
        pytest.param(
            live(**{"secrets.acs_connection_string_env": None}),
            ["[secrets].acs_connection_string_env", "missing", "environment variable"],
            id="connection-string-env-missing",
        ),
        pytest.param(live(users=None), ["[users.<alias>]", "upn", "password_env"], id="users-missing"),
        pytest.param(live(users={}), ["[users.<alias>]", "upn", "password_env"], id="users-empty"),
        pytest.param(
            live(**{"users.adele.upn": None}), ["[users.adele].upn", "missing", 'upn = "user@domain"'], id="upn-missing"
        ),
        pytest.param(
            live(**{"users.adele.password_env": None}),
            ["[users.adele].password_env", "missing", 'password_env = "NAME_OF_ENV_VAR"'],
            id="password_env-missing",
        ),
        pytest.param(
            live(**{"users.adele.password": "hunter2"}),
            ["[users.adele].password", "secret", "remove it", "password_env"],
            id="password-in-file",
        ),
    ],
)
def test_bad_profile_file_fails_with_one_line(tmp_path: Path, data: dict[str, Any], needles: list[str]) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ProfileError) as excinfo:
        load_profile(str(path))
    one_line(excinfo, str(path), *needles)


def test_password_in_file_never_echoes_the_secret(tmp_path: Path) -> None:
    path = write(tmp_path, live(**{"users.adele.password": "hunter2-secret"}))
    with pytest.raises(ProfileError) as excinfo:
        load_profile(str(path))
    assert "hunter2-secret" not in one_line(excinfo, str(path))


def test_password_instead_of_password_env_is_reported_as_a_secret_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, live(**{"users.adele.password_env": None, "users.adele.password": "hunter2"}))
    with pytest.raises(ProfileError) as excinfo:
        load_profile(str(path))
    one_line(excinfo, str(path), "[users.adele].password", "secret", "remove it")


def test_validate_without_a_path_names_the_profile() -> None:
    with pytest.raises(ProfileError) as excinfo:
        validate({"kind": "nope"}, None)
    one_line(excinfo, "profile", "kind", 'set kind = "sandbox"')


def test_a_multi_line_value_still_gives_a_one_line_error(tmp_path: Path) -> None:
    path = write(tmp_path, live(**{"tenant.tenant_id": "not\na guid"}))
    with pytest.raises(ProfileError) as excinfo:
        load_profile(str(path))
    one_line(excinfo, str(path), "[tenant].tenant_id", "not a GUID")


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\nkind = \n[tenant\n', encoding="utf-8")
    with pytest.raises(ProfileError) as excinfo:
        load_profile(str(path))
    one_line(excinfo, str(path), "not valid TOML", "line", "fix the syntax")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "café"\nkind = "sandbox"\n'.encode("latin-1"))
    with pytest.raises(ProfileError) as excinfo:
        load_profile(str(path))
    one_line(excinfo, str(path), "UTF-8")


def test_missing_profile_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ProfileError) as excinfo:
        find_profile(str(path))
    one_line(excinfo, str(path), "does not exist", ".toml")


def test_unknown_profile_name_lists_the_available_ones() -> None:
    with pytest.raises(ProfileError) as excinfo:
        find_profile("no-such-profile")
    one_line(excinfo, "'no-such-profile'", "available:", "sandbox", "consent-missing", "CTE_PROFILE_PATH")


def test_profile_found_through_cte_profile_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, {"name": "elsewhere", "kind": "sandbox"}, "elsewhere.toml")
    monkeypatch.setenv("CTE_PROFILE_PATH", str(tmp_path))
    assert find_profile("elsewhere") == path
    assert load_profile("elsewhere").name == "elsewhere"


def test_unknown_profile_name_lists_profiles_on_cte_profile_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, {"name": "elsewhere", "kind": "sandbox"}, "elsewhere.toml")
    monkeypatch.setenv("CTE_PROFILE_PATH", str(tmp_path))
    with pytest.raises(ProfileError) as excinfo:
        find_profile("elsewher")
    one_line(excinfo, "available:", "elsewhere")


# -- Profile.for_live: secrets from the environment ----------------------------------------------------


def live_profile(tmp_path: Path, **changes: Any) -> Profile:
    return load_profile(str(write(tmp_path, live(**changes))))


@pytest.mark.parametrize(
    ("missing", "field"),
    [("CTE_TEST_PASSWORD_ADELE", "users.adele.password_env"), ("CTE_TEST_ACS", "secrets.acs_connection_string_env")],
)
def test_env_var_not_set(tmp_path: Path, missing: str, field: str) -> None:
    profile = live_profile(tmp_path)
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ProfileError) as excinfo:
        profile.for_live(env=env)
    message = one_line(excinfo, str(profile.path), f"[{field}]", missing, "not set", f"export {missing}=")
    assert PASSWORD not in message and ACCESS_KEY not in message


def test_env_var_set_but_empty_counts_as_not_set(tmp_path: Path) -> None:
    profile = live_profile(tmp_path)
    with pytest.raises(ProfileError) as excinfo:
        profile.for_live(env={**ENV, "CTE_TEST_PASSWORD_ADELE": ""})
    one_line(excinfo, "CTE_TEST_PASSWORD_ADELE", "not set")


@pytest.mark.parametrize(
    "connection_string",
    [f"endpoint={ACS_ENDPOINT}/", f"endpoint={ACS_ENDPOINT}/;key={ACCESS_KEY}", ACCESS_KEY, f"accesskey={ACCESS_KEY}"],
    ids=["no-accesskey", "wrong-key-name", "bare-key", "no-endpoint"],
)
def test_connection_string_without_its_parts(tmp_path: Path, connection_string: str) -> None:
    profile = live_profile(tmp_path)
    with pytest.raises(ProfileError) as excinfo:
        profile.for_live(env={**ENV, "CTE_TEST_ACS": connection_string})
    message = one_line(excinfo, str(profile.path), "connection string", "accesskey", "Azure portal")
    assert ACCESS_KEY not in message


def test_for_live_on_a_sandbox_profile() -> None:
    profile = load_profile("sandbox")
    with pytest.raises(ProfileError) as excinfo:
        profile.for_live(env=ENV)
    one_line(excinfo, str(profile.path), "'sandbox'", "sandbox profile", "--mode sandbox", "live.example.toml")


def test_unknown_test_user_or_role_is_a_skip_naming_the_entry_to_add(tmp_path: Path) -> None:
    tenant = live_profile(tmp_path, roles={"licensed": "adele"}).for_live(env=ENV)
    with pytest.raises(MissingPrerequisite) as excinfo:
        tenant.user("megan")
    one_line(excinfo, "'my-tenant'", "'megan'", "adele", "[users.megan]")
    assert tenant.user("licensed").alias == "adele"
    with pytest.raises(MissingPrerequisite) as excinfo:
        tenant.user("offline")
    one_line(excinfo, "role 'offline'", 'offline = "<alias>"', "[roles]", "signed in nowhere")


def test_a_profile_whose_name_differs_from_its_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, live(), name="served.toml")  # a copy of a profile keeps its name line
    with pytest.raises(ProfileError) as excinfo:
        load_profile(str(path))
    one_line(excinfo, "served.toml", "name = 'my-tenant' differs from the file's name 'served'", "remove the name line")


def test_a_custom_cloud_profile_reaches_its_own_endpoints(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    tenant = live_profile(
        tmp_path,
        **{
            "tenant.authority_host": "https://login.example.test:8443/",
            "tenant.graph_base_url": "https://graph.example.test/v1.0",
            "tenant.acs_endpoint": "https://acs.example.test:9443",
            "tenant.ca_bundle": "ca.pem",
        },
    ).for_live(env={**ENV, "CTE_TEST_ACS": f"endpoint=https://acs.example.test:9443/;accesskey={ACCESS_KEY}"})
    assert tenant.authority == f"https://login.example.test:8443/{TENANT_ID}"
    assert tenant.ca_bundle == str(tmp_path / "ca.pem")
    assert tenant.canonical_origins == {
        "https://login.example.test:8443": "https://login.microsoftonline.com",
        "https://graph.example.test": "https://graph.microsoft.com",
        "https://acs.example.test:9443": "https://acs-resource.communication.azure.com",
    }
    assert tenant.known_secrets()["https://login.example.test:8443"] == "https://login.microsoftonline.com"


# -- Profile.for_live: a good profile --------------------------------------------------------------------


@pytest.fixture
def tenant(tmp_path: Path) -> Tenant:
    return live_profile(tmp_path, **{"tenant.acs_endpoint": ACS_ENDPOINT + "/"}).for_live(env=ENV)


def test_valid_live_profile_resolves_to_a_tenant(tenant: Tenant) -> None:
    assert tenant.profile == "my-tenant"
    assert tenant.mode == "live"
    assert tenant.authority == f"https://login.microsoftonline.com/{TENANT_ID}"
    assert tenant.tenant_id == TENANT_ID
    assert tenant.client_id == CLIENT_ID
    assert tenant.acs_endpoint == ACS_ENDPOINT  # trailing slash dropped
    assert tenant.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert str(tenant.acs_access_key) == ACCESS_KEY
    assert str(tenant.acs_connection_string) == f"endpoint={ACS_ENDPOINT}/;accesskey={ACCESS_KEY}"
    adele = tenant.user("adele")
    assert (adele.upn, str(adele.password)) == (UPN, PASSWORD)
    assert tenant.expired_teams_token is None


def test_optional_tenant_fields_and_expired_token(tmp_path: Path) -> None:
    profile = live_profile(
        tmp_path,
        **{
            "tenant.authority_host": "https://login.microsoftonline.us/",
            "tenant.graph_base_url": "https://graph.microsoft.us/v1.0/",
            "secrets.expired_teams_token_env": "CTE_TEST_EXPIRED",
        },
    )
    tenant = profile.for_live(env={**ENV, "CTE_TEST_EXPIRED": "eyJ.eyJ.sig"})
    assert tenant.authority == f"https://login.microsoftonline.us/{TENANT_ID}"
    assert tenant.graph_base_url == "https://graph.microsoft.us/v1.0"
    assert isinstance(tenant.expired_teams_token, Secret)
    assert str(tenant.expired_teams_token) == "eyJ.eyJ.sig"
    assert "eyJ.eyJ.sig" not in repr(tenant)


def test_secrets_hide_themselves(tenant: Tenant) -> None:
    for shown in (repr(tenant), str(tenant), repr(tenant.users), repr(tenant.user("adele"))):
        assert PASSWORD not in shown
        assert ACCESS_KEY not in shown
    assert repr(tenant.user("adele").password) == "Secret('***')"
    assert repr(tenant.acs_access_key) == "Secret('***')"
    assert repr(tenant.acs_connection_string) == "Secret('***')"
    assert ACCESS_KEY not in repr([tenant.acs_connection_string])


def test_known_secrets_map_to_placeholders(tenant: Tenant) -> None:
    known = tenant.known_secrets()
    assert known[UPN] == f"adele@{scrubbing.UPN_DOMAIN}"
    assert known[PASSWORD] == scrubbing.PASSWORD
    assert known[TENANT_ID] == scrubbing.TENANT_ID
    assert known[CLIENT_ID] == scrubbing.CLIENT_ID
    assert known[ACCESS_KEY] == scrubbing.ACS_ACCESS_KEY
    assert known["contoso.example.com"] == scrubbing.UPN_DOMAIN
    for placeholder in known.values():
        assert PASSWORD not in placeholder and UPN not in placeholder


# -- resolve_mode -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["bogus", "Sandboxed", "playback"])
def test_resolve_mode_rejects_an_unknown_mode(bad: str) -> None:
    with pytest.raises(ProfileError) as excinfo:
        resolve_mode(bad)
    one_line(excinfo, repr(bad.lower()), "not valid", *MODES, "--mode", "CTE_MODE")


def test_resolve_mode_rejects_an_unknown_cte_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTE_MODE", "offline")
    with pytest.raises(ProfileError) as excinfo:
        resolve_mode(None)
    one_line(excinfo, "'offline'", "CTE_MODE")


def test_resolve_mode_accepts_known_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTE_MODE", raising=False)
    assert resolve_mode(None) == "sandbox"
    assert resolve_mode(" Replay ") == "replay"
    monkeypatch.setenv("CTE_MODE", "record")
    assert resolve_mode(None) == "record"
    assert resolve_mode("live") == "live"


# -- the built-in profiles ------------------------------------------------------------------------------


BUILT_IN = sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def test_every_sandbox_tenant_has_a_built_in_profile() -> None:
    assert {"sandbox", "live.example", *(t for t in SANDBOX_TENANTS if t != "contoso")} <= set(BUILT_IN)


@pytest.mark.parametrize("name", [n for n in BUILT_IN if n != "live.example"])
def test_built_in_sandbox_profiles_load(name: str) -> None:
    profile = load_profile(name)
    assert profile.kind == "sandbox"
    assert profile.path == PROFILE_DIR / f"{name}.toml"
    assert profile.name == name
    assert profile.sandbox_tenant == ("contoso" if name in ("sandbox", "flaky", "acs-entra") else name)
    replay = profile.for_replay()
    assert replay.misconfiguration == (None if name in ("sandbox", "flaky", "acs-entra") else name)


def test_built_in_live_example_loads_and_names_its_env_vars() -> None:
    profile = load_profile(str(PROFILE_DIR / "live.example.toml"))
    assert profile.kind == "live"
    with pytest.raises(ProfileError) as excinfo:
        profile.for_live(env={})
    one_line(excinfo, "live.example.toml", "not set", "export CTE_")


# -- [calling] and [meetings.*] of a live profile (the browser driver's live run) ----------------------


def test_calling_table_names_the_driver_and_the_phone_role_the_dialer(tmp_path: Path) -> None:
    profile = live_profile(tmp_path, calling={"driver": "browser", "offline": True}, roles={"phone": "adele"})
    tenant = profile.for_live(env=ENV)
    assert (tenant.calling_driver, tenant.phone_dialer, tenant.calling_offline) == ("browser", "adele", True)
    assert live_profile(tmp_path).for_live(env=ENV).calling_driver == "browser", "live profiles use the real SDK"


@pytest.mark.parametrize(
    ("calling", "needles"),
    [
        ({"driver": "teams"}, ("[calling] driver 'teams' is not valid", "browser or sandbox")),
        ({"phone_dialer": "megan"}, ("unknown key 'phone_dialer'", "the role phone under [roles]")),
        ({"dialer": "adele"}, ("[calling] has unknown key 'dialer'", "driver or offline")),
        ({"offline": "yes"}, ("[calling] offline must be true or false",)),
    ],
    ids=["driver", "phone-dialer-moved", "unknown-key", "offline-not-bool"],
)
def test_a_bad_calling_table_is_one_line(tmp_path: Path, calling: dict[str, str], needles: tuple[str, ...]) -> None:
    with pytest.raises(ProfileError) as excinfo:
        live_profile(tmp_path, calling=calling)
    one_line(excinfo, "my-tenant.toml", *needles)


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ({"join_url": "https://x", "meeting_code": "1"}, "unknown key 'meeting_code'"),
        ({"meeting_id": "1"}, "no join_url"),
    ],
    ids=["unknown-key", "no-join-url"],
)
def test_a_bad_meeting_table_is_one_line(tmp_path: Path, table: dict[str, str], needle: str) -> None:
    with pytest.raises(ProfileError) as excinfo:
        live_profile(tmp_path, meetings={"regular": table})
    one_line(excinfo, "[meetings.regular]", needle, "join_url, meeting_id")


def test_the_live_example_names_what_a_live_calling_run_needs() -> None:
    profile = load_profile(str(PROFILE_DIR / "live.example.toml"))
    env = {"CTE_ACS_CONNECTION_STRING": f"endpoint={ACS_ENDPOINT}/;accesskey={ACCESS_KEY}"}
    env |= {f"CTE_PASSWORD_{alias.upper()}": PASSWORD for alias in profile.data["users"]}
    tenant = profile.for_live(env=env)
    assert {"adele", "megan", "lynne"} <= set(tenant.users)
    assert tenant.calling_driver == "browser" and tenant.phone_dialer == "megan"
    assert {"licensed", "colleague", "offline", "phone", "organizer"} <= set(tenant.roles)
    assert {"regular", "channel", "webinar", "live-event"} <= set(tenant.meetings)
    assert {"outbound", "inbound"} <= set(tenant.phone_numbers)
