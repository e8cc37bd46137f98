"""The four modes as objects: where a run's traffic goes, what it trusts, what it records.

- sandbox: the embedded sandbox (started on first use), its own CA; no cassettes; every scenario
  starts from the freshly seeded tenant (as in record mode), whatever ran before it.
- live: the profile's endpoints and nothing else, its `ca_bundle` (else the system's CAs); no cassettes.
- replay: canonical Microsoft hosts answered from `cassette_dir`; the network blocked.
- record: the deterministic sandbox for a sandbox profile, the profile's endpoints for a live one;
  every exchange written, scrubbed, to `cassette_dir`.

The pytest plugin asks the mode; it never branches on the mode's name. A live (or recorded live)
run never starts or routes to the embedded sandbox: a sandbox profile named in it is skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from harness.client.graph import MarkerSource
from harness.core.cassettes import CASSETTE_ROOT, cassette_path, check_cassette, display_path, make_vcr
from harness.core.config import MODES, Profile, ProfileError, Secret, Tenant, UserCredentials, load_profile
from harness.core.prerequisites import MissingPrerequisite
from harness.wire import transport
from harness.wire.tls import client_context

# harness.sandbox.server.embedded: (deterministic=, faults=, where=) -> a function that starts the
# sandbox (the [faults] table checked at once, ValueError). Only the CLI and the pytest plugin hand it
# over (harness.run.cli.embedded_sandbox): a mode never imports the sandbox itself.
EmbeddedSandbox = Callable[..., Callable[[], Any]]


@dataclass
class Pacing:
    """Message markers and the retry sleep of one scenario."""

    markers: MarkerSource
    sleep: Callable[[float], None]


@dataclass
class ReceiverTrust:
    """What the webhook receiver trusts and where Graph reaches it."""

    keys: dict[str, Any]
    public_url: str | None = None
    port: int = 0


@dataclass
class Scenario:
    """What the plugin tells a mode about a scenario that is starting."""

    nodeid: str
    area: str
    feature_file: str
    name: str
    example: str | None


@dataclass
class Recording:
    """The cassette side of a scenario (record and replay only)."""

    path: Path
    shown: str  # the cassette as reports name it
    record: bool
    scrubber: Any
    inbound: Any = None  # replay: an InboundReplayer for the notifications area


class Mode:
    """Common ground; subclasses say where tenants come from. The session's known secrets are the
    union of every tenant resolved, so that anything written is scrubbed of all of them."""

    name = ""
    uses_cassettes = False

    def __init__(
        self,
        profile: Profile,
        *,
        calling: str | None = None,
        cassette_dir: Path | None = None,
        embedded: EmbeddedSandbox | None = None,
    ) -> None:
        self.profile = profile
        self.calling = calling
        self.cassette_dir = (cassette_dir or CASSETTE_ROOT).resolve()
        self.embedded = embedded
        self.known_secrets: dict[str, str] = {}
        self._tenants: dict[str, Tenant] = {}
        self._stack = contextlib.ExitStack()
        self.capture_sink: Callable[[dict[str, Any]], None] | None = None
        if "faults" in profile.data:
            self.refuse_faults()

    def refuse_faults(self) -> None:
        """A profile with [faults]: only the embedded sandbox injects them (SandboxMode accepts them)."""
        raise ProfileError(
            f"profile {self.profile.name!r} has [faults], which only the embedded sandbox injects: run a sandbox "
            "profile with --mode sandbox, or remove [faults]"
        )

    # -- tenants -----------------------------------------------------------------------------------

    def tenant(self, profile: Profile | None = None) -> Tenant:
        """The tenant of `profile` (default: the run's) in this mode; MissingPrerequisite if this
        mode cannot reach it."""
        profile = profile or self.profile
        key = str(profile.path or profile.name)
        if key not in self._tenants:
            tenant = self._resolve(profile)
            if self.calling:
                tenant = dataclasses.replace(tenant, calling_driver=self.calling)
            self.known_secrets.update(tenant.known_secrets())
            self._tenants[key] = tenant
        return self._tenants[key]

    def misconfigured(self, name: str) -> Tenant:
        """The run's tenant with misconfiguration `name`, as its profile's [misconfigured] names it."""
        reference = self.tenant().misconfigured_profile(name)
        try:
            return self.tenant(load_profile(reference))
        except ProfileError as err:
            raise MissingPrerequisite(f"[misconfigured] {name}: {err}") from None

    def _resolve(self, profile: Profile) -> Tenant:
        raise NotImplementedError

    # -- the webhook receiver -----------------------------------------------------------------------

    def receiver_trust(self) -> ReceiverTrust:
        raise NotImplementedError

    def signer(self) -> Any:
        """Signs validation tokens the receiver trusts (forging expired ones); None where only
        Microsoft holds the key."""
        return None

    def lifecycle_trigger(self) -> Callable[[str, str], None] | None:
        """Makes Graph send a lifecycle notification; None where Graph decides when."""
        return None

    # -- each scenario ------------------------------------------------------------------------------

    def pacing(self, nodeid: str) -> Pacing:
        return Pacing(MarkerSource(), time.sleep)

    def cassette_for(self, scenario: Scenario) -> Path | None:
        """The scenario's cassette in this mode (None: no cassettes)."""
        if not self.uses_cassettes:
            return None
        return cassette_path(
            scenario.area, scenario.feature_file, scenario.name, scenario.example, root=self.cassette_dir
        ).resolve()

    def begin(
        self, scenario: Scenario, stack: contextlib.ExitStack, receiver: Callable[[], Any] | None
    ) -> Recording | None:
        """Set a scenario up (its fresh world, its cassette); clean-up goes on `stack`. `receiver`
        starts (or returns) the webhook receiver, for a notifications scenario."""
        return None

    def fresh_world(self, stream: str) -> None:
        """Put the target back to its seeded state before scenario `stream`; nothing where the harness
        cannot (a live tenant keeps what it has; a cassette answers the same whatever ran before)."""

    def health(self) -> dict[str, Any] | None:
        """What the target saw, for the report (the embedded sandbox only)."""
        return None

    def close(self) -> None:
        self._stack.close()


# -- the embedded sandbox ------------------------------------------------------------------------------


class SandboxMode(Mode):
    name = "sandbox"

    def __init__(self, profile: Profile, *, deterministic: bool = False, **kwargs: Any) -> None:
        if profile.kind != "sandbox":
            raise ProfileError(
                f"profile {profile.name!r} is a live profile; run it with --mode live (or record it with cte record)"
            )
        self.deterministic = deterministic
        super().__init__(profile, **kwargs)
        if self.embedded is None:
            raise RuntimeError("only the pytest plugin and the CLI start the embedded sandbox: pass embedded=")
        self._sandbox: Any = None
        self._start: Callable[[], Any] | None = None
        if profile.data.get("faults") is not None:
            try:  # a bad [faults] table fails here, before any scenario
                self._start = self._starter()
            except ValueError as exc:
                raise ProfileError(str(exc)) from None
        # Without [faults] there is nothing to check: the sandbox's code is loaded when a scenario first
        # needs it, not by a process that only checks the profile (`cte run` before it starts pytest, the
        # xdist controller), each of which would otherwise load it for nothing.

    def _starter(self) -> Callable[[], Any]:
        return self.embedded(
            deterministic=self.deterministic,
            faults=self.profile.data.get("faults"),
            where=str(self.profile.path or self.profile.name),
        )

    def refuse_faults(self) -> None:
        if self.deterministic:
            raise ProfileError(f"profile {self.profile.name!r} injects faults; record with a profile without [faults]")

    def sandbox(self) -> Any:
        if self._sandbox is None:
            if self._start is None:
                self._start = self._starter()
            self._sandbox = self._stack.enter_context(self._start())
            self._stack.enter_context(transport.route_hosts(self._sandbox.host_routes()))
        return self._sandbox

    def _resolve(self, profile: Profile) -> Tenant:
        if profile.kind != "sandbox":
            raise MissingPrerequisite(
                f"profile {profile.name!r} is a live tenant; the embedded sandbox cannot play it (--mode live)"
            )
        sandbox = self.sandbox()
        external = None
        if found := profile.external_sandbox_user():
            tenant_name, alias = found
            user = sandbox.tenant_info(tenant_name).user(alias)
            external = UserCredentials("external", user.upn, Secret(""), user.oid)
        info = sandbox.tenant_info(profile.sandbox_tenant)
        return profile.for_sandbox(info, sandbox.host_routes(), self.name, external=external)

    def receiver_trust(self) -> ReceiverTrust:
        from harness.wire import notification_crypto as crypto

        return ReceiverTrust(crypto.jwks_keys(self.sandbox().ctx.entra_signer.jwks()))

    def signer(self) -> Any:
        return _SandboxSigner(self.sandbox())

    def lifecycle_trigger(self) -> Callable[[str, str], None] | None:
        return self.sandbox().lifecycle_event

    def begin(
        self, scenario: Scenario, stack: contextlib.ExitStack, receiver: Callable[[], Any] | None
    ) -> Recording | None:
        """Every scenario starts from the freshly seeded tenant, whatever ran before it (-k, -n,
        --rerun-failed, --cte-order): no agent, call, chat, token or subscription of an earlier one."""
        self.fresh_world(scenario.nodeid)
        return None

    def pacing(self, nodeid: str) -> Pacing:
        """The sandbox runs in this process, on a model clock: a client that honours Retry-After moves
        that clock on by the wait instead of sleeping (the sandbox sees the same wait; the run does not
        spend it). Live and record runs sleep for real."""
        clock = self.sandbox().ctx.clock
        return Pacing(MarkerSource(), lambda seconds: clock.advance(timedelta(seconds=seconds)))

    def fresh_world(self, stream: str) -> None:
        self.sandbox().begin_stream(stream)

    def health(self) -> dict[str, Any] | None:
        return self._sandbox.health() if self._sandbox is not None else None


class _SandboxSigner:
    """Validation tokens signed with the sandbox's Entra key (for forging expired ones)."""

    def __init__(self, sandbox: Any) -> None:
        self._sign = sandbox.ctx.entra_signer.sign

    def token(self, audience: str, tenant_id: str, *, lifetime_s: int = 3600) -> str:
        from harness.wire.notification_crypto import validation_token_claims

        return self._sign(validation_token_claims(audience, tenant_id, lifetime_s=lifetime_s))


# -- a live tenant ----------------------------------------------------------------------------------


class LiveMode(Mode):
    """A tenant known only by its profile: its endpoints, its CA bundle, secrets from the environment."""

    name = "live"

    def __init__(self, profile: Profile, **kwargs: Any) -> None:
        super().__init__(profile, **kwargs)
        if profile.kind != "live":
            raise ProfileError(
                f"profile {profile.name!r} is a sandbox profile: --mode live needs a live profile (copy "
                "harness/profiles/live.example.toml), or run this one with --mode sandbox"
            )
        self.tenant()  # every secret it names must be set: fail now, in one line, not in each scenario

    def _resolve(self, profile: Profile) -> Tenant:
        if profile.kind != "live":
            raise MissingPrerequisite(
                f"profile {profile.name!r} is a sandbox profile; a {self.name} run reaches only live tenants "
                "(name a live profile instead)"
            )
        try:
            return dataclasses.replace(profile.for_live(), mode=self.name)
        except ProfileError as err:
            if profile is self.profile or profile.path == self.profile.path:
                raise
            raise MissingPrerequisite(str(err)) from None

    def receiver_trust(self) -> ReceiverTrust:
        """Graph signs validation tokens with the tenant's cloud's Entra keys (its JWKS)."""
        import httpx

        from harness.wire import notification_crypto as crypto

        tenant = self.tenant()
        public_url = os.environ.get("CTE_NOTIFICATION_URL") or tenant.notification_url
        port = tenant.notification_port or int(os.environ.get("CTE_NOTIFICATION_PORT") or 0)
        if not public_url or not port:
            raise MissingPrerequisite(
                "live notifications need a public HTTPS URL in front of the receiver and the loopback port it "
                "forwards to: set [notifications] public_url and listen_port (or CTE_NOTIFICATION_URL and "
                "CTE_NOTIFICATION_PORT)"
            )
        authority_origin = tenant.authority.rsplit("/", 1)[0]
        jwks_url = f"{authority_origin}/common/discovery/v2.0/keys"
        verify = client_context(str(tenant.ca_bundle) if tenant.ca_bundle else None)
        try:
            keys = crypto.jwks_keys(httpx.get(jwks_url, timeout=30, verify=verify).json())
        except (httpx.HTTPError, ValueError, AttributeError) as err:
            raise MissingPrerequisite(f"cannot fetch Entra's signing keys from {jwks_url}: {err}") from None
        if not keys:
            raise MissingPrerequisite(f"Entra's key set at {jwks_url} holds no RSA signing key")
        return ReceiverTrust(keys, public_url, port)


# -- cassettes ------------------------------------------------------------------------------------------


class ReplayMode(Mode):
    """Canonical Microsoft hosts, answered from cassettes; the network blocked but for our receiver."""

    name = "replay"
    uses_cassettes = True

    def __init__(self, profile: Profile, **kwargs: Any) -> None:
        super().__init__(profile, **kwargs)
        if not self.cassette_dir.is_dir():
            raise ProfileError(
                f"no cassettes at {self.cassette_dir}; pass --cassette-dir with a folder cte record wrote"
            )
        self._token_signer: Any = None

    @property
    def _signer(self) -> Any:
        """The key replayed notifications' validation tokens are signed with: made when a scenario first
        needs the receiver (an RSA key: a run without notifications scenarios never makes it)."""
        if self._token_signer is None:
            from harness.wire import notification_crypto as crypto

            self._token_signer = crypto.TokenSigner()
        return self._token_signer

    def _resolve(self, profile: Profile) -> Tenant:
        return profile.for_replay()

    def receiver_trust(self) -> ReceiverTrust:
        return ReceiverTrust({self._signer.kid: self._signer.public_key})

    def signer(self) -> Any:
        return self._signer

    def lifecycle_trigger(self) -> Callable[[str, str], None] | None:
        return lambda subscription_id, event: None  # the recorded lifecycle notification is replayed

    def pacing(self, nodeid: str) -> Pacing:
        return Pacing(MarkerSource(nodeid), lambda _: None)

    def begin(self, scenario: Scenario, stack: contextlib.ExitStack, receiver: Callable[[], Any] | None) -> Recording:
        service = receiver() if receiver is not None else None
        path = self.cassette_for(scenario)
        assert path is not None
        if path.exists():
            check_cassette(path)  # before anything is pushed on the stack: a bad one leaves nothing behind
        allowed = {service.server.port} if service else set()
        stack.enter_context(transport.block_network("replay mode blocks the network", allow_ports=allowed))
        recorder, scrubber = make_vcr(lambda: self.known_secrets, record=False)
        stack.enter_context(recorder.use_cassette(str(path)))
        inbound = None
        if service is not None:
            from harness.client.notifications.inbound import InboundReplayer

            # The recorded notifications are sealed here, by InboundReplayer, for the key the receiver
            # holds under their certificate id: one key pair serves every subscription of the run.
            service.receiver.use_one_key_pair()
            inbound = InboundReplayer(path, service, self._signer, self.tenant().client_id)
        return Recording(path, display_path(path, self.cassette_dir), False, scrubber, inbound)


class RecordMode(Mode):
    """A target (the deterministic sandbox, or the live tenant of a live profile) with every
    exchange written, scrubbed, to cassette_dir."""

    name = "record"
    uses_cassettes = True

    def __init__(self, profile: Profile, **kwargs: Any) -> None:
        super().__init__(profile)
        self.target: Mode = (
            SandboxMode(profile, deterministic=True, **kwargs)
            if profile.kind == "sandbox"
            else LiveMode(profile, **kwargs)
        )
        if kwargs.get("cassette_dir") is None:
            raise ProfileError(
                "record mode needs a folder for its cassettes: --cte-cassette-dir (cte record --cassette-dir)"
            )
        self.cassette_dir = self.target.cassette_dir
        self.known_secrets = self.target.known_secrets  # one dict: what the target learns, we scrub

    def refuse_faults(self) -> None:
        raise ProfileError(f"profile {self.profile.name!r} injects faults; record with a profile without [faults]")

    def tenant(self, profile: Profile | None = None) -> Tenant:
        tenant = self.target.tenant(profile)
        return dataclasses.replace(tenant, mode=self.name)

    def misconfigured(self, name: str) -> Tenant:
        return dataclasses.replace(self.target.misconfigured(name), mode=self.name)

    def receiver_trust(self) -> ReceiverTrust:
        return self.target.receiver_trust()

    def signer(self) -> Any:
        return self.target.signer()

    def lifecycle_trigger(self) -> Callable[[str, str], None] | None:
        return self.target.lifecycle_trigger()

    def pacing(self, nodeid: str) -> Pacing:
        """Markers seeded from the scenario (a replay sends the same); waits as the target spends them (the
        deterministic sandbox's clock moves on, a live tenant's takes real time)."""
        return Pacing(MarkerSource(nodeid), self.target.pacing(nodeid).sleep)

    def begin(self, scenario: Scenario, stack: contextlib.ExitStack, receiver: Callable[[], Any] | None) -> Recording:
        service = receiver() if receiver is not None else None
        path = self.cassette_for(scenario)
        assert path is not None
        path.unlink(missing_ok=True)
        shown = display_path(path, self.cassette_dir)
        self.target.fresh_world(shown)  # the sandbox: ids and its fixed clock restarted for this cassette
        recorder, scrubber = make_vcr(lambda: self.known_secrets, record=True)
        stack.enter_context(recorder.use_cassette(str(path)))
        if service is not None:
            from harness.client.notifications.inbound import InboundCapture

            capture = InboundCapture(scrubber.json_value)
            self.capture_sink = capture
            stack.callback(capture.write, path)
            stack.callback(setattr, self, "capture_sink", None)
        return Recording(path, shown, True, scrubber)

    def health(self) -> dict[str, Any] | None:
        return self.target.health()

    def close(self) -> None:
        self.target.close()
        super().close()


MODE_CLASSES: dict[str, type[Mode]] = {
    "sandbox": SandboxMode,
    "live": LiveMode,
    "replay": ReplayMode,
    "record": RecordMode,
}
assert set(MODE_CLASSES) == set(MODES)


def mode_for(
    name: str,
    profile: Profile,
    *,
    calling: str | None = None,
    cassette_dir: Path | None = None,
    embedded: EmbeddedSandbox | None = None,
) -> Mode:
    """The mode object for a run; a profile that cannot run in it raises ProfileError (one line).
    `embedded` starts the embedded sandbox (harness.sandbox.server.embedded): the plugin and the CLI
    pass it, so that this module never imports the sandbox and a live run cannot start it."""
    return MODE_CLASSES[name](profile, calling=calling, cassette_dir=cassette_dir, embedded=embedded)
