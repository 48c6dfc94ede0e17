"""Protected targets: no decision may overlap them (guarantee 5).

A check costs O(log n) whatever the number n of protected networks (members' addresses,
allowlists of thousands): the entries are laid out once as a sorted partition of the address
space — disjoint ranges, each labelled with the first entry (in ``entries`` order) covering
it — and a scope is looked up by bisection. Only the pieces the scope overlaps are read.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from heapq import heappop, heappush

from shieldwall.model import Address, Scope, address_scope, parse_scope
from shieldwall.net import V6

MEMO_LIMIT = 100_000
"""Single addresses whose verdict :class:`Protected` remembers (it starts again when full)."""
_UNKNOWN = "?"


def _nets(*texts: str) -> tuple[Scope, ...]:
    return tuple(parse_scope(t) for t in texts)


LOOPBACK: tuple[Scope, ...] = _nets("127.0.0.0/8", "::1/128")
UNSPECIFIED: tuple[Scope, ...] = _nets("0.0.0.0/8", "::/128")
LINK_LOCAL: tuple[Scope, ...] = _nets("169.254.0.0/16", "fe80::/10")
MULTICAST: tuple[Scope, ...] = _nets("224.0.0.0/4", "255.255.255.255/32", "ff00::/8")
PRIVATE: tuple[Scope, ...] = _nets(
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",  # carrier-grade NAT
    "fc00::/7",
)


@dataclass(frozen=True, slots=True)
class _Pieces:
    """One IP version's partition: ``starts[i]``…``ends[i]`` is protected by entry ``labels[i]``."""

    starts: list[int]
    ends: list[int]
    labels: list[int]

    def first_entry(self, low: int, high: int) -> int | None:
        """The lowest entry index among the pieces overlapping ``low``…``high``."""
        i = bisect_left(self.ends, low)
        stop = bisect_right(self.starts, high)
        return min(self.labels[i:stop], default=None)


def _partition(ranges: list[tuple[int, int, int]]) -> _Pieces:
    """Disjoint pieces from ``(first, last, entry index)`` ranges, each labelled with the lowest
    index covering it (a sweep over the range ends with a heap of the open entries)."""
    bounds: list[tuple[int, int, int, int]] = []  # (at, 0 opens / 1 closes, index, last)
    for first, last, index in ranges:
        bounds.append((first, 0, index, last))
        bounds.append((last + 1, 1, index, last))
    bounds.sort()
    starts: list[int] = []
    ends: list[int] = []
    labels: list[int] = []
    open_: list[tuple[int, int]] = []  # heap of (index, last) of the ranges opened so far
    at: int | None = None
    for point, closes, index, last in bounds:
        if at is not None and point > at:
            # the piece at…point-1: no range ends inside it (every end is a bound)
            while open_ and open_[0][1] < at:
                heappop(open_)
            if open_:
                label = open_[0][0]
                if labels and labels[-1] == label and ends[-1] + 1 == at:
                    ends[-1] = point - 1
                else:
                    starts.append(at)
                    ends.append(point - 1)
                    labels.append(label)
        if not closes:
            heappush(open_, (index, last))
        at = point
    return _Pieces(starts, ends, labels)


@dataclass(frozen=True, slots=True)
class Protected:
    """The set of protected networks, each with the reason it is protected."""

    entries: tuple[tuple[Scope, str], ...]
    _pieces: dict[int, _Pieces] = field(init=False, repr=False, compare=False, hash=False)
    _maybe: frozenset[int] = field(init=False, repr=False, compare=False, hash=False)
    """The IPv4 /16 prefixes any protected network touches: an address outside them is
    settled by one set lookup (the common case: a public address)."""
    _memo: dict[Scope, str | None] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    """single-address scope → its verdict: the entries never change (a change builds a new
    Protected)."""

    def __post_init__(self) -> None:
        by_version: dict[int, list[tuple[int, int, int]]] = {4: [], 6: []}
        for i, (net, _) in enumerate(self.entries):
            by_version[net.version].append((net.value, net.last, i))
        object.__setattr__(
            self, "_pieces", {v: _partition(ranges) for v, ranges in by_version.items()}
        )
        maybe: set[int] = set()  # at most the 65,536 prefixes there are
        for first, last, _ in by_version[4]:
            maybe.update(range(first >> 16, (last >> 16) + 1))
        object.__setattr__(self, "_maybe", frozenset(maybe))

    @classmethod
    def build(
        cls,
        *,
        allowlist: Iterable[Scope] = (),
        member_addresses: Iterable[tuple[str, Scope]] = (),
        protect_private: bool = True,
        council: Iterable[Scope] = (),
        ignoreip: Iterable[Scope] = (),
    ) -> Protected:
        entries: list[tuple[Scope, str]] = []
        entries += [(n, "protected:loopback") for n in LOOPBACK]
        entries += [(n, "protected:unspecified") for n in UNSPECIFIED]
        entries += [(n, "protected:link-local") for n in LINK_LOCAL]
        entries += [(n, "protected:multicast") for n in MULTICAST]
        if protect_private:
            entries += [(n, "protected:private") for n in PRIVATE]
        entries += [(n, "protected:allowlist") for n in allowlist]
        entries += [(n, f"protected:member:{name}") for name, n in member_addresses]
        entries += [(n, "protected:council") for n in council]
        entries += [(n, "protected:ignoreip") for n in ignoreip]
        return cls(tuple(entries))

    def reason_for(self, scope: Scope, *, remember: bool = True) -> str | None:
        """The reason ``scope`` may not be decided, or None if it may (the first entry that
        overlaps it, in ``entries`` order). A single address's verdict is remembered unless
        ``remember`` is false (an import looks each address up once)."""
        if remember and scope.is_host:
            memo = self._memo
            why = memo.get(scope, _UNKNOWN)
            if why is not _UNKNOWN:
                return why
            why = self._lookup(scope)
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[scope] = why
            return why
        return self._lookup(scope)

    def _lookup(self, scope: Scope) -> str | None:
        if scope < V6 and (scope & 0xFF) >= 16 and (scope >> 24) not in self._maybe:
            return None  # an IPv4 network inside a /16 no protected network touches
        index = self._pieces[scope.version].first_entry(scope.value, scope.last)
        return None if index is None else self.entries[index][1]

    def reason_for_address(self, address: Address) -> str | None:
        """:meth:`reason_for` the single address ``address`` (remembered)."""
        return self.reason_for(address_scope(address))
