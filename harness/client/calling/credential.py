"""The ACS token behind a TeamsCallAgent: `AzureCommunicationTokenCredential` in Python terms.

`@azure/communication-common`'s credential takes `{token, tokenRefresher, refreshProactively}`; the
refresher is the app's: it gets the user a fresh Entra token (MSAL, silently, with the refresh token)
and exchanges it for a new ACS token. Microsoft's guidance: "Ensure that your application implements
token refresh mechanism correctly" (call-end.md, 4507/495) and 10009/401 "Ensure that your Azure
Communication Services token is valid and not expired" (docs/contracts/calling.md §2).

- The sandbox driver asks the refresher when the token has expired by the calling service's clock (the
  `Date` of its last answer) or when the service answers 401 for an expired token, and goes on with
  the new one.
- The browser driver hands the refresher to the real SDK's credential (`refreshProactively: true`),
  which calls it itself before the token expires (harness.client.calling.browser_driver).

What the credential remembers is what a report may show: each token's expiry, why it was replaced,
what the service did with it. Never the token itself (`repr` included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.wire import tokens

Refresher = Callable[[], str | None]


@dataclass
class TokenUse:
    """One ACS token the credential held: its expiry, why it came, what the service did with it."""

    expires: int | None
    came_from: str  # "the exchange" for the first; why the refresher was asked for the others
    accepted: int = 0  # requests the service accepted with it
    refused: list[str] = field(default_factory=list)  # what the service said when it refused it
    sent_to: set[str] = field(default_factory=set)  # hosts the real SDK sent it to (offline: aborted there)


class TokenCredential:
    """`token`, and `token_refresher` (None: a static credential, as `new AzureCommunicationTokenCredential(token)`)."""

    def __init__(
        self, token: str, token_refresher: Refresher | None = None, *, refresh_proactively: bool = True
    ) -> None:
        self.token = token
        self.token_refresher = token_refresher
        self.refresh_proactively = refresh_proactively
        self.uses = [TokenUse(tokens.time_claim(token), "the token exchange")]
        self.failed_refreshes: list[str] = []
        self.server_time: float | None = None  # the service's clock, as the `Date` of its last answer gave it

    def __repr__(self) -> str:  # never the token
        expiries = [tokens.utc(u.expires) for u in self.uses]
        return f"TokenCredential(expiries={expiries}, refresher={self.token_refresher is not None})"

    @property
    def expiries(self) -> list[int | None]:
        return [u.expires for u in self.uses]

    @property
    def issued_at(self) -> int | None:
        """The current token's `iat` (the service's clock when it issued it), if it carries one."""
        return tokens.time_claim(self.token, "iat")

    @property
    def current(self) -> TokenUse:
        return self.uses[-1]

    def expired(self) -> bool:
        """Expired by the service's clock (unknown until it answered: then not known to have expired)."""
        exp, now = self.current.expires, self.server_time
        return now is not None and exp is not None and exp <= now

    def refresh(self, why: str) -> bool:
        """Ask the refresher for a new token; False if there is none or it gave none."""
        if self.token_refresher is None:
            return False
        fresh = self.token_refresher()
        if not fresh:
            self.failed_refreshes.append(why)
            return False
        self.token = fresh
        self.uses.append(TokenUse(tokens.time_claim(fresh), f"the token refresher: {why}"))
        return True

    def accepted_with(self) -> int | None:
        """The expiry of the latest token the service accepted a request with (None: none accepted)."""
        return next((u.expires for u in reversed(self.uses) if u.accepted), None)

    def describe(self) -> str:
        """Each token, in order: its expiry, where it came from, what the service did with it (no token)."""
        parts = []
        for n, use in enumerate(self.uses, 1):
            said = [f"accepted {use.accepted} request{'s' if use.accepted != 1 else ''}"] if use.accepted else []
            said += [f"refused: {r}" for r in dict.fromkeys(use.refused)]
            if use.sent_to:
                said.append(f"sent by the SDK to {', '.join(sorted(use.sent_to))}")
            head = f"ACS token {n} (expiresOn {tokens.utc(use.expires)}, from {use.came_from})"
            parts.append(head + (f": {'; '.join(said)}" if said else ""))
        if self.failed_refreshes:
            parts.append(f"the refresher gave no token ({'; '.join(self.failed_refreshes)})")
        return ". ".join(parts)
