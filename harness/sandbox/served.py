"""`cte sandbox serve --write-profile PATH`: the sandbox playing a tenant on the internet.

It writes the live profile a partner would write for it, one per misconfigured tenant it hosts
(which the main profile names under [misconfigured]) and one for its sovereign-cloud tenant (which
doctor stops on), with the CA bundle that issued its certificate beside them, and prints the secrets
as environment variables (never to disk). Each workload listens on its own port, as each is its own
host in the cloud: a client reaches it only by the profile's endpoints, its CA bundle and the
environment.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.wire.contract import SANDBOX_EXCHANGE_LOG_PATH
from harness.wire.serving import LOOPBACK
from harness.wire.tenant import EXTERNAL_TENANT, HOME_TENANT, SANDBOX_SPA_REDIRECT_URI

# The roles, policies and external user of the sandbox's contoso tenant, as harness/profiles/sandbox.toml
# declares them for the embedded sandbox (the sandbox does not read profiles: it states its own facts).
ROLES = {
    "licensed": "adele",
    "colleague": "megan",
    "offline": "lynne",
    "mfa": "lynne",
    "unlicensed": "pradeep",
    "phone": "adele",
    "no-voice": "megan",
    "organizer": "megan",
}
POLICIES = (
    ("Messaging policy", "Chat", "Off", "user", "nestor"),
    ("Calling policy", "Make private calls", "Off", "user", "isaiah"),
    ("Calling policy", "Enterprise Voice", "Off", "user", "megan"),
    ("Meeting options", "Who can bypass the lobby", "Only organizers", "meeting", "lobby"),
    ("Meeting options", "Allow mic for attendees", "Off", "meeting", "attendee-mic-off"),
    ("Meeting options", "Allow camera for attendees", "Off", "meeting", "attendee-camera-off"),
    ("Meeting options", "Who can present", "Only organizers", "meeting", "organizer-presents"),
    ("Meeting policy", "Screen sharing", "Off during the meeting", "user", "adele"),
)
EXTERNAL = (EXTERNAL_TENANT, "alex")  # a user of another organisation whose domain contoso blocks
MISCONFIGURED = (
    "consent-missing",
    "public-client-disabled",
    "acs-sp-missing",
    "app-not-registered",
    "calls-scope-missing",
    "graph-scope-missing",
    "redirect-uri-wrong-platform",
    "redirect-uri-unregistered",
)
# Tenants written as profiles too, but named by no [misconfigured] entry: no scenario runs on them, and
# `cte doctor` stops on them (a sovereign cloud, where the table's scenarios are not offered).
DOCTOR_ONLY = ("gcc-high",)
ENV_PREFIX = "CTE_SERVED"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _toml(value: Any) -> str:
    """A TOML value (strings as basic strings: JSON's escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def _env_name(*parts: str) -> str:
    return "_".join([ENV_PREFIX, *(re.sub(r"[^A-Z0-9]", "_", p.upper()) for p in parts)])


SECOND_TENANT_USER = (EXTERNAL_TENANT, "alex")  # signs in to contoso's multi-tenant app at fabrikam's authority


def _backend(sandbox: Any, info: Any, origins: dict[str, str], env: dict[str, str]) -> list[str]:
    """[backend]: what `cte backend check` needs of this tenant besides the service's URL: its other apps,
    a user of a second tenant that bought the app, and the sandbox's exchange log (the evidence of what a
    token service sent to ACS; no live tenant has one)."""
    lines = [
        "",
        "[backend]",
        '# url = "http://localhost:8600/api/token/teams"  # your token service (or cte backend check --url)',
        "# The sandbox's own record of what reached ACS (no live tenant has one):",
        f"exchange_log_url = {_toml(origins['acs'] + SANDBOX_EXCHANGE_LOG_PATH)}",
        *(f"{purpose} = {_toml(client_id)}" for purpose, client_id in sorted(info.extra_apps.items())),
    ]
    tenant_name, alias = SECOND_TENANT_USER
    second = sandbox.tenant_info(tenant_name)
    user = second.user(alias)
    variable = _env_name(tenant_name, "PASSWORD", alias)
    env[variable] = user.password
    lines += [
        "",
        "[backend.second_tenant]  # a user of another organisation that bought the app (multi-tenant)",
        f"tenant_id = {_toml(second.tenant_id)}",
        f"upn = {_toml(user.upn)}",
        f"password_env = {_toml(variable)}",
        f"oid = {_toml(user.oid)}",
        'expected = "serve"  # serve | refuse: what the token service should do with them',
    ]
    return lines


def write_profiles(sandbox: Any, path: Path, origins: dict[str, str], notification_port: int) -> dict[str, Any]:
    """Write the profiles for `sandbox` (entra, graph and acs origins given); return what a client
    is told on stdout: the profile's path and the environment variables to export."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    ca = path.with_name(f"{path.stem}.ca.pem")
    assert sandbox.certificates is not None
    ca.write_bytes(sandbox.certificates.ca_bundle.read_bytes())  # a public certificate, not a secret
    env: dict[str, str] = {}
    info = sandbox.tenant_info(HOME_TENANT)
    connection = f"endpoint={origins['acs']}/;accesskey={info.acs_access_key}"
    env[_env_name("ACS_CONNECTION_STRING")] = connection
    env[_env_name("EXPIRED_TEAMS_TOKEN")] = info.expired_teams_token
    written = {}
    for name in (*MISCONFIGURED, *DOCTOR_ONLY, HOME_TENANT):
        target = path if name == HOME_TENANT else path.with_name(f"{path.stem}-{name}.toml")
        text = _profile(sandbox, name, target, ca, origins, env, notification_port, path.stem)
        target.write_text(text, encoding="utf-8")
        written[name] = str(target)
    return {"profile": str(path), "profiles": written, "ca_bundle": str(ca), "env": env}


def _profile(
    sandbox: Any,
    name: str,
    target: Path,
    ca: Path,
    origins: dict[str, str],
    env: dict[str, str],
    notification_port: int,
    stem: str,
) -> str:
    info = sandbox.tenant_info(name)
    main = name == HOME_TENANT
    lines = [
        f"# Written by `cte sandbox serve --write-profile`: the sandbox's {name} tenant as a partner would",
        "# describe a live tenant. Export the environment variables `cte sandbox serve` printed.",
        'kind = "live"',
        "",
        "[tenant]",
        f"tenant_id = {_toml(info.tenant_id)}",
        f"client_id = {_toml(info.client_id)}",
        f"acs_endpoint = {_toml(origins['acs'])}",
        f"authority_host = {_toml(origins['entra'])}",
        f"graph_base_url = {_toml(origins['graph'] + '/v1.0')}",
        f"ca_bundle = {_toml(ca.name)}",
        "",
        "[secrets]",
        f"acs_connection_string_env = {_toml(_env_name('ACS_CONNECTION_STRING'))}",
    ]
    if main:
        lines.append(f"expired_teams_token_env = {_toml(_env_name('EXPIRED_TEAMS_TOKEN'))}")
    if info.client_secret:  # the app's own secret: app-only Graph tokens (what Graph refuses an app)
        variable = _env_name(name, "APP_CLIENT_SECRET")
        env[variable] = info.client_secret
        lines += ["", "[app]", f"client_secret_env = {_toml(variable)}"]
    # The SPA's redirect URI, as its partner would name it (the browser sign-in, the doctor's check).
    lines += [] if info.client_secret else ["", "[app]"]
    lines += [f"redirect_uri = {_toml(SANDBOX_SPA_REDIRECT_URI)}", 'platform = "spa"']
    for user in info.users:
        variable = _env_name(name, "PASSWORD", user.alias)
        env[variable] = user.password
        lines += ["", f"[users.{user.alias}]", f"upn = {_toml(user.upn)}", f"password_env = {_toml(variable)}"]
        lines.append(f"oid = {_toml(user.oid)}  # the object id (Entra admin center): calls name users by it")
    lines += ["", "[roles]", *(f"{role} = {_toml(alias)}" for role, alias in ROLES.items())]
    lines += ["", "[calling]", 'driver = "browser"', "offline = true  # Microsoft's calling services: not here"]
    if not main:
        return "\n".join(lines) + "\n"
    lines += ["", "[misconfigured]", *(f"{m} = {_toml(f'{stem}-{m}.toml')}" for m in MISCONFIGURED)]
    tenant_name, alias = EXTERNAL
    external = sandbox.tenant_info(tenant_name).user(alias)
    lines += ["", "[external_user]", f"upn = {_toml(external.upn)}", f"oid = {_toml(external.oid)}"]
    domain = external.upn.rpartition("@")[2]
    for policy, setting, value, holder_kind, holder in (*POLICIES, ("External access", domain, "Blocked", "", "")):
        lines += ["", "[[policies]]", f"policy = {_toml(policy)}", f"setting = {_toml(setting)}"]
        lines.append(f"value = {_toml(value)}")
        if holder_kind:
            lines.append(f"{holder_kind} = {_toml(holder)}")
    lines += [
        "",
        "[notifications]",
        f"public_url = {_toml(f'https://localhost:{notification_port}')}",
        f"listen_port = {notification_port}",
        "lifecycle_wait_s = 20  # this tenant's Graph sends reauthorizationRequired 4 s after a subscription",
    ]
    lines += ["", "[phone_numbers]", *(f"{k} = {_toml(v)}" for k, v in asdict(info.phone_numbers).items())]
    lines += _backend(sandbox, info, origins, env)
    for kind, meeting in sorted(info.meetings.items()):
        lines += ["", f"[meetings.{kind}]"]
        lines += [f"{key} = {_toml(value)}" for key, value in asdict(meeting).items() if value and key != "message_id"]
    return "\n".join(lines) + "\n"
