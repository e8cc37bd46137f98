"""Policy scenarios: which user or meeting carries a policy setting, as the profile declares it.

A profile lists its policy assignments (`[[policies]]`: policy, setting, value, and the user or
meeting that has it). A scenario that needs one the profile does not declare is skipped with the
assignment to add. Sandbox profiles share the sandbox tenant's list (profiles/sandbox.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.config import Profile, load_profile
from harness.scenario import MissingPrerequisite


@dataclass(frozen=True)
class PolicySetting:
    policy: str
    setting: str
    value: str
    user: str | None = None
    meeting: str | None = None
    tenant_profile: str | None = None

    def describe(self) -> str:
        holder = f"user {self.user!r}" if self.user else f"meeting {self.meeting!r}"
        return f"{self.policy}: {self.setting} = {self.value} ({holder})"


def declared(profile: Profile) -> list[PolicySetting]:
    entries: Any = profile.data.get("policies")
    if entries is None and profile.kind == "sandbox" and profile.name != "sandbox":
        entries = load_profile("sandbox").data.get("policies")
    keys = ("policy", "setting", "value", "user", "meeting", "tenant_profile")
    return [PolicySetting(**{k: str(e[k]) for k in keys if k in e}) for e in entries or [] if isinstance(e, dict)]


def require(
    profile: Profile, policy: str, setting: str, value: str, *, user: str | None = None, meeting: str | None = None
) -> PolicySetting:
    for entry in declared(profile):
        if (entry.policy, entry.setting, entry.value) == (policy, setting, value) and (
            (user and entry.user == user) or (meeting and entry.meeting == meeting)
        ):
            return entry
    holder = f'user = "{user}"' if user else f'meeting = "{meeting}"'
    raise MissingPrerequisite(
        f"profile {profile.name!r} declares no {policy} with {setting} = {value} for {user or meeting}; add a "
        f'[[policies]] entry: policy = "{policy}", setting = "{setting}", value = "{value}", {holder}'
    )
