"""Profiles (TOML) + secrets from environment variables -> a validated Tenant.

A profile describes a tenant; it never holds a secret, only the names of the environment
variables that do. Two kinds:

    kind = "sandbox"            # the embedded sandbox; `sandbox_tenant` picks one of its tenants
    kind = "live"               # a real tenant: [tenant], [secrets] and [users.<alias>] tables

A bad profile fails before anything runs with one line naming the file, the field and the fix.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import contract, scrubbing, tokens
from harness.scenario import MissingPrerequisite

MODES = ("sandbox", "replay", "record", "live")
CALLING_DRIVERS = ("sandbox", "browser")  # the sandbox's calling model; the real Calling SDK in Chromium
PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SANDBOX_TENANTS = (
    "contoso",
    "consent-missing",
    "calls-scope-missing",
    "public-client-disabled",
    "no-teams-license",
    "acs-sp-missing",
    "app-not-registered",
    "graph-scope-missing",
    "no-enterprise-voice",
    "live-events-joinable",
    "personal-use-joinable",
    "webinar-roles-honoured",
    "lobby-not-enforced",
    "fabrikam",
)


class ProfileError(ValueError):
    """A profile that cannot be used; the message is one line: where, what, and the fix."""


class Secret(str):
    """A string that never shows itself in a repr, a log line or a traceback's locals."""

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class UserCredentials:
    alias: str
    upn: str
    password: Secret = field(repr=False)
    oid: str | None = None


@dataclass(frozen=True)
class MeetingLocators:
    """The three ways the Calling SDK can name a Teams meeting."""

    join_url: str
    meeting_id: str | None = None
    passcode: str | None = None
    thread_id: str | None = None
    organizer_id: str | None = None
    tenant_id: str | None = None
    message_id: str = "0"

    def placeholders(self, kind: str, number: int) -> dict[str, str]:
        """This meeting's identifying values -> what recordings show instead."""
        shown = shown_meeting(kind, number)
        pairs = [
            (self.join_url, shown.join_url),
            (self.thread_id, shown.thread_id),
            (self.meeting_id, shown.meeting_id),
            (self.passcode, shown.passcode),
        ]
        return {real: placeholder for real, placeholder in pairs if real and placeholder}


MEETING_KINDS = (
    "regular",
    "channel",
    "webinar",
    "live-event",
    "lobby",
    "attendee-mic-off",
    "attendee-camera-off",
    "organizer-presents",
)
PHONE_PLACEHOLDERS = {"outbound": "+15550100001", "inbound_caller": "+15550100002"}


