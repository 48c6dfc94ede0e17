"""The treaty's memory between events: a plain, bounded, serialisable value.

- ``sources``: alliance-wide buckets, per source address: failures per rule per member, and
  successes per member, in time slots of ``granularity`` seconds (the sliding window moves
  by one slot). At most ``alliance.max-sources`` sources; the least recently seen is evicted
  and counted (``sources.evicted``).
- ``activity``: failures per member per rule, same slots (forward presence).
- ``pending``: low-trust members' requests waiting for a quorum (at most ``quorum.max-pending``).
- ``concerns``: open consultations (at most ``consult.max-open``).
- ``ledger``: the active decisions the treaty knows, each with its evidence chain. It is *not*
  part of ``to_plain``: the store holds the decisions and their evidence, and
  :meth:`~shieldwall.treaty.engine.Treaty.sync` adopts them at start (a state saved every
  30 s must not grow with the number of active decisions).
- ``offenders``: how many times each scope was decided, for ``sanction.repeat``.
- ``blast``, ``flagged``: decisions caused per member in the blast-radius window; flags.
- ``allowlist``: scopes protected at run time (``AllowlistAdd``), on top of the configured ones.

``to_plain``/``from_plain`` round-trip it through JSON-ready values; the indexes are rebuilt.
"""

from __future__ import annotations

import contextlib
import heapq
import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shieldwall.model import Address, Decision, Origin, Scope, parse_address, scope_str
from shieldwall.net import V6, Net
from shieldwall.treaty.effects import Concern
from shieldwall.treaty.evidence import (
    Evidence,
    Exhibit,
    decision_from,
    decision_plain,
    opt_str,
    scope_from,
    time_from,
    time_plain,
)
from shieldwall.treaty.terms import TreatyTerms

STATE_VERSION = 2
"""2: the ledger is no longer saved (version 1 states, which hold it, are still read)."""
MAX_RULES_PER_SOURCE = 32
"""Distinct rules tracked per source (more are skipped and counted: ``sightings.rules-capped``)."""
MAX_RULES_PER_MEMBER = 64
MAX_COUNT = 1_000_000
"""A single sighting counts at most this many events."""

Slots = dict[int, int]
"""Slot index (``floor(epoch / granularity)``) → count."""


def _slots_plain(slots: Slots) -> list[list[int]]:
    return [[k, v] for k, v in slots.items()]


def _slots_from(data: Any) -> Slots:
    return {int(k): int(v) for k, v in data}


def _sum(slots: Slots, lo: int) -> int:
    if slots and min(slots) >= lo:  # all of them (min() and sum() loop in C)
        return sum(slots.values())
    return sum(v for k, v in slots.items() if k >= lo)


def _prune(slots: Slots, lo: int) -> None:
    if slots and min(slots) >= lo:
        return
    for k in [k for k in slots if k < lo]:
        del slots[k]


