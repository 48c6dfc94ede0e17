"""The strategies a drill compares, each a pure state machine over one event stream.

Every strategy has the same local rule at every member (fail2ban's: ``maxretry`` hits within
``findtime`` at that member ban the source there for ``bantime``); they differ in what is
shared, how and when:

``alone``      nothing is shared (fail2ban, sshguard).
``alliance``   shieldwall: the local ban, plus the real :class:`~shieldwall.treaty.Treaty`
               fed ``Alerted`` (Article 5) and ``Sighted`` (alliance-wide buckets, friendly
               fire) events; a decision protects every member at once.
``poll-10s``   every local alert becomes a shared decision that other members apply
               ``poll`` seconds later (CrowdSec: LAPI decisions, bouncers polling every 10 s).
``sync-1h``    members upload their bans and download the shared list every ``sync``
               seconds; a source is shared once ``reporters`` members banned it (DenyHosts).

:meth:`Strategy.step` says whether an event was stopped (its member was protected from its
source at that time) and, if it landed, lets the member see it. An attempt that was stopped
never reaches the member's log, so it is neither counted by buckets nor sighted.
:meth:`Strategy.replay` does the same for a batch of :data:`~shieldwall.drill.io.Row` tuples
in one loop (the drill's fast path; ``step`` is ``replay`` of one event).

The local rule is :class:`~shieldwall.detect.bucket.BucketSet`'s ``window`` bucket, inlined:
per member and (rule, source) the times of the recent hits; a hit older than ``findtime``
before the newest falls out; ``maxretry`` hits overflow (and empty) the bucket; at most
1,000,000 buckets per member (the least recently hit is evicted); hourly pruning. Sources are
dict keys as :data:`~shieldwall.drill.io.Key` (an IPv4 address's integer hashes in C).
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from typing import Any

from shieldwall.drill.io import DrillEvent, Key, Row, address_of, row_of, source_key
from shieldwall.model import Address, Alert
from shieldwall.treaty import (
    Alerted,
    AllianceTerms,
    Decide,
    Enroll,
    FriendlyFireTerms,
    MemberInfo,
    QuorumTerms,
    Refuse,
    Revoke,
    SanctionTerms,
    Sighted,
    Sighting,
    SightingKind,
    Threshold,
    Tick,
    Treaty,
    TreatyTerms,
)

__all__ = [
    "Alliance",
    "Alone",
    "DrillConfig",
    "Outcome",
    "Poll",
    "Strategy",
    "Sync",
    "build",
]

_PRUNE_EVERY = 3600.0
_MAX_TRACKED = 1_000_000
"""Local buckets per member (``BucketSet``'s ``max_tracked``)."""
_NEVER = float("inf")
_NOT = float("-inf")

_Buckets = dict[tuple[Any, ...], list[float]]
"""A member's local buckets: (rule, source) → times of its recent hits, oldest first; in
least recently hit order (a hit takes its bucket out and puts it back at the end)."""


@dataclass(frozen=True, slots=True)
class DrillConfig:
    """The settings every strategy shares (local rule, ban time) and each one's own."""

    maxretry: int = 5
    findtime: float = 600.0
    bantime: float = 4 * 3600.0
    """Local bans and shared decisions last this long (the treaty's ``ban-duration``)."""
    threshold: Threshold = field(default_factory=Threshold)
    """The treaty's alliance-wide threshold (``[treaty.alliance]``)."""
    alliance_window: float = 3600.0
    quorum: int | None = None
    """When set, members are on probation and an alert needs ``quorum`` members."""
    friendly_fire: bool = True
    poll: float = 10.0
    sync: float = 3600.0
    reporters: int = 3
    tick: float = 3600.0
    """How often (event time) the treaty gets a ``Tick``."""

    def __post_init__(self) -> None:
        if self.maxretry < 1:
            raise ValueError("maxretry must be at least 1")
        for name in ("findtime", "bantime", "alliance_window", "sync", "tick"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.poll < 0:
            raise ValueError("poll must not be negative")
        if self.reporters < 1:
            raise ValueError("reporters must be at least 1")
        if self.quorum is not None and self.quorum < 2:
            raise ValueError("quorum must be at least 2")

    def terms(self) -> TreatyTerms:
        """The treaty the ``alliance`` strategy runs: defaults, except the drill's ban time,
        threshold and quorum; no escalation and no range sanctions, so that every strategy
        bans for the same time and only addresses seen in the input are ever decided."""
        return TreatyTerms(
            ban_duration=self.bantime,
            max_duration=max(self.bantime, 7 * 86400.0),
            alliance=AllianceTerms(
                window=self.alliance_window,
                granularity=min(300.0, self.alliance_window),
                threshold=self.threshold,
                max_sources=1_000_000,
            ),
            friendly_fire=FriendlyFireTerms(enabled=self.friendly_fire),
            quorum=QuorumTerms(members=self.quorum or 2),
            sanctions=SanctionTerms(increment=False, range=False),
        )


class Strategy:
    """Local rule and bans shared by every strategy; subclasses decide what is shared.

    Sources are :data:`~shieldwall.drill.io.Key` values inside; ``decided``, ``shared``,
    ``local`` and ``protected_all`` show them as addresses."""

    name = "strategy"

    def __init__(self, config: DrillConfig) -> None:
        self.config = config
        self.members: dict[str, _Buckets] = {}
        """member -> its local buckets."""
        self.bans: dict[Key, dict[str, float]] = {}
        """source -> member -> local ban until (epoch)."""
        self.spans: dict[Key, tuple[float, float]] = {}
        """source -> (from, until): every member is protected in [from, until)."""
        self.decided_keys: set[Key] = set()
        """Every source banned anywhere (locally or shared) at least once."""
        self.first_protected: dict[Key, float] = {}
        """source -> the first time every member was protected from it by a shared
        decision (local bans alone never protect the whole alliance)."""
        self.counters: dict[str, int] = {}
        self._next_prune = _NOT
        self._wake = _NEVER
        """The next time :meth:`advance` has something to do (it is called at or after it)."""

    # -- as addresses -----------------------------------------------------------------------

    @property
    def decided(self) -> set[Address]:
        return {address_of(k) for k in self.decided_keys}

    @property
    def shared(self) -> dict[Address, tuple[float, float]]:
        return {address_of(k): span for k, span in self.spans.items()}

    @property
    def local(self) -> dict[Address, dict[str, float]]:
        return {address_of(k): dict(bans) for k, bans in self.bans.items()}

    @property
    def protected_all(self) -> dict[Address, float]:
        return {address_of(k): t for k, t in self.first_protected.items()}

    # -- the step ---------------------------------------------------------------------------

    def protected(self, member: str, source: Address, t: float) -> bool:
        key = source_key(source)
        span = self.spans.get(key)
        if span is not None and span[0] <= t < span[1]:
            return True
        bans = self.bans.get(key)
        return bans is not None and bans.get(member, _NOT) > t

    def step(self, e: DrillEvent) -> bool:
        """Replay one event; True when it was stopped."""
        stopped, _, blocked = self.replay((row_of(e),))
        return bool(stopped or blocked)

    def replay(self, rows: Sequence[Row]) -> tuple[int, int, int]:
        """Replay ``rows`` (in time order): (attempts stopped, attempts landed, logins
        blocked)."""
        c = self.config
        maxretry = c.maxretry
        findtime = c.findtime
        members = self.members
        spans = self.spans
        bans = self.bans
        enroll = self.enroll if self.enrolls else None
        sight = self.sighted if self.sights else None
        next_prune = self._next_prune
        wake = self._wake
        stopped = landed = blocked = 0
        for row in rows:
            t, member, key, fail, rule, source, _ = row
            buckets = members.get(member)
            if buckets is None and enroll is not None:
                enroll(member)
            if t >= next_prune:
                self._prune(t)
                next_prune = self._next_prune
            if t >= wake:
                self.advance(t)
                wake = self._wake
            if buckets is None:
                buckets = members[member] = {}
            span = spans.get(key)
            if span is not None and span[0] <= t < span[1]:
                if fail:
                    stopped += 1
                else:
                    blocked += 1
                continue
            banned = bans.get(key)
            if banned is not None and banned.get(member, _NOT) > t:
                if fail:
                    stopped += 1
                else:
                    blocked += 1
                continue
            if fail:
                landed += 1
                # BucketSet.hit, window kind (keys: rule, address as int, IP version)
                bk = (rule, key) if key.__class__ is int else (rule, int(key), 6)
                hits = buckets.pop(bk, None)
                if hits is None:
                    if maxretry == 1:
                        self._overflow(t, member, key, source, rule, [t])
                    else:
                        buckets[bk] = [t]
                        if len(buckets) > _MAX_TRACKED:
                            del buckets[next(iter(buckets))]
                else:
                    if t >= hits[-1]:
                        hits.append(t)
                    else:
                        insort(hits, t)
                    cutoff = hits[-1] - findtime
                    if hits[0] < cutoff:
                        keep = 0
                        while hits[keep] < cutoff:
                            keep += 1
                        del hits[:keep]
                    if len(hits) >= maxretry:
                        self._overflow(t, member, key, source, rule, hits)
                    else:
                        buckets[bk] = hits
            if sight is not None:
                sight(t, member, source, fail, rule)
        self._next_prune = next_prune
        return stopped, landed, blocked

    enrolls = False
    """Whether :meth:`enroll` is called for a member's first event (before anything else)."""
    sights = False
    """Whether :meth:`sighted` is called for every event that landed."""

    def enroll(self, member: str) -> None:
        """``member``'s first event comes."""

    def advance(self, t: float) -> None:
        """Time moves to ``t`` (before the event at ``t`` is looked at); called once ``t``
        reaches ``self._wake``."""

    def sighted(self, t: float, member: str, source: Address, fail: bool, rule: str) -> None:
        """An event landed at ``member`` (after its local rule saw it)."""

    def _overflow(
        self, t: float, member: str, key: Key, source: Address, rule: str, hits: list[float]
    ) -> None:
        self.ban_local(member, key, t)
        self.alerted(t, member, key, source, rule, hits)

    def alerted(
        self, t: float, member: str, key: Key, source: Address, rule: str, hits: list[float]
    ) -> None:
        """A member's bucket overflowed at ``t`` with ``hits`` (it has banned the source
        locally already)."""

    def finish(self, t: float) -> None:
        """The stream ended at ``t``."""

    # -- bans -------------------------------------------------------------------------------

    def ban_local(self, member: str, key: Key, t: float) -> None:
        bans = self.bans.setdefault(key, {})
        bans[member] = max(bans.get(member, t), t + self.config.bantime)
        self.decided_keys.add(key)

    def share(self, key: Key, start: float, until: float) -> None:
        old = self.spans.get(key)
        if old is not None and old[0] <= start < old[1]:
            start = old[0]
            until = max(until, old[1])
        self.spans[key] = (start, until)
        self.decided_keys.add(key)
        self.first_protected.setdefault(key, start)

    def _inc(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _prune(self, t: float) -> None:
        self._next_prune = t + _PRUNE_EVERY
        for key in [k for k, (_, until) in self.spans.items() if until <= t]:
            del self.spans[key]
        for key, bans in list(self.bans.items()):
            for member in [m for m, until in bans.items() if until <= t]:
                del bans[member]
            if not bans:
                del self.bans[key]
        # BucketSet.prune(datetime) of every member: buckets whose newest hit is older than
        # findtime (times through datetime, as there: microseconds)
        cutoff = datetime.fromtimestamp(t, UTC).timestamp() - self.config.findtime
        for buckets in self.members.values():
            for bk in [bk for bk, hits in buckets.items() if hits[-1] < cutoff]:
                del buckets[bk]


class Outcome(Strategy):
    """What a finished strategy leaves for scoring (its name, members, decided sources, time
    to protection and counters), e.g. sent back by a worker process."""

    def __init__(self, of: Strategy) -> None:
        super().__init__(of.config)
        self.name = of.name
        self.members = {m: {} for m in of.members}
        self.decided_keys = of.decided_keys
        self.first_protected = of.first_protected
        self.counters = of.counters


class Alone(Strategy):
    name = "alone"


class Poll(Strategy):
    """Local alerts become shared decisions applied ``config.poll`` seconds later."""

    name = "poll-10s"

    def alerted(
        self, t: float, member: str, key: Key, source: Address, rule: str, hits: list[float]
    ) -> None:
        c = self.config
        self.share(key, t + c.poll, t + c.bantime)


class Sync(Strategy):
    """Hourly sync: a source banned by ``reporters`` members is shared at the next sync."""

    name = "sync-1h"

    def __init__(self, config: DrillConfig) -> None:
        super().__init__(config)
        self.reported: dict[Key, set[str]] = {}
        self.dirty: set[Key] = set()
        self._next_sync: float | None = None
        self._wake = _NOT

    def advance(self, t: float) -> None:
        interval = self.config.sync
        if self._next_sync is None:
            self._next_sync = (t // interval + 1) * interval
        self._wake = self._next_sync
        if t < self._next_sync:
            return
        if self.dirty:  # reports made before this sync are shared at it
            c = self.config
            at = self._next_sync
            for key in sorted(self.dirty, key=int):
                if len(self.reported.get(key, ())) >= c.reporters:
                    self.share(key, at, at + c.bantime)
                    self._inc("shared")
            self.dirty.clear()
        self._next_sync = self._wake = (t // interval + 1) * interval

    def alerted(
        self, t: float, member: str, key: Key, source: Address, rule: str, hits: list[float]
    ) -> None:
        self.reported.setdefault(key, set()).add(member)
        self.dirty.add(key)


class Alliance(Strategy):
    """shieldwall: the real treaty on Alerted and Sighted events, decisions apply at once."""

    name = "alliance"
    enrolls = True
    sights = True

    def __init__(self, config: DrillConfig, name: str = "alliance") -> None:
        super().__init__(config)
        self.name = name
        self.treaty = Treaty(config.terms(), new_id=_Ids())
        self._wake = _NOT

    def enroll(self, member: str) -> None:
        trust = "probation" if self.config.quorum is not None else "trusted"
        self.treaty.handle(Enroll(MemberInfo(member, trust)), datetime.fromtimestamp(0, UTC))

    def advance(self, t: float) -> None:
        self._wake = t + self.config.tick
        self._apply(self.treaty.handle(Tick(), datetime.fromtimestamp(t, UTC)), t)

    def sighted(self, t: float, member: str, source: Address, fail: bool, rule: str) -> None:
        when = datetime.fromtimestamp(t, UTC)
        sighting = Sighting(source, rule, _FAILURE if fail else _SUCCESS, 1, when, when)
        effects = self.treaty.handle(Sighted(member, (sighting,)), when)
        if effects:
            self._apply(effects, t)

    def alerted(
        self, t: float, member: str, key: Key, source: Address, rule: str, hits: list[float]
    ) -> None:
        # the alert BucketSet raises: the last maxretry hits, their count, no evidence lines
        evidence = hits[-self.config.maxretry :]
        alert = Alert(
            rule=rule,
            source=source,
            first=datetime.fromtimestamp(evidence[0], UTC),
            last=datetime.fromtimestamp(evidence[-1], UTC),
            count=len(hits),
            evidence=("",) * len(evidence),
        )
        when = datetime.fromtimestamp(t, UTC)
        self._apply(self.treaty.handle(Alerted(member, alert), when), t)

    def _apply(self, effects: Iterable[object], t: float) -> None:
        for effect in effects:
            if isinstance(effect, Decide):
                d = effect.decision
                if not d.scope.is_host:  # pragma: no cover - range sanctions are off
                    self._inc("decisions.range")
                    continue
                self.share(source_key(d.scope.network_address), t, d.expires.timestamp())
                self._inc(f"decided.{effect.evidence.clauses[0]}")
            elif isinstance(effect, Revoke):
                scope = effect.decision.scope
                if scope.is_host:
                    self.spans.pop(source_key(scope.network_address), None)
                self._inc("revoked")
            elif isinstance(effect, Refuse):
                self._inc(f"refused.{effect.refusal.reason}")


class _Ids:
    """Decision ids ``d1``, ``d2``… (a class, not a closure: a strategy can be pickled)."""

    def __init__(self) -> None:
        self._next = count(1)

    def __call__(self) -> str:
        return f"d{next(self._next)}"


_FAILURE = SightingKind.FAILURE
_SUCCESS = SightingKind.SUCCESS


STRATEGIES = ("alone", "alliance", "poll-10s", "sync-1h")


def build(
    config: DrillConfig,
    names: Iterable[str] = STRATEGIES,
    variants: Mapping[str, DrillConfig] | None = None,
) -> list[Strategy]:
    """The strategies named, in that order, then one ``alliance`` per variant (its own
    treaty settings, named as given)."""
    out: list[Strategy] = []
    for name in names:
        if name == "alone":
            out.append(Alone(config))
        elif name == "alliance":
            out.append(Alliance(config))
        elif name == "poll-10s":
            out.append(Poll(config))
        elif name == "sync-1h":
            out.append(Sync(config))
        else:
            raise ValueError(f"unknown strategy {name!r}: one of {', '.join(STRATEGIES)}")
    for name, variant in (variants or {}).items():
        if name in STRATEGIES:
            raise ValueError(f"a treaty variant cannot be named {name!r}")
        out.append(Alliance(variant, name))
    return out
