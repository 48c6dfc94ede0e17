"""Scoring a drill: per strategy, what landed, what was stopped, how fast the alliance closed
its doors, and whom it banned by mistake. Pure."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from shieldwall.drill.io import DrillEvent, Key, Row, row_of
from shieldwall.drill.strategies import Strategy

__all__ = ["CHUNK", "Score", "Scoreboard", "percentile"]

CHUNK = 4096
"""Events handed to each strategy at once (:meth:`Strategy.replay`)."""


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
    """Counts every event of one replay for every strategy.

    Events are replayed in batches (at most :data:`CHUNK`, cut where the timeline takes a
    sample): every strategy replays a batch in turn. The strategies share nothing, so this
    is the same as stepping every strategy through every event."""

    strategies: list[Strategy]
    sample: float = 3600.0
    scores: list[Score] = field(default_factory=list)
    first_seen: dict[Key, float] = field(default_factory=dict)
    """source -> its first attempt anywhere."""
    legit: set[Key] = field(default_factory=set)
    events: int = 0
    start: float | None = None
    end: float | None = None
    _next_sample: float = float("-inf")

    def __post_init__(self) -> None:
        self.scores = [Score(s.name) for s in self.strategies]

    def feed(self, events: Iterable[DrillEvent]) -> None:
        self.feed_rows(map(row_of, events))

    def feed_rows(self, rows: Iterable[Row], progress: Callable[[int], None] | None = None) -> None:
        """Replay ``rows`` (in time order); ``progress`` is told the number of events
        replayed so far after each batch."""
        it = iter(rows)
        if self.start is None:
            first = next(it, None)
            if first is None:
                return
            self.start = first[0]
            it = chain((first,), it)
        scores = self.scores
        first_seen = self.first_seen
        legit = self.legit
        sample = self.sample
        next_sample = self._next_sample
        chunk: list[Row] = []
        append = chunk.append
        fails = 0
        t = self.end
        try:
            for row in it:
                t = row[0]
                if t >= next_sample:
                    if chunk:
                        self._replay(chunk, fails, progress)
                        chunk = []
                        append = chunk.append
                        fails = 0
                    next_sample = t + sample
                    for sc in scores:
                        sc.timeline.append((t, sc.landed))
                if row[3]:
                    fails += 1
                    if row[2] not in first_seen:
                        first_seen[row[2]] = t
                if row[6]:
                    legit.add(row[2])
                append(row)
                if len(chunk) >= CHUNK:
                    self._replay(chunk, fails, progress)
                    chunk = []
                    append = chunk.append
                    fails = 0
            if chunk:
                self._replay(chunk, fails, progress)
        finally:
            self.end = t
            self._next_sample = next_sample

    def _replay(self, chunk: list[Row], fails: int, progress: Callable[[int], None] | None) -> None:
        logins = len(chunk) - fails
        for strategy, sc in zip(self.strategies, self.scores, strict=True):
            stopped, landed, blocked = strategy.replay(chunk)
            sc.attempts += fails
            sc.stopped += stopped
            sc.landed += landed
            sc.logins += logins
            sc.logins_blocked += blocked
        self.events += len(chunk)
        if progress is not None:
            progress(self.events)

    def finish(self) -> None:
        end = self.end if self.end is not None else 0.0
        for strategy, sc in zip(self.strategies, self.scores, strict=True):
            strategy.finish(end)
            sc.timeline.append((end, sc.landed))

    def ttp(self, strategy: Strategy) -> list[float]:
        """Seconds from each decided source's first attempt anywhere to protection at every
        member (sources never protected everywhere have no value)."""
        first = self.first_seen
        return [t - first[k] for k, t in strategy.first_protected.items() if k in first]

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
                "sources_decided": len(strategy.decided_keys),
                "time_to_protection_ms": {
                    "p50": None if p50 is None else round(p50 * 1000),
                    "p99": None if p99 is None else round(p99 * 1000),
                },
                "false_bans": len(strategy.decided_keys & self.legit),
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
