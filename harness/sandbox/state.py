"""The sandbox's world: clock, id source, and the tenant model the emulated services decide from.

The sandbox models mechanics, not verdicts: users have licences and MFA, app registrations have
public-client flows and consented scopes, tenants have (or lack) the ACS service principal. What a
request gets follows from those facts, the way the service decides.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from harness.wire.tenant import EXTERNAL_TENANT, HOME_TENANT, SANDBOX_SPA_REDIRECT_URI, VARIANT_TENANTS

ACS_RESOURCE_URI = "https://auth.msft.communication.azure.com"
ACS_FIRST_PARTY_APP_ID = "1fd5118e-2576-4263-8130-9503064c837a"
ACS_APP_NAME = "Azure Communication Services"
GRAPH_RESOURCE_URI = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
TEAMS_SCOPES = ("Teams.ManageCalls", "Teams.ManageChats")
# The ACS data plane as an Entra resource: what a service principal or managed identity asks a token for
# (scope https://communication.azure.com/.default; the Azure SDKs send https://communication.azure.com//.default).
# The first-party app id is the resource Entra names in AADSTS65002 for that scope (Azure/azure-sdk-for-net#35816,
# Azure/azure-cli#23485); docs/contracts/identity.md §7.
ACS_DATA_PLANE_URI = "https://communication.azure.com"
ACS_DATA_PLANE_APP_ID = "632ec9eb-fad7-4cbd-993a-e72973ba2acc"
# Azure RBAC roles that let a principal call the identity routes: Microsoft's service-principal quickstart
# assigns Contributor; Owner includes everything Contributor may do.
ACS_DATA_ROLES = frozenset({"Contributor", "Owner"})

# Resource apps the sandbox knows: resource URI -> (app id, display name, delegated permissions).
RESOURCES: dict[str, tuple[str, str, frozenset[str]]] = {
    ACS_RESOURCE_URI: (
        ACS_FIRST_PARTY_APP_ID,
        ACS_APP_NAME,
        frozenset({"Teams.ManageCalls", "Teams.ManageChats", "TeamsExtension.ManageCalls"}),
    ),
    ACS_DATA_PLANE_URI: (ACS_DATA_PLANE_APP_ID, "Azure Communication Services", frozenset()),
    GRAPH_RESOURCE_URI: (
        GRAPH_APP_ID,
        "Microsoft Graph",
        frozenset(
            {
                "User.Read",
                "User.ReadBasic.All",
                "Chat.Create",
                "Chat.Read",
                "Chat.ReadBasic",
                "Chat.ReadWrite",
                "ChatMessage.Send",
                "ChatMessage.Read",
                "ChatMessage.ReadWrite",
                "ChannelMessage.Send",
                "ChannelMessage.Read.All",
                "OnlineMeetings.ReadWrite",
                "OnlineMeetings.Read",
                "Team.ReadBasic.All",
                "Channel.ReadBasic.All",
            }
        ),
    ),
}

SANDBOX_EPOCH = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)


class Clock:
    """The sandbox's notion of now. `fixed()` makes every run see the same instants."""

    def __init__(self, source: Callable[[], datetime] | None = None, step: timedelta = timedelta()) -> None:
        self._source = source or (lambda: datetime.now(UTC))
        self._offset = timedelta()
        self._step = step
        self._lock = threading.Lock()

    @classmethod
    def fixed(cls, start: datetime = SANDBOX_EPOCH, step: timedelta = timedelta(milliseconds=300)) -> Clock:
        """Starts at `start` and moves on by `step` with every request (`tick`), whatever real time does.

        300 ms a request is 3.3 requests a second: below every documented Graph limit, so a
        recording never depends on how fast the machine was.
        """
        return cls(lambda: start, step)

    def tick(self) -> None:
        with self._lock:
            self._offset += self._step

    def now(self) -> datetime:
        with self._lock:
            return self._source() + self._offset

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._offset += delta

    def rewind(self) -> bool:
        """Take back every `advance`: the source's own time again. True if the clock had moved on."""
        with self._lock:
            moved, self._offset = self._offset != timedelta(), timedelta()
            return moved

    def restart(self, start: datetime) -> None:
        """Make `now()` return `start` (for a fixed clock) from here on."""
        with self._lock:
            self._source = lambda: start
            self._offset = timedelta()