@dataclass(frozen=True)
class Tenant:
    """Everything the client side needs to reach one tenant, in any mode."""

    profile: str
    mode: str
    authority: str = field(repr=False)
    tenant_id: str = field(repr=False)
    client_id: str = field(repr=False)
    acs_endpoint: str = field(repr=False)
    acs_access_key: Secret = field(repr=False)
    graph_base_url: str
    users: Mapping[str, UserCredentials] = field(repr=False)
    ca_bundle: str | None = None
    host_routes: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    expired_teams_token: Secret | None = field(default=None, repr=False)
    misconfiguration: str | None = None
    calling_base_url: str | None = None
    calling_driver: str = "sandbox"
    phone_dialer: str | None = None  # live: a user with Teams Phone who dials the inbound number
    meetings: Mapping[str, MeetingLocators] = field(default_factory=dict, repr=False)
    phone_numbers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def meeting(self, kind: str) -> MeetingLocators:
        if kind not in self.meetings:
            raise MissingPrerequisite(
                f"profile {self.profile!r} names no {kind} meeting; add a [meetings.{kind}] table with join_url"
            )
        return self.meetings[kind]

    def phone_number(self, role: str) -> str:
        if role not in self.phone_numbers:
            raise MissingPrerequisite(
                f"profile {self.profile!r} names no {role} phone number; add it under [phone_numbers]"
            )
        return self.phone_numbers[role]

    @property
    def acs_connection_string(self) -> Secret:
        return Secret(f"endpoint={self.acs_endpoint}/;accesskey={self.acs_access_key}")

    def user(self, alias: str) -> UserCredentials:
        try:
            return self.users[alias]
        except KeyError:
            known = ", ".join(sorted(self.users)) or "none"
            raise ProfileError(
                f"profile {self.profile!r} has no test user {alias!r} (it has: {known}); "
                f"add a [users.{alias}] table to the profile"
            ) from None

    def known_secrets(self) -> dict[str, str]:
        """Secret or identifying value -> the placeholder a recording shows instead."""
        known: dict[str, str] = {
            self.tenant_id: scrubbing.TENANT_ID,
            self.client_id: scrubbing.CLIENT_ID,
            str(self.acs_access_key): scrubbing.ACS_ACCESS_KEY,
        }
        for index, alias in enumerate(sorted(self.users)):
            user = self.users[alias]
            known[user.upn] = f"{alias}@{scrubbing.UPN_DOMAIN}"
            known[user.upn.rpartition("@")[2]] = scrubbing.UPN_DOMAIN
            known[str(user.password)] = scrubbing.PASSWORD
            if user.oid:
                known[user.oid] = oid_placeholder(index)
        for number, kind in enumerate(sorted(self.meetings), start=1):
            known.update(self.meetings[kind].placeholders(kind, number))
        for role, value in self.phone_numbers.items():
            known[value] = PHONE_PLACEHOLDERS.get(role, "+15550100099")
        return known


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path | None
    kind: str
    sandbox_tenant: str = "contoso"
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)

    # -- to a Tenant -------------------------------------------------------------------------------

    def for_sandbox(self, info: Mapping[str, Any], routes: Mapping[str, tuple[str, int]], mode: str) -> Tenant:
        """The tenant as the running sandbox describes it (`Sandbox.tenant_info`)."""
        users = {
            u["alias"]: UserCredentials(u["alias"], u["upn"], Secret(u["password"]), u["oid"]) for u in info["users"]
        }
        return Tenant(
            profile=self.name,
            mode=mode,
            authority=info["authority"],
            tenant_id=info["tenant_id"],
            client_id=info["client_id"],
            acs_endpoint=info["acs_endpoint"],
            acs_access_key=Secret(info["acs_access_key"]),
            graph_base_url=info["graph_base_url"],
            users=users,
            ca_bundle=info["ca_bundle"],
            host_routes=dict(routes),
            expired_teams_token=Secret(info["expired_teams_token"]),
            misconfiguration=info.get("misconfiguration"),
            calling_base_url=info.get("calling_base_url"),
            meetings={kind: MeetingLocators(**m) for kind, m in info.get("meetings", {}).items()},
            phone_numbers=dict(info.get("phone_numbers", {})),
        )

    def for_replay(self) -> Tenant:
        """The tenant as cassettes show it: every identifier and secret is its placeholder."""
        aliases = self._aliases()
        users = {
            alias: UserCredentials(
                alias, f"{alias}@{scrubbing.UPN_DOMAIN}", Secret(scrubbing.PASSWORD), oid_placeholder(index)
            )
            for index, alias in enumerate(sorted(aliases))
        }
        expired = tokens.placeholder({"exp": 0, "aud": "https://auth.msft.communication.azure.com"})
        return Tenant(
            profile=self.name,
            mode="replay",
            authority=f"https://login.microsoftonline.com/{scrubbing.TENANT_ID}",
            tenant_id=scrubbing.TENANT_ID,
            client_id=scrubbing.CLIENT_ID,
            acs_endpoint=f"https://{scrubbing.ACS_HOST}",
            acs_access_key=Secret(scrubbing.ACS_ACCESS_KEY),
            graph_base_url="https://graph.microsoft.com/v1.0",
            users=users,
            expired_teams_token=Secret(expired),
            misconfiguration=self.sandbox_tenant
            if self.kind == "sandbox" and self.sandbox_tenant != "contoso"
            else None,
            calling_base_url=f"https://{contract.SANDBOX_CALLING_HOST}/v1",
            meetings={
                kind: shown_meeting(kind, n, oid_placeholder(0)) for n, kind in enumerate(sorted(MEETING_KINDS), 1)
            },
            phone_numbers=dict(PHONE_PLACEHOLDERS),
        )

    def for_live(self, env: Mapping[str, str] | None = None) -> Tenant:
        """The real tenant; secrets come from the environment variables the profile names."""
        env = os.environ if env is None else env
        if self.kind != "live":
            raise ProfileError(
                f"{self._where()}: profile {self.name!r} is a sandbox profile; run it with --mode sandbox, "
                "replay or record, or write a live profile (see profiles/live.example.toml)"
            )
        tenant = self.data["tenant"]
        secrets = self.data.get("secrets", {})
        users = {}
        for alias, table in self.data.get("users", {}).items():
            password = Secret(self._env(env, table["password_env"], f"users.{alias}.password_env"))
            users[alias] = UserCredentials(alias, table["upn"], password, table.get("oid"))
        access_key = _access_key(
            self._env(env, secrets["acs_connection_string_env"], "secrets.acs_connection_string_env"), self
        )
        expired_env = secrets.get("expired_teams_token_env")
        expired = env.get(expired_env) if expired_env else None
        calling = self._calling_table(users)
        return Tenant(
            profile=self.name,
            mode="live",
            authority=f"{tenant.get('authority_host', 'https://login.microsoftonline.com').rstrip('/')}/{tenant['tenant_id']}",
            tenant_id=tenant["tenant_id"],
            client_id=tenant["client_id"],
            acs_endpoint=tenant["acs_endpoint"].rstrip("/"),
            acs_access_key=Secret(access_key),
            graph_base_url=tenant.get("graph_base_url", "https://graph.microsoft.com/v1.0").rstrip("/"),
            users=users,
            expired_teams_token=Secret(expired) if expired else None,
            calling_driver=calling.get("driver", "browser"),
            phone_dialer=calling.get("phone_dialer"),
            meetings=self._meetings(),
            phone_numbers={k: str(v) for k, v in self.data.get("phone_numbers", {}).items()},
        )

    def _calling_table(self, users: Mapping[str, UserCredentials]) -> dict[str, str]:
        """[calling]: driver (sandbox | browser) and phone_dialer (a user alias), checked here."""
        calling = self.data.get("calling", {})
        unknown = sorted(set(calling) - {"driver", "phone_dialer"})
        if unknown:
            raise ProfileError(f"{self._where()}: [calling] has unknown key {unknown[0]!r}; use driver or phone_dialer")
        driver = str(calling.get("driver", "browser"))
        if driver not in CALLING_DRIVERS:
            raise ProfileError(f"{self._where()}: [calling] driver {driver!r} is not valid; use browser or sandbox")
        dialer = calling.get("phone_dialer")
        if dialer is not None and dialer not in users:
            raise ProfileError(
                f"{self._where()}: [calling] phone_dialer {dialer!r} is not a user of this profile; add "
                f"[users.{dialer}] or name one of {', '.join(sorted(users)) or 'your users'}"
            )
        return {"driver": driver, **({"phone_dialer": str(dialer)} if dialer else {})}

    def _meetings(self) -> dict[str, MeetingLocators]:
        fields = set(MeetingLocators.__dataclass_fields__)
        meetings = {}
        for kind, table in self.data.get("meetings", {}).items():
            unknown = sorted(set(table) - fields)
            if unknown or "join_url" not in table:
                problem = f"unknown key {unknown[0]!r}" if unknown else "no join_url"
                raise ProfileError(f"{self._where()}: [meetings.{kind}] has {problem}; use {', '.join(sorted(fields))}")
            meetings[kind] = MeetingLocators(**{k: str(v) for k, v in table.items()})
        return meetings

    def _env(self, env: Mapping[str, str], name: str, field_name: str) -> str:
        value = env.get(name, "")
        if not value:
            raise ProfileError(
                f"{self._where()}: [{field_name}] names environment variable {name}, which is not set; "
                f"export {name}=... before running (secrets are never written in profiles)"
            )
        return value

    def _aliases(self) -> list[str]:
        if self.kind == "sandbox":
            return ["adele", "megan", "lynne", "pradeep", "nestor", "isaiah", "alex"]
        return sorted(self.data.get("users", {}))

    def _where(self) -> str:
        return str(self.path) if self.path else f"profile {self.name!r}"


