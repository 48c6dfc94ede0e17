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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count

from shieldwall.detect.bucket import BucketSet
from shieldwall.drill.io import FAIL, DrillEvent
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
    "Poll",
    "Strategy",
    "Sync",
    "build",
]

_PRUNE_EVERY = 3600.0


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
    """Local rule and bans shared by every strategy; subclasses decide what is shared."""

    name = "strategy"

    def __init__(self, config: DrillConfig) -> None:
        self.config = config
        self.members: dict[str, BucketSet] = {}
        self.local: dict[Address, dict[str, float]] = {}
        """source -> member -> local ban until (epoch)."""
        self.shared: dict[Address, tuple[float, float]] = {}
        """source -> (from, until): every member is protected in [from, until)."""
        self.decided: set[Address] = set()
        """Every source banned anywhere (locally or shared) at least once."""
        self.protected_all: dict[Address, float] = {}
        """source -> the first time every member was protected from it by a shared
        decision (local bans alone never protect the whole alliance)."""
        self.counters: dict[str, int] = {}
        self._next_prune = float("-inf")

    # -- the step ---------------------------------------------------------------------------

    def protected(self, member: str, source: Address, t: float) -> bool:
        shared = self.shared.get(source)
        if shared is not None and shared[0] <= t < shared[1]:
            return True
        local = self.local.get(source)
        return local is not None and local.get(member, float("-inf")) > t

    def step(self, e: DrillEvent) -> bool:
        """Replay one event; True when it was stopped."""
        t = e.time
        if t >= self._next_prune:
            self._prune(t)
        self.advance(t)
        if e.member not in self.members:
            c = self.config
            self.members[e.member] = BucketSet(c.maxretry, c.findtime, 1_000_000)
        if self.protected(e.member, e.source, t):
            return True
        self.landed(e)
        return False

    def advance(self, t: float) -> None:
        """Time moves to ``t`` (before the event at ``t`` is looked at)."""

    def landed(self, e: DrillEvent) -> None:
        if e.kind == FAIL:
            alert = self.members[e.member].hit(e.rule, e.source, e.time, "")
            if alert is not None:
                self.ban_local(e.member, e.source, e.time)
                self.alerted(e, alert)

    def alerted(self, e: DrillEvent, alert: Alert) -> None:
        """A member's bucket overflowed (it has banned the source locally already)."""

    def finish(self, t: float) -> None:
        """The stream ended at ``t``."""

    # -- bans -------------------------------------------------------------------------------

    def ban_local(self, member: str, source: Address, t: float) -> None:
        bans = self.local.setdefault(source, {})
        bans[member] = max(bans.get(member, t), t + self.config.bantime)
        self.decided.add(source)

    def share(self, source: Address, start: float, until: float) -> None:
        old = self.shared.get(source)
        if old is not None and old[0] <= start < old[1]:
            start = old[0]
            until = max(until, old[1])
        self.shared[source] = (start, until)
        self.decided.add(source)
        self.protected_all.setdefault(source, start)

    def _inc(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _prune(self, t: float) -> None:
        self._next_prune = t + _PRUNE_EVERY
        for source in [s for s, (_, until) in self.shared.items() if until <= t]:
            del self.shared[source]
        for source, bans in list(self.local.items()):
            for member in [m for m, until in bans.items() if until <= t]:
                del bans[member]
            if not bans:
                del self.local[source]
        when = datetime.fromtimestamp(t, UTC)
        for buckets in self.members.values():
            buckets.prune(when)


class Alone(Strategy):
    name = "alone"


class Poll(Strategy):
    """Local alerts become shared decisions applied ``config.poll`` seconds later."""

    name = "poll-10s"

    def alerted(self, e: DrillEvent, alert: Alert) -> None:
        c = self.config
        self.share(e.source, e.time + c.poll, e.time + c.bantime)


class Sync(Strategy):
    """Hourly sync: a source banned by ``reporters`` members is shared at the next sync."""

    name = "sync-1h"

    def __init__(self, config: DrillConfig) -> None:
        super().__init__(config)
        self.reported: dict[Address, set[str]] = {}
        self.dirty: set[Address] = set()
        self._next_sync: float | None = None

    def advance(self, t: float) -> None:
        interval = self.config.sync
        if self._next_sync is None:
            self._next_sync = (t // interval + 1) * interval
        if t < self._next_sync:
            return
        if self.dirty:  # reports made before this sync are shared at it
            c = self.config
            at = self._next_sync
            for source in sorted(self.dirty, key=int):
                if len(self.reported.get(source, ())) >= c.reporters:
                    self.share(source, at, at + c.bantime)
                    self._inc("shared")
            self.dirty.clear()
        self._next_sync = (t // interval + 1) * interval

    def alerted(self, e: DrillEvent, alert: Alert) -> None:
        self.reported.setdefault(e.source, set()).add(e.member)
        self.dirty.add(e.source)


class Alliance(Strategy):
    """shieldwall: the real treaty on Alerted and Sighted events, decisions apply at once."""

    name = "alliance"

    def __init__(self, config: DrillConfig, name: str = "alliance") -> None:
        super().__init__(config)
        self.name = name
        self._ids = count(1)
        self.treaty = Treaty(config.terms(), new_id=lambda: f"d{next(self._ids)}")
        self._next_tick = float("-inf")

    def _member(self, name: str) -> None:
        trust = "probation" if self.config.quorum is not None else "trusted"
        self.treaty.handle(Enroll(MemberInfo(name, trust)), datetime.fromtimestamp(0, UTC))

    def step(self, e: DrillEvent) -> bool:
        if e.member not in self.members:
            self._member(e.member)
        return super().step(e)

    def advance(self, t: float) -> None:
        if t >= self._next_tick:
            self._next_tick = t + self.config.tick
            self._apply(self.treaty.handle(Tick(), datetime.fromtimestamp(t, UTC)), t)

    def landed(self, e: DrillEvent) -> None:
        super().landed(e)
        when = datetime.fromtimestamp(e.time, UTC)
        kind = SightingKind.FAILURE if e.kind == FAIL else SightingKind.SUCCESS
        sighting = Sighting(e.source, e.rule, kind, 1, when, when)
        self._apply(self.treaty.handle(Sighted(e.member, (sighting,)), when), e.time)

    def alerted(self, e: DrillEvent, alert: Alert) -> None:
        when = datetime.fromtimestamp(e.time, UTC)
        self._apply(self.treaty.handle(Alerted(e.member, alert), when), e.time)

    def _apply(self, effects: Iterable[object], t: float) -> None:
        for effect in effects:
            if isinstance(effect, Decide):
                d = effect.decision
                if d.scope.num_addresses != 1:  # pragma: no cover - range sanctions are off
                    self._inc("decisions.range")
                    continue
                self.share(d.scope.network_address, t, d.expires.timestamp())
                self._inc(f"decided.{effect.evidence.clauses[0]}")
            elif isinstance(effect, Revoke):
                scope = effect.decision.scope
                if scope.num_addresses == 1:
                    self.shared.pop(scope.network_address, None)
                self._inc("revoked")
            elif isinstance(effect, Refuse):
                self._inc(f"refused.{effect.refusal.reason}")


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