class IdSource:
    """Deterministic identifiers: stable ones by name, volatile ones by sequence within a stream.

    `restart(stream)` begins a new sequence, so that what one scenario sees does not depend on
    which scenarios ran before it.
    """

    def __init__(self, seed: str = "cte-sandbox") -> None:
        self._namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"https://sandbox.cte.invalid/{seed}")
        self._stream = "default"
        self._counter = 0
        self._lock = threading.Lock()
        # Stable ids and secrets are functions of the name: worked out once (each scenario's fresh world
        # is built from them again, thousands of them, most of its cost).
        self._stable: dict[str, str] = {}
        self._secrets: dict[tuple[str, int], bytes] = {}

    def stable(self, name: str) -> str:
        if (found := self._stable.get(name)) is None:
            found = self._stable[name] = str(uuid.uuid5(self._namespace, f"stable:{name}"))
        return found

    def next(self, kind: str = "id") -> str:
        with self._lock:
            self._counter += 1
            return str(uuid.uuid5(self._namespace, f"{self._stream}:{kind}:{self._counter}"))

    def restart(self, stream: str) -> None:
        with self._lock:
            self._stream = stream
            self._counter = 0

    def secret(self, name: str, size: int = 32) -> bytes:
        if (found := self._secrets.get((name, size))) is None:
            digest = hashlib.sha256(f"{self._namespace}:secret:{name}".encode()).digest()
            found = self._secrets[name, size] = digest[:size]
        return found


@dataclass
class User:
    alias: str
    upn: str
    display_name: str
    password: str
    oid: str
    teams_license: bool = True
    mfa_required: bool = False
    enterprise_voice: bool = False  # Teams Phone / Enterprise Voice: needed to call phone numbers
    chat_enabled: bool = True  # messaging policy: "Chat" on or off
    private_calls: bool = True  # calling policy: "Make private calls" on or off
    screen_sharing: bool = True  # meeting policy: "Screen sharing" allowed or not
    # The user's own Teams client: "answers" (online, picks up), "offline" (no endpoint registered).
    teams_client: str = "offline"


@dataclass
class AppRegistration:
    client_id: str
    display_name: str
    public_client_flows: bool = True
    # Redirect URIs by the platform they are registered under (Microsoft Graph's application resource:
    # publicClient = "Mobile and desktop applications", spa = "Single-page application", web).
    redirect_uris: tuple[str, ...] = ("http://localhost",)  # publicClient
    spa_redirect_uris: tuple[str, ...] = (SANDBOX_SPA_REDIRECT_URI,)
    web_redirect_uris: tuple[str, ...] = ()
    client_secret: str | None = None
    client_secret_expires: datetime | None = None  # None: the secret does not expire
    certificates: list[bytes] = field(default_factory=list)  # PEM certificates registered for client assertions
    # Delegated permissions granted on each resource: resource URI -> permission names.
    consented: dict[str, frozenset[str]] = field(default_factory=dict)

    def redirect_platform(self, uri: str) -> str | None:
        """The platform `uri` is registered under, None if under none. A loopback http URI matches whatever
        its port (Microsoft: "the port component ... is ignored for the purposes of matching a redirect URI",
        https://learn.microsoft.com/entra/identity-platform/reply-url); otherwise the match is exact. A URI
        registered under several platforms counts as the first of spa, publicClient, web (emulator-defined)."""
        wanted = _without_loopback_port(uri)
        for platform, uris in (
            ("spa", self.spa_redirect_uris),
            ("publicClient", self.redirect_uris),
            ("web", self.web_redirect_uris),
        ):
            if any(_without_loopback_port(u) == wanted for u in uris):
                return platform
        return None


def _without_loopback_port(uri: str) -> str:
    import urllib.parse

    parts = urllib.parse.urlsplit(uri)
    if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1"):
        path = parts.path or "/"
        return urllib.parse.urlunsplit(("http", parts.hostname, path, parts.query, ""))
    return uri


@dataclass
class AcsResource:
    name: str
    immutable_id: str
    access_key: str  # base64, as in a connection string
    location: str = "unitedstates"
    # Azure RBAC on the resource: principal object id -> role name (ACS_DATA_ROLES let it call the identity
    # routes with a bearer token). Seeded from each tenant's `acs_role`.
    role_assignments: dict[str, str] = field(default_factory=dict)
    # Tenants whose tokens the resource accepts (its subscription's home tenant; in the sandbox, contoso and
    # every misconfigured copy of it: they are one organisation set up differently).
    home_tenants: set[str] = field(default_factory=set)

    @property
    def host(self) -> str:
        return f"{self.name}.communication.azure.com"


