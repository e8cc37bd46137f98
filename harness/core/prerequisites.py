"""The one exception every layer may raise: what a scenario needs is not there."""

from __future__ import annotations


class MissingPrerequisite(Exception):
    """Something a scenario needs is not there (in the profile, or not reached): it is skipped with this reason."""
