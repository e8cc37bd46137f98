"""Policy scenarios: which user or meeting carries a policy setting, as the profile declares it.

A profile lists its policy assignments (`[[policies]]`: policy, setting, value, and the user or
meeting that has it). A scenario that needs one the profile does not declare is skipped with the
assignment to add. Sandbox profiles share the sandbox tenant's list (harness/profiles/sandbox.toml).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.core import scrubbing
from harness.core.config import Tenant
from harness.core.prerequisites import MissingPrerequisite


@dataclass(frozen=True)
class PolicySetting:
    policy: str
    setting: str
    value: str
    user: str | None = None
    meeting: str | None = None

    def describe(self) -> str:
        holder = f"user {self.user!r}" if self.user else f"meeting {self.meeting!r}" if self.meeting else "the tenant"
        return f"{self.policy}: {self.setting} = {self.value} ({holder})"


def declared(tenant: Tenant) -> list[PolicySetting]:
    keys = ("policy", "setting", "value", "user", "meeting")
    return [PolicySetting(**{k: str(e[k]) for k in keys if k in e}) for e in tenant.policies]


def require(tenant: Tenant, policy: str, setting: str, value: str, *, meeting: str | None = None) -> PolicySetting:
    """The declared assignment of this setting: to a user (any), or to the named meeting."""
    for entry in declared(tenant):
        if (entry.policy, entry.setting, entry.value) == (policy, setting, value) and (
            entry.meeting == meeting if meeting else entry.user is not None
        ):
            return entry
    holder = f'meeting = "{meeting}"' if meeting else 'user = "<alias of a user who has it>"'
    raise MissingPrerequisite(
        f"profile {tenant.profile!r} declares no {policy} with {setting} = {value}"
        f"{f' for meeting {meeting!r}' if meeting else ''}; add a [[policies]] entry: "
        f'policy = "{policy}", setting = "{setting}", value = "{value}", {holder}'
    )


def require_blocked_domain(tenant: Tenant) -> PolicySetting:
    """External access blocking the external user's domain ([external_user] and a [[policies]] entry)."""
    domain = tenant.external().upn.rpartition("@")[2].lower()
    for entry in declared(tenant):
        if entry.policy == "External access" and entry.value == "Blocked" and entry.setting.lower() == domain:
            return entry
    raise MissingPrerequisite(
        f"profile {tenant.profile!r} declares no External access policy blocking the external user's domain; add a "
        f'[[policies]] entry: policy = "External access", setting = "<that domain>", value = "Blocked"'
    )


def changed_in_meeting(tenant: Tenant, meeting: str, setting: str, value: str) -> PolicySetting:
    """A meeting option the organizer changes while the meeting runs (the scenario changes it, so the
    profile only names the meeting, with its organizer): what the scenario tests, as policy metadata."""
    tenant.meeting(meeting)  # a MissingPrerequisite naming the [meetings.*] table to add
    return PolicySetting(
        "Meeting options", setting, f"{value} (changed by the organizer during the meeting)", None, meeting
    )


def report_metadata(setting: PolicySetting, enforcement: str) -> dict[str, str]:
    """What the report says about a policy: policy, setting, who or what has it, the enforcement.

    External access names another organisation's domain: that identifies a third party, so it is
    shown as the external user's placeholder domain (never the tenant's own users' placeholder),
    unless it is a reserved, non-resolving domain (.invalid, .example, .test, example.com: RFC 2606),
    which identifies nobody and is shown as the profile wrote it."""
    if setting.policy == "External access":
        domain = setting.setting.lower()
        public = scrubbing.is_reserved_domain(domain) and domain != scrubbing.EXTERNAL_DOMAIN  # replay shows that
        shown = domain if public else f"{scrubbing.EXTERNAL_DOMAIN} (redacted)"
        return {
            "policy": setting.policy,
            "setting": f"Blocked domain {shown} = {setting.value}",
            "holder": "the external user's organisation",
            "enforcement": enforcement,
        }
    return {
        "policy": setting.policy,
        "setting": f"{setting.setting} = {setting.value}",
        "holder": setting.user or setting.meeting or "",
        "enforcement": enforcement,
    }