@dataclass
class Message:
    id: str
    created: datetime
    last_modified: datetime
    sender: str  # object id
    content: str
    content_type: str
    edited: datetime | None = None
    deleted: datetime | None = None
    version: int = 0  # bumps the etag on every change


@dataclass
class Chat:
    id: str
    chat_type: str  # oneOnOne | group | meeting
    members: list[str]  # object ids
    created: datetime
    topic: str | None = None
    meeting_id: str | None = None
    messages: list[Message] = field(default_factory=list)


@dataclass
class Channel:
    id: str
    display_name: str
    messages: list[Message] = field(default_factory=list)


@dataclass
class Team:
    id: str
    display_name: str
    members: list[str]
    channels: dict[str, Channel]


@dataclass
class Meeting:
    """An online meeting. `kind` is what the calling model decides from (regular, channel, webinar,
    live event); the join link's host says whether it is Teams for personal use."""

    id: str
    subject: str
    organizer: str
    attendees: list[str]
    thread_id: str
    join_url: str
    start: datetime
    end: datetime
    kind: str = "regular"  # regular | channel | webinar | live-event
    name: str = ""  # how profiles and scenarios refer to it (defaults to its kind)
    meeting_code: str | None = None  # the numeric meeting id people type in, with a passcode
    passcode: str | None = None
    presenters: list[str] = field(default_factory=list)  # webinar presenters (besides the organizer)
    team_id: str | None = None  # channel meetings
    channel_id: str | None = None
    # Meeting options (the organizer's) and the meeting policy behind them.
    lobby_bypass: str = "organization"  # who bypasses the lobby: organization | organizer
    who_can_present: str = "everyone"  # everyone | organizer
    attendee_mic: bool = True  # "Allow mic for attendees"
    attendee_camera: bool = True  # "Allow camera for attendees"
    promoted: list[str] = field(default_factory=list)  # attendees the organizer made presenters


@dataclass
class Tenant:
    name: str
    tenant_id: str
    domain: str
    display_name: str
    users: dict[str, User]
    apps: dict[str, AppRegistration]
    service_principals: set[str]
    misconfiguration: str | None = None
    teams: dict[str, Team] = field(default_factory=dict)
    chats: dict[str, Chat] = field(default_factory=dict)
    admits_teams_users_to_live_events: bool = False  # only the deliberately wrong sandbox sets this
    refuses_personal_use_links: bool = True  # the SDK's 40238 check; a deliberately wrong model skips it
    honours_webinar_roles: bool = False  # what the service would do if it enforced the webinar caveat away
    blocked_domains: set[str] = field(default_factory=set)  # external access (federation) blocked for these
    enforces_lobby: bool = True  # only the deliberately wrong sandbox turns this off
    # Which cloud the tenant lives in, as its OpenID configuration says (docs/contracts/identity.md §10): the
    # public cloud's values unless a variant says otherwise.
    cloud_instance_name: str = "microsoftonline.com"
    tenant_region_scope: str = "NA"
    tenant_region_sub_scope: str | None = None
    meetings: dict[str, Meeting] = field(default_factory=dict)
    # The Azure role the tenant's app's service principal holds on the sandbox's ACS resource (None: none).
    acs_role: str | None = "Contributor"

    def user_by_upn(self, upn: str) -> User | None:
        upn = upn.lower()
        return next((u for u in self.users.values() if u.upn.lower() == upn), None)

    def user_by_oid(self, oid: str) -> User | None:
        return next((u for u in self.users.values() if u.oid == oid), None)


# Each misconfiguration changes facts of a healthy tenant; the failures follow from them.
MISCONFIGURATIONS: dict[str, Callable[[Tenant], None]] = {}


def misconfiguration(name: str):
    def register(fn: Callable[[Tenant], None]) -> Callable[[Tenant], None]:
        MISCONFIGURATIONS[name] = fn
        return fn

    return register


@misconfiguration("consent-missing")
def _consent_missing(tenant: Tenant) -> None:
    for app in tenant.apps.values():
        app.consented.pop(ACS_RESOURCE_URI, None)


@misconfiguration("calls-scope-missing")
def _calls_scope_missing(tenant: Tenant) -> None:
    for app in tenant.apps.values():
        app.consented[ACS_RESOURCE_URI] = frozenset({"Teams.ManageChats"})


