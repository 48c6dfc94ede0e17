"""The Enforcer port.

Contract:

* ``apply(changes, now)`` carries out a batch of :class:`~shieldwall.model.Add` /
  :class:`~shieldwall.model.Remove` in as few transactions as the backend allows (one for
  nftables). An ``Add`` for a scope already blocked only ever *extends* its expiry, never
  shortens it. A ``Remove`` of a scope that is not blocked is a no-op and never makes the
  rest of the batch fail.
* ``sync(active, now)`` makes the enforcer hold exactly ``active`` (scope → expiry), each with
  its remaining time; used at start and after a full resync.
* ``close()`` releases resources; it does not remove the blocks (they expire on their own).

The caller (the agent) owns the decision view and computes the changes; enforcers never decide
what to block. Enforcers raise :class:`~shieldwall.errors.EnforcerError` on failures they
cannot absorb.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from shieldwall.model import Change, Scope


class Enforcer(Protocol):
    name: str

    async def apply(self, changes: Sequence[Change], now: datetime) -> None: ...

    async def sync(self, active: Mapping[Scope, datetime], now: datetime) -> None: ...

    async def close(self) -> None: ...
