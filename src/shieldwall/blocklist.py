"""What a member blocks, kept up to date at the cost of what changed. Pure.

A :class:`BlockList` holds the council's active decisions as *claims* (decision id → scope,
expiry) and the member's own local bans (scope → expiry); a scope is blocked until the latest
expiry among its claims and its local ban. Every change is recorded against the expiry the
scope had when it was first touched, and :meth:`BlockList.take_diff` turns the touched scopes
into the :class:`Diff` an enforcer needs — so applying N events costs O(N), whatever the
number of active decisions, and the diff equals what a full recomputation of both sets
would give (:func:`full_diff`; property-tested).

Expiry is time order, not a scan: the council ends a decision with a ``revoke`` or
``expire`` event, enforcers let blocks lapse on their own (nftables timeouts), and local bans
leave through a heap (:meth:`BlockList.expire`). A claim whose expiry has passed counts as
absent. Times are epoch seconds (floats); scopes are :class:`~shieldwall.net.Net`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from shieldwall.model import Address, Scope, address_scope


@dataclass(frozen=True, slots=True)
class Diff:
    """What an enforcer must change: first stop blocking every scope of ``unblock``, then
    block every scope of ``block`` until its expiry (epoch seconds).

    A ``block`` entry only ever *extends* a block in place, never shortens it — unless its
    scope is also in ``unblock``: then it replaces it (the block got shorter). A scope in
    ``unblock`` that is not blocked is a no-op. An expiry is the enforcer's to honour: no
    ``unblock`` is ever sent because a block ran out."""

    block: Mapping[Scope, float] = field(default_factory=dict)
    unblock: Sequence[Scope] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.unblock, tuple):
            object.__setattr__(self, "unblock", tuple(self.unblock))

    def __bool__(self) -> bool:
        return bool(self.block) or bool(self.unblock)

    def __len__(self) -> int:
        return len(self.block) + len(self.unblock)


Claim = tuple[str, Scope, float]
"""A council decision as a member holds it: (decision id, scope, expiry)."""


class BlockList:
    """The council's decisions (claims) and the member's local bans, by scope."""

    __slots__ = ("_by_scope", "_claims", "_heap", "_local", "_prefixes", "_touched")

    def __init__(self) -> None:
        self._claims: dict[str, tuple[Scope, float]] = {}
        self._by_scope: dict[Scope, list[str]] = {}
        """scope → the ids claiming it (usually one)."""
        self._local: dict[Scope, float] = {}
        self._heap: list[tuple[float, Scope]] = []
        """Local bans by expiry; an entry whose ban was extended or lifted is skipped."""
        self._prefixes: dict[tuple[int, int], int] = {}
        """(version, prefix length) → scopes held: what :meth:`blocked` looks up."""
        self._touched: dict[Scope, float | None] = {}
        """scope → its expiry before the first change since the last diff."""

    # -- reading -------------------------------------------------------------------

    def __len__(self) -> int:
        """Scopes held (expired claims not yet ended by the council included)."""
        return sum(self._prefixes.values())

    @property
    def claims(self) -> int:
        return len(self._claims)

    def expiry(self, scope: Scope) -> float | None:
        """The latest expiry held for ``scope`` (past or not), None if none."""
        best = self._local.get(scope)
        for decision_id in self._by_scope.get(scope, ()):
            exp = self._claims[decision_id][1]
            if best is None or exp > best:
                best = exp
        return best

    def blocked(self, target: Address | Scope, now: float) -> float | None:
        """Until when ``target`` (an address, or a network) is blocked by a scope containing
        it, None if it is not (one lookup per prefix length in use)."""
        scope = target if isinstance(target, int) else address_scope(target)
        best: float | None = None
        for version, prefix in self._prefixes:
            if version != scope.version or prefix > scope.prefixlen:
                continue
            exp = self.expiry(scope.supernet(prefix))
            if exp is not None and exp > now and (best is None or exp > best):
                best = exp
        return best

    def target(self, now: float) -> dict[Scope, float]:
        """Every scope blocked at ``now`` with its expiry: the full set (O(n); for a sync)."""
        out: dict[Scope, float] = {}
        for scope in self._by_scope.keys() | self._local.keys():
            exp = self.expiry(scope)
            if exp is not None and exp > now:
                out[scope] = exp
        return out

    def items(self) -> Iterator[Claim]:
        """The claims, for saving."""
        for decision_id, (scope, exp) in self._claims.items():
            yield decision_id, scope, exp

    def local_bans(self) -> dict[Scope, float]:
        return dict(self._local)

    # -- changing ------------------------------------------------------------------

    def _touch(self, scope: Scope) -> None:
        if scope not in self._touched:
            self._touched[scope] = self.expiry(scope)

    def _hold(self, scope: Scope) -> None:
        """Count ``scope`` in the prefix index if it was not held."""
        if scope not in self._by_scope and scope not in self._local:
            key = (scope.version, scope.prefixlen)
            self._prefixes[key] = self._prefixes.get(key, 0) + 1

    def _unhold(self, scope: Scope) -> None:
        if scope not in self._by_scope and scope not in self._local:
            key = (scope.version, scope.prefixlen)
            n = self._prefixes[key] - 1
            if n:
                self._prefixes[key] = n
            else:
                del self._prefixes[key]

    def claim(self, decision_id: str, scope: Scope, expires: float) -> None:
        """A decision added (or extended: the same id with a new expiry)."""
        claims = self._claims
        if decision_id not in claims and scope not in self._touched:
            by_scope = self._by_scope
            if scope not in by_scope and scope not in self._local:
                # the common case (a new decision on a scope not held): a few dict writes
                self._touched[scope] = None
                key = (scope.version, scope.prefixlen)
                self._prefixes[key] = self._prefixes.get(key, 0) + 1
                by_scope[scope] = [decision_id]
                claims[decision_id] = (scope, expires)
                return
        held = self._claims.get(decision_id)
        if held is not None and held[0] != scope:
            self.release(decision_id)
            held = None
        self._touch(scope)
        if held is None:
            self._hold(scope)
            self._by_scope.setdefault(scope, []).append(decision_id)
        self._claims[decision_id] = (scope, expires)

    def release(self, decision_id: str, *, lift_local: bool = False) -> bool:
        """A decision ended (revoked or expired). ``lift_local``: the member's own ban on
        that scope goes too (an operator's unban); True when there was one."""
        held = self._claims.get(decision_id)
        if held is None:
            return False
        scope = held[0]
        self._touch(scope)
        del self._claims[decision_id]
        ids = self._by_scope[scope]
        ids.remove(decision_id)
        if not ids:
            del self._by_scope[scope]
        lifted = lift_local and self._local.pop(scope, None) is not None
        self._unhold(scope)
        return lifted

    def ban(self, scope: Scope, expires: float) -> None:
        """A local ban until ``expires`` (an earlier one on the scope is only extended)."""
        held = self._local.get(scope)
        if held is not None and held >= expires:
            return
        self._touch(scope)
        self._hold(scope)
        self._local[scope] = expires
        heapq.heappush(self._heap, (expires, scope))

    def lift(self, scope: Scope) -> None:
        """Lift the local ban on ``scope``, if any."""
        if scope in self._local:
            self._touch(scope)
            del self._local[scope]
            self._unhold(scope)

    def reset(self, claims: Iterable[Claim]) -> None:
        """Replace every claim (a snapshot of the council's active set); local bans stay."""
        for scope in list(self._by_scope):
            self._touch(scope)
        for scope in self._by_scope:
            if scope not in self._local:
                key = (scope.version, scope.prefixlen)
                self._prefixes[key] -= 1
                if not self._prefixes[key]:
                    del self._prefixes[key]
        self._claims = {}
        self._by_scope = {}
        for decision_id, scope, exp in claims:
            self.claim(decision_id, scope, exp)

    def expire(self, now: float) -> int:
        """Forget local bans that ran out by ``now`` (reads only those). The enforcers let
        them lapse on their own: nothing to apply. Returns how many went."""
        heap = self._heap
        gone = 0
        while heap and heap[0][0] <= now:
            exp, scope = heapq.heappop(heap)
            if self._local.get(scope) == exp:
                del self._local[scope]
                self._unhold(scope)
                gone += 1
        if len(heap) > 2 * len(self._local) + 1024:  # extended or lifted bans left behind
            self._heap = [(exp, scope) for scope, exp in self._local.items()]
            heapq.heapify(self._heap)
        return gone

    def take_diff(self, now: float) -> Diff:
        """The changes since the last diff, as an enforcer applies them at ``now``."""
        block: dict[Scope, float] = {}
        unblock: list[Scope] = []
        claims, by_scope, local = self._claims, self._by_scope, self._local
        for scope, before in self._touched.items():
            ids = by_scope.get(scope)
            if before is None and ids is not None and len(ids) == 1 and scope not in local:
                new = claims[ids[0]][1]  # a new block by one decision: the common case
                if new > now:
                    block[scope] = new
                continue
            after = self.expiry(scope)
            if before is not None and before <= now:
                before = None  # it lapsed at the enforcer
            if after is None or after <= now:
                if before is not None:
                    unblock.append(scope)
            elif before is None or after > before:
                block[scope] = after
            elif after < before:
                unblock.append(scope)
                block[scope] = after
        self._touched = {}
        return Diff(block, unblock)


def full_diff(before: Mapping[Scope, float], after: Mapping[Scope, float], now: float) -> Diff:
    """The diff between two whole block sets (what an enforcer holding ``before`` needs to
    hold ``after`` at ``now``): the reference :meth:`BlockList.take_diff` is tested against."""
    live = {s: e for s, e in before.items() if e > now}
    block: dict[Scope, float] = {}
    unblock: list[Scope] = []
    for scope, exp in after.items():
        if exp <= now:
            continue
        held = live.get(scope)
        if held is None or exp > held:
            block[scope] = exp
        elif exp < held:
            unblock.append(scope)
            block[scope] = exp
    unblock += [s for s in live if s not in after or after[s] <= now]
    return Diff(block, unblock)