@misconfiguration("public-client-disabled")
def _public_client_disabled(tenant: Tenant) -> None:
    for app in tenant.apps.values():
        app.public_client_flows = False


@misconfiguration("no-teams-license")
def _no_teams_license(tenant: Tenant) -> None:
    for user in tenant.users.values():
        user.teams_license = False


@misconfiguration("acs-sp-missing")
def _acs_sp_missing(tenant: Tenant) -> None:
    tenant.service_principals.discard(ACS_FIRST_PARTY_APP_ID)


@misconfiguration("graph-scope-missing")
def _graph_scope_missing(tenant: Tenant) -> None:
    for app in tenant.apps.values():
        app.consented[GRAPH_RESOURCE_URI] = app.consented[GRAPH_RESOURCE_URI] - {"ChatMessage.Send", "Chat.ReadWrite"}


@misconfiguration("no-enterprise-voice")
def _no_enterprise_voice(tenant: Tenant) -> None:
    for user in tenant.users.values():
        user.enterprise_voice = False


@misconfiguration("live-events-joinable")
def _live_events_joinable(tenant: Tenant) -> None:
    """A deliberately wrong sandbox: it admits Teams users to live events. It exists to show that
    a verdict follows the observation (row 8 then FAILs as unexpectedly allowed)."""
    tenant.admits_teams_users_to_live_events = True


@misconfiguration("personal-use-joinable")
def _personal_use_joinable(tenant: Tenant) -> None:
    """A deliberately wrong calling model: it lacks the SDK's client-side 40238 check on teams.live.com
    links. Cross-checked with the real SDK (--calling browser), row 9 must FAIL on the disagreement."""
    tenant.refuses_personal_use_links = False


@misconfiguration("webinar-roles-honoured")
def _webinar_roles_honoured(tenant: Tenant) -> None:
    """A service that enforced webinar roles for Teams users: the caveat would no longer show."""
    tenant.honours_webinar_roles = True


@misconfiguration("lobby-not-enforced")
def _lobby_not_enforced(tenant: Tenant) -> None:
    """A deliberately wrong sandbox: it lets everyone past the lobby. Its lobby scenario must FAIL."""
    tenant.enforces_lobby = False


@misconfiguration("acs-role-missing")
def _acs_role_missing(tenant: Tenant) -> None:
    """The app's service principal has no role assignment on the ACS resource (RBAC): Entra issues it a
    token for https://communication.azure.com, and ACS refuses the calls made with it (403)."""
    tenant.acs_role = None


@misconfiguration("client-secret-expired")
def _client_secret_expired(tenant: Tenant) -> None:
    """The app's client secret has expired (AADSTS7000222 on every client-credentials request)."""
    for app in tenant.apps.values():
        app.client_secret_expires = SANDBOX_EPOCH - timedelta(days=1)


@misconfiguration("gcc-high")
def _gcc_high(tenant: Tenant) -> None:
    """A Microsoft 365 GCC High tenant: its OpenID configuration names the US Government cloud. The values are
    the ones third-party tools read from such tenants (emulator-defined: Microsoft documents no example)."""
    tenant.cloud_instance_name = "microsoftonline.us"
    tenant.tenant_region_scope = "USGov"
    tenant.tenant_region_sub_scope = "DODCON"


@misconfiguration("redirect-uri-wrong-platform")
def _redirect_uri_wrong_platform(tenant: Tenant) -> None:
    """The SPA's redirect URI registered under "Mobile and desktop applications" (publicClient) instead of
    "Single-page application": a browser redeeming its code gets AADSTS9002326."""
    for app in tenant.apps.values():
        app.redirect_uris = (*app.redirect_uris, *app.spa_redirect_uris)
        app.spa_redirect_uris = ()


@misconfiguration("redirect-uri-unregistered")
def _redirect_uri_unregistered(tenant: Tenant) -> None:
    """The SPA's redirect URI registered under no platform: the authorize request gets AADSTS50011."""
    for app in tenant.apps.values():
        app.spa_redirect_uris = ()


@misconfiguration("app-not-registered")
def _app_not_registered(tenant: Tenant) -> None:
    tenant.apps.clear()


TENANT_NAMES = (HOME_TENANT, EXTERNAL_TENANT, *MISCONFIGURATIONS)  # fabrikam: an external organisation
if set(MISCONFIGURATIONS) != set(VARIANT_TENANTS):  # the names clients may ask for are the ones built here
    raise RuntimeError(
        f"wire.tenant.VARIANT_TENANTS and the sandbox's misconfigurations differ: "
        f"{sorted(set(MISCONFIGURATIONS) ^ set(VARIANT_TENANTS))}"
    )


