"""The Enforcer port.

Contract:

* ``apply(diff, now)`` carries out a :class:`~shieldwall.blocklist.Diff` in as few
  transactions as the backend allows (one for nftables): first every ``unblock``, then every
  ``block`` (scope → expiry, epoch seconds). A block for a scope already blocked only ever
  *extends* its expiry, never shortens it — unless the scope is in ``unblock`` too, which
  replaces it. Unblocking a scope that is not blocked is a no-op and never makes the rest of
  the diff fail.
* An expiry is the enforcer's to honour (nftables timeouts): the caller never sends an
  unblock because a block ran out.
* ``sync(active, now)`` makes the enforcer hold exactly ``active`` (scope → expiry), each with
  its remaining time; used at start and after a full resync.
* ``close()`` releases resources; it does not remove the blocks (they expire on their own).

The caller (the agent) owns the block list and computes the diffs; enforcers never decide
what to block, and a diff costs what it holds — an enforcer never walks what it already
enforces to apply one. Enforcers raise :class:`~shieldwall.errors.EnforcerError` on failures
they cannot absorb.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from shieldwall.blocklist import Diff
from shieldwall.model import Scope


class Enforcer(Protocol):
    name: str

    async def apply(self, diff: Diff, now: float) -> None: ...

    async def sync(self, active: Mapping[Scope, float], now: float) -> None: ...

    async def close(self) -> None: ...
