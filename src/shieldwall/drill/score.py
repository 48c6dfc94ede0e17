"""Scoring a drill: per strategy, what landed, what was stopped, how fast the alliance closed
its doors, and whom it banned by mistake. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shieldwall.drill.io import FAIL, DrillEvent
from shieldwall.drill.strategies import Strategy
from shieldwall.model import Address

__all__ = ["Score", "Scoreboard", "percentile"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(slots=True)
class Score:
    """One strategy's tally."""

    name: str
    attempts: int = 0
    landed: int = 0
    stopped: int = 0
    logins: int = 0
    logins_blocked: int = 0
    timeline: list[tuple[float, int]] = field(default_factory=list)
    """(time, landed so far), one point per ``sample`` seconds of event time (for plots)."""


@dataclass(slots=True)
class Scoreboard:
    """Counts every event of one replay for every strategy."""

    strategies: list[Strategy]
    sample: float = 3600.0
    scores: list[Score] = field(default_factory=list)
    first_seen: dict[Address, float] = field(default_factory=dict)
    """source -> its first attempt anywhere."""
    legit: set[Address] = field(default_factory=set)
    events: int = 0
    start: float | None = None
    end: float | None = None
    _next_sample: float = float("-inf")

    def __post_init__(self) -> None:
        self.scores = [Score(s.name) for s in self.strategies]

    def feed(self, events: Iterable[DrillEvent]) -> None:
        strategies = self.strategies
        scores = self.scores
        pairs = list(zip(strategies, scores, strict=True))
        first_seen = self.first_seen
        legit = self.legit
        n = self.events
        for e in events:
            n += 1
            t = e.time
            if self.start is None:
                self.start = t
            if t >= self._next_sample:
                self._next_sample = t + self.sample
                for sc in scores:
                    sc.timeline.append((t, sc.landed))
            if e.legit:
                legit.add(e.source)
            if e.kind == FAIL:
                if e.source not in first_seen:
                    first_seen[e.source] = t
                for strategy, sc in pairs:
                    sc.attempts += 1
                    if strategy.step(e):
                        sc.stopped += 1
                    else:
                        sc.landed += 1
            else:
                for strategy, sc in pairs:
                    sc.logins += 1
                    if strategy.step(e):
                        sc.logins_blocked += 1
            self.end = t
        self.events = n

    def finish(self) -> None:
        end = self.end if self.end is not None else 0.0
        for strategy, sc in zip(self.strategies, self.scores, strict=True):
            strategy.finish(end)
            sc.timeline.append((end, sc.landed))

    def ttp(self, strategy: Strategy) -> list[float]:
        """Seconds from each decided source's first attempt anywhere to protection at every
        member (sources never protected everywhere have no value)."""
        first = self.first_seen
        return [t - first[s] for s, t in strategy.protected_all.items() if s in first]

    def result(self) -> dict[str, Any]:
        """The JSON-ready summary: ``strategies`` maps each name to exactly the keys
        ``attempts, landed, stopped, stopped_share, sources_decided,
        time_to_protection_ms {p50, p99}, false_bans``; ``details`` holds the rest."""
        out: dict[str, Any] = {}
        details: dict[str, Any] = {}
        for strategy, sc in zip(self.strategies, self.scores, strict=True):
            ttp = self.ttp(strategy)
            p50, p99 = percentile(ttp, 0.5), percentile(ttp, 0.99)
            out[sc.name] = {
                "attempts": sc.attempts,
                "landed": sc.landed,
                "stopped": sc.stopped,
                "stopped_share": round(sc.stopped / sc.attempts, 6) if sc.attempts else 0.0,
                "sources_decided": len(strategy.decided),
                "time_to_protection_ms": {
                    "p50": None if p50 is None else round(p50 * 1000),
                    "p99": None if p99 is None else round(p99 * 1000),
                },
                "false_bans": len(strategy.decided & self.legit),
            }
            details[sc.name] = {
                "logins": sc.logins,
                "logins_blocked": sc.logins_blocked,
                "sources_protected_everywhere": len(ttp),
                "counters": dict(sorted(strategy.counters.items())),
            }
        return {
            "strategies": out,
            "details": details,
            "events": self.events,
            "sources": len(self.first_seen),
            "legit_sources": len(self.legit),
            "members": max((len(s.members) for s in self.strategies), default=0),
            "start": self.start,
            "end": self.end,
        }