def meeting_thread(ids: IdSource, key: str) -> str:
    return f"19:meeting_{base64.b64encode(ids.stable(key).encode()).decode().rstrip('=')}@thread.v2"


@functools.lru_cache(maxsize=1024)
def join_url(thread: str, tenant_id: str, organizer: str) -> str:
    """The long meetup-join form Teams and Graph hand out."""
    import json
    import urllib.parse

    context = urllib.parse.quote(json.dumps({"Tid": tenant_id, "Oid": organizer}, separators=(",", ":")), safe="")
    return f"https://teams.microsoft.com/l/meetup-join/{urllib.parse.quote(thread, safe='')}/0?context={context}"


def seed_meetings(ids: IdSource, tenant: Tenant, team: Team, channel_id: str) -> None:
    """One meeting of each kind, organised by megan, with adele invited: what a test tenant would set up."""
    megan, adele = tenant.users["megan"].oid, tenant.users["adele"].oid
    options = {  # meetings set up to show meeting options and policies being enforced
        "lobby": {"lobby_bypass": "organizer"},
        "attendee-mic-off": {"who_can_present": "organizer", "attendee_mic": False},
        "attendee-camera-off": {"who_can_present": "organizer", "attendee_camera": False},
        "organizer-presents": {"who_can_present": "organizer"},
    }
    kinds = ("regular", "channel", "webinar", "live-event", *options)
    for number, kind in enumerate(kinds, start=1):
        thread = meeting_thread(ids, f"{tenant.name}/meeting/{kind}")
        meeting = Meeting(
            id=ids.stable(f"{tenant.name}/meeting-id/{kind}"),
            subject=f"{kind.replace('-', ' ').title()} (sandbox)",
            organizer=megan,
            attendees=[adele],
            thread_id=thread,
            join_url=join_url(thread, tenant.tenant_id, megan),
            start=SANDBOX_EPOCH,
            end=SANDBOX_EPOCH + timedelta(hours=1),
            kind=kind,
            meeting_code=f"34{number:02d}{int(ids.stable(f'{tenant.name}/code/{kind}')[:8], 16) % 10**9:09d}",
            passcode=base64.b32encode(ids.secret(f"{tenant.name}/passcode/{kind}", 5)).decode()[:6],
            team_id=team.id if kind == "channel" else None,
            channel_id=channel_id if kind == "channel" else None,
            name=kind,
            **options.get(kind, {}),
        )
        if kind in options:
            meeting.kind = "regular"  # an ordinary meeting, with its options set
        tenant.meetings[meeting.id] = meeting
        tenant.chats[thread] = Chat(thread, "meeting", [megan, adele], SANDBOX_EPOCH, meeting.subject, meeting.id)


def service_principal_oid(ids: IdSource, tenant_name: str, client_id: str) -> str:
    """The object id of app `client_id`'s service principal in tenant `tenant_name` (a token's `oid`)."""
    return ids.stable(f"{tenant_name}/sp/{client_id}")


def _password(ids: IdSource, name: str) -> str:
    return "Pw!" + base64.urlsafe_b64encode(ids.secret(f"password:{name}", 12)).decode()


# Two more public-client app registrations in the home tenant, for checking a partner's token service
# (`cte backend check`): a token issued to an app the service does not serve, and a token for ACS that
# carries Teams.ManageChats only (an app consented to one Teams scope). Purpose -> (id seed, name, scopes).
EXTRA_APPS = {
    "other_client_id": ("app/cte-other-client", "CTE Other Client", frozenset(TEAMS_SCOPES)),
    "chats_only_client_id": ("app/cte-chats-only-client", "CTE Chats-only Client", frozenset({"Teams.ManageChats"})),
}


def extra_app_ids(ids: IdSource) -> dict[str, str]:
    """The extra apps' client ids by purpose (the same in every run: stable ids)."""
    return {purpose: ids.stable(seed) for purpose, (seed, _, _) in EXTRA_APPS.items()}