def oid_placeholder(index: int) -> str:
    """The placeholder of the object id of the profile's index-th user (aliases in sorted order)."""
    return f"00000000-0000-0000-0000-0000000b{0x100 + index:04x}"


def shown_meeting(kind: str, number: int, organizer_id: str | None = None) -> MeetingLocators:
    """A meeting as recordings show it."""
    return MeetingLocators(
        join_url=f"https://teams.microsoft.com/l/meetup-join/19%3Ameeting_{kind}%40thread.v2/0",
        meeting_id=f"99999999990{number:02d}",
        passcode=f"Pass{number:02d}",
        thread_id=f"19:meeting_{kind}@thread.v2",
        organizer_id=organizer_id,
        tenant_id=scrubbing.TENANT_ID,
    )


def _access_key(connection_string: str, profile: Profile) -> str:
    parts = dict(part.split("=", 1) for part in connection_string.strip().rstrip(";").split(";") if "=" in part)
    parts = {k.lower(): v for k, v in parts.items()}
    if "accesskey" not in parts or "endpoint" not in parts:
        raise ProfileError(
            f"{profile._where()}: the ACS connection string has no endpoint=...;accesskey=... parts; copy it "
            "from the Azure portal (Communication Services resource > Keys > Connection string)"
        )
    return parts["accesskey"]