@dataclass(slots=True)
class Track:
    """One source's alliance-wide bucket."""

    failures: dict[str, dict[str, Slots]] = field(default_factory=dict)
    """rule → member → slots."""
    successes: dict[str, Slots] = field(default_factory=dict)
    """member → slots."""
    vetoed: datetime | None = None
    """When friendly fire last refused a decision on sums (refused once per window)."""
    _index: dict[int, list[tuple[str | None, str]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    """slot → the slots of (rule, member) that hold it (rule None: successes), built by the
    first :meth:`prune` (every slot then has its entry; some entries may be stale): later
    prunes only visit the slots they forget."""
    _low: int = field(default=0, init=False, repr=False, compare=False)
    """With the index: no slot is below this one."""

    def add_failure(self, rule: str, member: str, slot: int, count: int) -> bool:
        by_member = self.failures.get(rule)
        if by_member is None:
            if len(self.failures) >= MAX_RULES_PER_SOURCE:
                return False
            by_member = self.failures[rule] = {}
        slots = by_member.get(member)
        if slots is None:
            slots = by_member[member] = {}
        n = slots.get(slot)
        if n is None:
            self._indexed(slot, rule, member)
            n = 0
        slots[slot] = min(n + count, MAX_COUNT)
        return True

    def add_success(self, member: str, slot: int, count: int) -> None:
        slots = self.successes.get(member)
        if slots is None:
            slots = self.successes[member] = {}
        n = slots.get(slot)
        if n is None:
            self._indexed(slot, None, member)
            n = 0
        slots[slot] = min(n + count, MAX_COUNT)

    def _indexed(self, slot: int, rule: str | None, member: str) -> None:
        index = self._index
        if index is not None:
            entries = index.get(slot)
            if entries is None:
                index[slot] = [(rule, member)]
            else:
                entries.append((rule, member))
            if slot < self._low:
                self._low = slot

    def failures_for(self, rule: str, lo: int) -> dict[str, int]:
        """member → failures of ``rule`` in slots ≥ ``lo`` (members with none left out)."""
        out: dict[str, int] = {}
        for member, slots in self.failures.get(rule, {}).items():
            n = _sum(slots, lo)
            if n:
                out[member] = n
        return out

    def failures_any(self, lo: int) -> dict[str, int]:
        """member → failures of any rule in slots ≥ ``lo``."""
        out: dict[str, int] = {}
        for by_member in self.failures.values():
            for member, slots in by_member.items():
                n = _sum(slots, lo)
                if n:
                    out[member] = out.get(member, 0) + n
        return out

    def successes_in(self, lo: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for member, slots in self.successes.items():
            n = _sum(slots, lo)
            if n:
                out[member] = n
        return out

    def prune(self, lo: int) -> bool:
        """Forget slots below ``lo``; True when nothing is left."""
        index = self._index
        if index is None:
            self._prune_all(lo)
        elif self._low < lo:
            failures = self.failures
            successes = self.successes
            for k in [k for k in index if k < lo]:
                for rule, member in index.pop(k):
                    if rule is None:
                        slots = successes.get(member)
                        if slots is not None and k in slots:
                            del slots[k]
                            if not slots:
                                del successes[member]
                        continue
                    by_member = failures.get(rule)
                    slots = None if by_member is None else by_member.get(member)
                    if by_member is not None and slots is not None and k in slots:
                        del slots[k]
                        if not slots:
                            del by_member[member]
                            if not by_member:
                                del failures[rule]
            self._low = min(index) if index else lo
        return not self.failures and not self.successes

    def _prune_all(self, lo: int) -> None:
        """Prune every slot list (and empty member and rule), then index what is left."""
        index: dict[int, list[tuple[str | None, str]]] = {}
        for rule in list(self.failures):
            by_member = self.failures[rule]
            for member in list(by_member):
                slots = by_member[member]
                _prune(slots, lo)
                if not slots:
                    del by_member[member]
                for k in slots:
                    index.setdefault(k, []).append((rule, member))
            if not by_member:
                del self.failures[rule]
        for member in list(self.successes):
            slots = self.successes[member]
            _prune(slots, lo)
            if not slots:
                del self.successes[member]
            for k in slots:
                index.setdefault(k, []).append((None, member))
        self._index = index
        self._low = min(index) if index else lo

    def drop_member(self, name: str) -> bool:
        """Forget a revoked member's counts; True when nothing is left."""
        for rule in list(self.failures):
            self.failures[rule].pop(name, None)
            if not self.failures[rule]:
                del self.failures[rule]
        self.successes.pop(name, None)
        return not self.failures and not self.successes

    def to_plain(self) -> dict[str, Any]:
        return {
            "failures": {
                rule: {m: _slots_plain(s) for m, s in by_member.items()}
                for rule, by_member in self.failures.items()
            },
            "successes": {m: _slots_plain(s) for m, s in self.successes.items()},
            "vetoed": None if self.vetoed is None else time_plain(self.vetoed),
        }

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> Track:
        vetoed = data.get("vetoed")
        return cls(
            failures={
                str(rule): {str(m): _slots_from(s) for m, s in by_member.items()}
                for rule, by_member in data.get("failures", {}).items()
            },
            successes={str(m): _slots_from(s) for m, s in data.get("successes", {}).items()},
            vetoed=None if vetoed is None else time_from(vetoed),
        )


@dataclass(slots=True)
class Pending:
    """A low-trust member's alert waiting for its quorum."""

    source: Address
    rule: str
    since: datetime
    bantime: float | None
    requesters: list[str] = field(default_factory=list)
    exhibits: list[Exhibit] = field(default_factory=list)

    def to_plain(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "rule": self.rule,
            "since": time_plain(self.since),
            "bantime": self.bantime,
            "requesters": list(self.requesters),
            "exhibits": [e.to_plain() for e in self.exhibits],
        }

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> Pending:
        bantime = data.get("bantime")
        return cls(
            source=parse_address(str(data["source"])),
            rule=str(data["rule"]),
            since=time_from(data["since"]),
            bantime=None if bantime is None else float(bantime),
            requesters=[str(m) for m in data.get("requesters", ())],
            exhibits=[Exhibit.from_plain(e) for e in data.get("exhibits", ())],
        )


@dataclass(slots=True)
class OpenConcern:
    concern: Concern
    raisers: list[str] = field(default_factory=list)
    """Members that raised it (the first raised it; later ones joined)."""
    testimony: dict[str, Exhibit] = field(default_factory=dict)
    """member → its latest answer (a member answering twice counts once)."""

    def to_plain(self) -> dict[str, Any]:
        return {
            "concern": self.concern.to_plain(),
            "raisers": list(self.raisers),
            "testimony": {m: e.to_plain() for m, e in self.testimony.items()},
        }

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> OpenConcern:
        return cls(
            concern=Concern.from_plain(data["concern"]),
            raisers=[str(m) for m in data.get("raisers", ())],
            testimony={str(m): Exhibit.from_plain(e) for m, e in data.get("testimony", {}).items()},
        )


@dataclass(slots=True)
class Entry:
    """An active decision the treaty knows, with its evidence chain."""

    decision: Decision
    evidence: Evidence
    cause: str | None = None
    """The member charged for it under the blast-radius clause, if one is."""
    forced: bool = False
    """An operator forced it over a protected target: protection changes do not revoke it."""

    def to_plain(self) -> dict[str, Any]:
        return {
            "decision": decision_plain(self.decision),
            "evidence": self.evidence.to_plain(),
            "cause": self.cause,
            "forced": self.forced,
        }

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> Entry:
        return cls(
            decision=decision_from(data["decision"]),
            evidence=Evidence.from_plain(data["evidence"]),
            cause=opt_str(data.get("cause")),
            forced=bool(data.get("forced", False)),
        )


class Ledger:
    """Active decisions by id, indexed by scope (covering and overlap lookups), by range
    (sanctions) and by expiry (a heap: pruning reads only what expired).

    Every lookup costs what it returns, not what the ledger holds: a scope's covering
    decisions are one dict lookup per prefix length in use; the decisions inside a newly
    protected network are found by enumerating its subnets of each prefix length in use
    (or, past :data:`ENUMERATE_LIMIT` subnets, by reading that prefix length's decisions).
    """

    def __init__(self, ipv4_prefix: int = 24, ipv6_prefix: int = 64) -> None:
        self.ipv4_prefix = ipv4_prefix
        self.ipv6_prefix = ipv6_prefix
        self.entries: dict[str, Entry] = {}
        self._by_prefix: dict[int, dict[Scope, list[str]]] = {}
        """prefix key (:func:`_pkey`: version and prefix length) → scope → ids of its
        decisions."""
        self._by_range: dict[Scope, list[str]] = {}
        self._expiry: list[tuple[float, str]] = []
        """Heap of (expiry, id); an entry replaced since is skipped when it comes up."""

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self.entries.values()))

    def get(self, decision_id: str) -> Entry | None:
        return self.entries.get(decision_id)

    def range_of(self, scope: Scope) -> Scope:
        prefix = self.ipv4_prefix if scope.version == 4 else self.ipv6_prefix
        return scope.supernet(min(prefix, scope.prefixlen))

    def add(self, entry: Entry) -> None:
        """Add an entry, or replace the one with its decision's id (an extension)."""
        d = entry.decision
        old = self.entries.get(d.id)
        if old is not None and old.decision.scope != d.scope:
            self.remove(d.id)
            old = None
        self.entries[d.id] = entry
        heapq.heappush(self._expiry, (d.expires.timestamp(), d.id))
        if old is not None:
            return  # same scope: the indexes hold it already
        scope = d.scope
        by_scope = self._by_prefix.setdefault(_pkey(scope), {})
        by_scope.setdefault(scope, []).append(d.id)
        if d.origin is Origin.ALERT and scope.is_host:  # what a range sanction weighs
            self._by_range.setdefault(self.range_of(scope), []).append(d.id)

    def add_new(self, entries: list[Entry], expires: float) -> None:
        """Add entries that are all new (no id held), of decisions that all expire at
        ``expires`` (epoch seconds) and are none a member's alert: an import's chunk, at
        the cost of a few dict operations each."""
        held = self.entries
        heap = self._expiry
        by_prefix = self._by_prefix
        for entry in entries:
            d = entry.decision
            held[d.id] = entry
            heapq.heappush(heap, (expires, d.id))
            scope = d.scope
            key = scope & 0xFF if scope < V6 else (scope & 0xFF) | 0x100
            by_scope = by_prefix.get(key)
            if by_scope is None:
                by_scope = by_prefix[key] = {}
            ids = by_scope.get(scope)
            if ids is None:
                by_scope[scope] = [d.id]
            else:
                ids.append(d.id)

    def remove(self, decision_id: str) -> Entry | None:
        entry = self.entries.pop(decision_id, None)
        if entry is None:
            return None
        scope = entry.decision.scope
        key = _pkey(scope)
        by_scope = self._by_prefix[key]
        _discard(by_scope, scope, decision_id)
        if not by_scope:
            del self._by_prefix[key]
        if entry.decision.origin is Origin.ALERT and scope.is_host:
            _discard(self._by_range, self.range_of(scope), decision_id)
        return entry

    def operator_on(self, scope: Scope, now: datetime) -> Entry | None:
        """The active operator decision on exactly ``scope``, if any (the latest-lasting)."""
        best: Entry | None = None
        by_scope = self._by_prefix.get(_pkey(scope))
        for i in () if by_scope is None else by_scope.get(scope, ()):
            d = self.entries[i].decision
            if (
                d.origin is Origin.OPERATOR
                and d.active_at(now)
                and (best is None or d.expires > best.decision.expires)
            ):
                best = self.entries[i]
        return best

    def on_scope(self, scope: Scope, now: datetime) -> list[Entry]:
        ids = self._by_prefix.get(_pkey(scope), {}).get(scope, ())
        return [e for i in sorted(ids) if (e := self.entries[i]).decision.active_at(now)]

    def covering(self, scope: Scope, now: datetime) -> Entry | None:
        """The longest-lasting active decision whose scope contains ``scope``."""
        best: Entry | None = None
        for key, by_scope in self._by_prefix.items():
            version, prefix = _unkey(key)
            if version != scope.version or prefix > scope.prefixlen:
                continue
            for i in by_scope.get(scope.supernet(prefix), ()):
                e = self.entries[i]
                if e.decision.active_at(now) and (
                    best is None or e.decision.expires > best.decision.expires
                ):
                    best = e
        return best

    def overlapping(self, net: Scope) -> list[Entry]:
        """Every entry whose scope overlaps ``net`` (contains it or lies inside it)."""
        ids: list[str] = []
        for key, by_scope in self._by_prefix.items():
            version, prefix = _unkey(key)
            if version != net.version:
                continue
            if prefix <= net.prefixlen:
                ids += by_scope.get(net.supernet(prefix), ())
            elif 1 << (prefix - net.prefixlen) <= min(ENUMERATE_LIMIT, len(by_scope)):
                for sub in _subnets(net, prefix):
                    ids += by_scope.get(sub, ())
            else:
                ids += [i for s, found in by_scope.items() if s.subnet_of(net) for i in found]
        return [self.entries[i] for i in sorted(set(ids))]

    def in_range(self, rng: Scope, now: datetime) -> list[Entry]:
        """Active single-address decisions of members' alerts inside the range ``rng``."""
        ids = self._by_range.get(rng, ())
        return [e for i in sorted(ids) if (e := self.entries[i]).decision.active_at(now)]

    def prune(self, now: datetime) -> list[Entry]:
        """Forget the decisions that expired by ``now`` (reads only those)."""
        gone: list[Entry] = []
        heap = self._expiry
        limit = now.timestamp()
        while heap and heap[0][0] <= limit:
            _, decision_id = heapq.heappop(heap)
            e = self.entries.get(decision_id)
            if e is not None and not e.decision.active_at(now):
                self.remove(decision_id)
                gone.append(e)
        if len(heap) > 2 * len(self.entries) + 1024:  # replaced entries left behind
            self._expiry = [(e.decision.expires.timestamp(), i) for i, e in self.entries.items()]
            heapq.heapify(self._expiry)
        return gone


def _pkey(scope: Scope) -> int:
    """The ledger's index key of a scope's version and prefix length (one int)."""
    return scope & 0xFF if scope < V6 else (scope & 0xFF) | 0x100


def _unkey(key: int) -> tuple[int, int]:
    return (6 if key & 0x100 else 4), key & 0xFF


ENUMERATE_LIMIT = 65_536
"""Subnets of one prefix length :meth:`Ledger.overlapping` enumerates before it reads that
prefix length's decisions instead."""


def _subnets(net: Scope, prefix: int) -> Iterator[Scope]:
    step = 1 << (net.max_prefixlen - prefix)
    for value in range(net.value, net.last + 1, step):
        yield Net.of(net.version, value, prefix)


def _discard(index: dict[Scope, list[str]], scope: Scope, decision_id: str) -> None:
    ids = index.get(scope)
    if ids is None:
        return
    with contextlib.suppress(ValueError):
        ids.remove(decision_id)
    if not ids:
        del index[scope]


@dataclass(slots=True)
class Offender:
    count: int
    last: datetime


@dataclass(slots=True)
class TreatyState:
    granularity: float = 300.0
    sources: OrderedDict[Address, Track] = field(default_factory=OrderedDict)
    activity: dict[str, dict[str, Slots]] = field(default_factory=dict)
    pending: OrderedDict[Address, Pending] = field(default_factory=OrderedDict)
    concerns: dict[str, OpenConcern] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)
    offenders: OrderedDict[Scope, Offender] = field(default_factory=OrderedDict)
    blast: dict[str, list[datetime]] = field(default_factory=dict)
    flagged: dict[str, datetime] = field(default_factory=dict)
    """``clause/member`` → flagged until (one flag per window)."""
    allowlist: list[Scope] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    """Counter behind the default decision and concern ids."""
    concern_by_source: dict[Address, str] = field(default_factory=dict)
    """Index, rebuilt: the open concern about each source."""

    @classmethod
    def empty(cls, terms: TreatyTerms | None = None) -> TreatyState:
        terms = terms or TreatyTerms()
        s = terms.sanctions
        return cls(
            granularity=terms.alliance.granularity, ledger=Ledger(s.ipv4_prefix, s.ipv6_prefix)
        )

    def inc(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def slot(self, at: datetime) -> int:
        return math.floor(at.timestamp() / self.granularity)

    def to_plain(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "granularity": self.granularity,
            "sources": [[str(a), t.to_plain()] for a, t in self.sources.items()],
            "activity": {
                m: {rule: _slots_plain(s) for rule, s in by_rule.items()}
                for m, by_rule in self.activity.items()
            },
            "pending": [p.to_plain() for p in self.pending.values()],
            "concerns": [c.to_plain() for c in self.concerns.values()],
            "offenders": [
                [scope_str(s), o.count, time_plain(o.last)] for s, o in self.offenders.items()
            ],
            "blast": {m: [time_plain(t) for t in ts] for m, ts in self.blast.items()},
            "flagged": {k: time_plain(t) for k, t in self.flagged.items()},
            "allowlist": [scope_str(s) for s in self.allowlist],
            "counters": dict(self.counters),
            "seq": self.seq,
        }

    @classmethod
    def from_plain(cls, data: Mapping[str, Any], terms: TreatyTerms | None = None) -> TreatyState:
        """Rebuild a state (and its indexes). Raises ValueError on an unknown version."""
        if data.get("version") not in (1, STATE_VERSION):
            raise ValueError(f"treaty state version {data.get('version')!r} is not supported")
        state = cls.empty(terms)
        state.granularity = float(data["granularity"])
        for addr, track in data.get("sources", ()):
            state.sources[parse_address(str(addr))] = Track.from_plain(track)
        state.activity = {
            str(m): {str(rule): _slots_from(s) for rule, s in by_rule.items()}
            for m, by_rule in data.get("activity", {}).items()
        }
        for p in data.get("pending", ()):
            pending = Pending.from_plain(p)
            state.pending[pending.source] = pending
        for c in data.get("concerns", ()):
            oc = OpenConcern.from_plain(c)
            state.concerns[oc.concern.id] = oc
            state.concern_by_source[oc.concern.source] = oc.concern.id
        for e in data.get("ledger", ()):
            state.ledger.add(Entry.from_plain(e))
        for scope, count, last in data.get("offenders", ()):
            state.offenders[scope_from(scope)] = Offender(int(count), time_from(last))
        state.blast = {
            str(m): sorted(time_from(t) for t in ts) for m, ts in data.get("blast", {}).items()
        }
        state.flagged = {str(k): time_from(t) for k, t in data.get("flagged", {}).items()}
        state.allowlist = [scope_from(s) for s in data.get("allowlist", ())]
        state.counters = {str(k): int(v) for k, v in data.get("counters", {}).items()}
        state.seq = int(data.get("seq", 0))
        return state

    def sizes(self) -> dict[str, int]:
        """How much the state holds (for ``shieldwall stats``)."""
        return {
            "treaty.sources": len(self.sources),
            "treaty.pending": len(self.pending),
            "treaty.concerns": len(self.concerns),
            "treaty.decisions": len(self.ledger),
            "treaty.offenders": len(self.offenders),
        }