def build_tenant(ids: IdSource, name: str, client_id: str) -> Tenant:
    """A healthy tenant named `name`, then its misconfiguration (if `name` is one) applied."""
    domain = f"{name}-sandbox.onmicrosoft.com"

    def user(alias: str, display: str, **facts: bool | str) -> User:
        return User(
            alias=alias,
            upn=f"{alias}@{domain}",
            display_name=display,
            password=_password(ids, f"{name}/{alias}"),
            oid=ids.stable(f"{name}/user/{alias}"),
            **facts,
        )

    users = [
        user("adele", "Adele Vance", enterprise_voice=True),
        user("megan", "Megan Bowen", teams_client="answers"),
        user("lynne", "Lynne Robbins", mfa_required=True),
        user("pradeep", "Pradeep Gupta", teams_license=False),
        user("nestor", "Nestor Wilke", chat_enabled=False),
        user("isaiah", "Isaiah Langer", private_calls=False),
        user("alex", "Alex Wilber", teams_client="answers"),
    ]
    app = AppRegistration(
        client_id=client_id,
        display_name="CTE Conformance Client",
        client_secret="cs~" + base64.urlsafe_b64encode(ids.secret("app/client-secret", 24)).decode(),
        consented={
            ACS_RESOURCE_URI: frozenset(TEAMS_SCOPES),
            GRAPH_RESOURCE_URI: RESOURCES[GRAPH_RESOURCE_URI][2],
        },
    )
    tenant = Tenant(
        name=name,
        tenant_id=ids.stable(f"tenant/{name}"),
        domain=domain,
        display_name=f"{name.title()} (sandbox)",
        users={u.alias: u for u in users},
        apps={app.client_id: app},
        service_principals={ACS_FIRST_PARTY_APP_ID, ACS_DATA_PLANE_APP_ID, GRAPH_APP_ID},
    )
    team_id = ids.stable(f"{name}/team/sales")
    general = f"19:{ids.stable(f'{name}/channel/general').replace('-', '')}@thread.tacv2"
    tenant.teams[team_id] = Team(
        id=team_id,
        display_name="Sales and Marketing",
        members=[u.oid for u in users if u.alias in ("adele", "megan", "pradeep")],
        channels={general: Channel(id=general, display_name="General")},
    )
    seed_meetings(ids, tenant, tenant.teams[team_id], general)
    if name == HOME_TENANT:
        for seed, display_name, scopes in EXTRA_APPS.values():
            extra = AppRegistration(ids.stable(seed), display_name, consented={ACS_RESOURCE_URI: scopes})
            tenant.apps[extra.client_id] = extra
    if name != EXTERNAL_TENANT:  # external access: contoso (and its variants) block fabrikam's domain
        tenant.blocked_domains = {"fabrikam-sandbox.onmicrosoft.com"}
    if name in MISCONFIGURATIONS:
        MISCONFIGURATIONS[name](tenant)
        tenant.misconfiguration = name
    return tenant


@dataclass
class Directory:
    """Every tenant the sandbox hosts, plus the one ACS resource their users exchange tokens at."""

    tenants: dict[str, Tenant]
    acs: AcsResource
    client_id: str

    @classmethod
    def build(cls, ids: IdSource) -> Directory:
        # One multi-tenant app registration, as an ISV ships it; each tenant has its own copy of
        # the facts (consent, public client flows) the way service principals carry them.
        client_id = ids.stable("app/cte-conformance-client")
        tenants = {name: build_tenant(ids, name, client_id) for name in TENANT_NAMES}
        acs = AcsResource(
            name="cte-sandbox",
            immutable_id=ids.stable("acs/cte-sandbox"),
            access_key=base64.b64encode(ids.secret("acs/access-key", 64)).decode(),
        )
        for tenant in tenants.values():
            if tenant.name == EXTERNAL_TENANT:  # another organisation: the resource is not in its subscription
                continue
            acs.home_tenants.add(tenant.tenant_id)
            if tenant.acs_role and client_id in tenant.apps:
                acs.role_assignments[service_principal_oid(ids, tenant.name, client_id)] = tenant.acs_role
        return cls(tenants=tenants, acs=acs, client_id=client_id)

    def tenant(self, key: str) -> Tenant | None:
        """Find a tenant by id, name or verified domain."""
        key = key.lower()
        for tenant in self.tenants.values():
            if key in (tenant.tenant_id, tenant.name, tenant.domain):
                return tenant
        return None

    def tenant_of_upn(self, upn: str) -> Tenant | None:
        domain = upn.rpartition("@")[2].lower()
        return next((t for t in self.tenants.values() if t.domain == domain), None)