# -- loading and validating -------------------------------------------------------------------------

LIVE_REQUIRED = {
    "tenant": {
        "tenant_id": "your Entra tenant id (a GUID)",
        "client_id": "the application (client) id of your app registration (a GUID)",
        "acs_endpoint": "https://<resource>.communication.azure.com",
    },
    "secrets": {"acs_connection_string_env": "the name of the environment variable holding the ACS connection string"},
}


def find_profile(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or os.sep in name_or_path:
        if candidate.is_file():
            return candidate
        raise ProfileError(f"profile file {name_or_path} does not exist; pass a path to a .toml file or a profile name")
    directories = [Path(d) for d in os.environ.get("CTE_PROFILE_PATH", "").split(os.pathsep) if d]
    searched = [*directories, Path.cwd() / "profiles", PROFILE_DIR]
    for directory in searched:
        path = directory / f"{name_or_path}.toml"
        if path.is_file():
            return path
    available = sorted({p.stem for d in searched if d.is_dir() for p in d.glob("*.toml")})
    raise ProfileError(
        f"no profile named {name_or_path!r}; available: {', '.join(available) or 'none'} "
        "(or pass a path to a .toml file, or add a directory to CTE_PROFILE_PATH)"
    )


def load_profile(name_or_path: str = "sandbox") -> Profile:
    path = find_profile(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc}); fix the syntax at that position") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{path}: not UTF-8 text; save the profile as UTF-8") from None
    return validate(data, path)


def validate(data: Mapping[str, Any], path: Path | None) -> Profile:
    where = str(path) if path else "profile"
    name = data.get("name", path.stem if path else "profile")
    kind = data.get("kind")
    if kind not in ("sandbox", "live"):
        raise ProfileError(f'{where}: kind = {kind!r} is not valid; set kind = "sandbox" or kind = "live"')
    if kind == "sandbox":
        tenant = data.get("sandbox_tenant", "contoso")
        if tenant not in SANDBOX_TENANTS:
            raise ProfileError(
                f"{where}: sandbox_tenant = {tenant!r} is not a sandbox tenant; use one of {', '.join(SANDBOX_TENANTS)}"
            )
        return Profile(name=name, path=path, kind=kind, sandbox_tenant=tenant, data=data)
    for table, fields in LIVE_REQUIRED.items():
        section = data.get(table)
        if not isinstance(section, dict):
            raise ProfileError(f"{where}: the [{table}] table is missing; add it with {', '.join(fields)}")
        for key, meaning in fields.items():
            value = section.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ProfileError(f"{where}: [{table}].{key} is missing; set it to {meaning}")
    for key in ("tenant_id", "client_id"):
        if not GUID.match(data["tenant"][key]):
            raise ProfileError(
                f"{where}: [tenant].{key} = {data['tenant'][key]!r} is not a GUID; "
                f"set it to {LIVE_REQUIRED['tenant'][key]}"
            )
    if not re.match(r"^https://[A-Za-z0-9-]+\.communication\.azure\.com/?$", data["tenant"]["acs_endpoint"]):
        raise ProfileError(
            f"{where}: [tenant].acs_endpoint = {data['tenant']['acs_endpoint']!r} is not an ACS endpoint; "
            "set it to https://<resource>.communication.azure.com"
        )
    users = data.get("users")
    if not isinstance(users, dict) or not users:
        raise ProfileError(f"{where}: no [users.<alias>] table; add one per test user with upn and password_env")
    for alias, table in users.items():
        if isinstance(table, dict) and "password" in table:
            raise ProfileError(
                f"{where}: [users.{alias}].password holds a secret in the file; remove it and set "
                "password_env to the name of an environment variable instead"
            )
        for key in ("upn", "password_env"):
            if not isinstance(table, dict) or not isinstance(table.get(key), str) or not table[key]:
                raise ProfileError(
                    f'{where}: [users.{alias}].{key} is missing; set upn = "user@domain" and '
                    'password_env = "NAME_OF_ENV_VAR"'
                )
    return Profile(name=name, path=path, kind="live", data=data)


def resolve_mode(value: str | None) -> str:
    mode = (value or os.environ.get("CTE_MODE") or "sandbox").strip().lower()
    if mode not in MODES:
        raise ProfileError(f"mode {mode!r} is not valid; use one of {', '.join(MODES)} (--mode or CTE_MODE)")
    return mode
