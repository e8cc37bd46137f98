"""The one exception every layer may raise: what a scenario needs is not there."""

from __future__ import annotations


class MissingPrerequisite(Exception):
    """Something a scenario needs is not there (in the profile, or not reached): it is skipped with this reason."""


def token_wait(
    token: str, expires: int | None, now: float, limit_s: float, setting: str = "[tokens] max_expiry_wait_s"
) -> float:
    """Seconds to wait until `token` (e.g. "adele's Graph token", expiring at epoch `expires`) has expired by
    the clock that said `now`: a second past its exp. A longer wait than `limit_s` is not this run's to make:
    MissingPrerequisite naming `setting`, the profile entry that allows it."""
    wait = (expires or 0) - now + 1
    if wait > limit_s:
        raise MissingPrerequisite(
            f"{token} expires in {wait:.0f} s, longer than this run waits for a token ({limit_s:g} s); give test "
            f"users shorter-lived tokens (a token lifetime policy) or set {setting} in the profile"
        )
    return max(wait, 0)
