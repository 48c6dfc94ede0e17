"""A seeded campaign generator with ground truth. Pure apart from :func:`write_csv`.

Actors (each one source address, each with its own seeded random stream):

``botnet``      a bot sweeps a random set of members; at each one a burst of 6–12 attempts
                a few seconds apart (every member's local rule sees it, one after another).
``slow``        low-and-slow distributed brute force: 1–2 attempts per member, about one
                member a minute — below every member's ``maxretry``.
``scanner``     one attempt at nearly every member, seconds apart.
``nat``         a NAT/CGNAT egress shared by many real users: successful logins at members,
                now and then after a typo (one failed attempt) — ``legit`` = 1.

Actors start as a Poisson process over ``days``; events are merged by time with a heap of
the actors alive at once, so memory is bounded by concurrency, not by ``events``. The same
``seed`` gives the same file.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from shieldwall.drill.io import FAIL, SUCCESS, DrillEvent

__all__ = ["KINDS", "Campaign", "write_csv"]

KINDS: dict[str, tuple[float, float]] = {
    # kind: (share of events, mean events per actor)
    "botnet": (0.40, 0.0),
    "slow": (0.20, 0.0),
    "scanner": (0.20, 0.0),
    "nat": (0.20, 0.0),
}


@dataclass(frozen=True, slots=True)
class Campaign:
    members: int = 100
    events: int = 100_000
    seed: int = 1
    days: float = 7.0
    start: float = 1_700_000_000.0
    """Epoch seconds of the first actor's start."""
    names: tuple[str, ...] = ()
    """The members' names (then ``members`` is their number); default ``m00000``…"""
    kinds: tuple[str, ...] = tuple(KINDS)
    """Which actors to generate (e.g. only ``nat``: benign traffic to mix with real data)."""

    def __post_init__(self) -> None:
        if self.names:
            if len(set(self.names)) != len(self.names):
                raise ValueError("member names must be distinct")
            object.__setattr__(self, "members", len(self.names))
        if self.members < 3:
            raise ValueError("a campaign needs at least 3 members")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"unknown actor kinds {unknown} (one of {', '.join(KINDS)})")
        if self.events < 1:
            raise ValueError("events must be at least 1")
        if not self.days > 0:
            raise ValueError("days must be positive")

    def member(self, i: int) -> str:
        return self.names[i] if self.names else f"m{i:05d}"

    def mean_events(self, kind: str) -> float:
        n = self.members
        if kind == "botnet":
            return 9.0 * max(3, n // 5) / 2 + 9.0  # bursts of 9 at ~n/5 members on average
        if kind == "slow":
            return 1.5 * max(3, n // 3) / 2 + 1.5
        if kind == "scanner":
            return 0.9 * n
        return 1.15 * 40.0 * 5.5  # sessions (and typos) of 1–10 users

    def __iter__(self) -> Iterator[DrillEvent]:
        rng = random.Random(self.seed)  # noqa: S311 - a seeded simulation
        span = self.days * 86400.0
        start0 = self.start
        kinds = [k for k in KINDS if k in self.kinds]
        weights = [KINDS[k][0] / self.mean_events(k) for k in kinds]
        actors_expected = sum(self.events * KINDS[k][0] / self.mean_events(k) for k in kinds)
        gap = span / max(actors_expected, 1.0)
        used: set[int] = set()
        heap: list[tuple[float, int, DrillEvent, Iterator[DrillEvent]]] = []
        next_start = start0
        seq = 0
        emitted = 0
        while emitted < self.events:
            # start every actor due before the earliest pending event
            while not heap or next_start <= heap[0][0]:
                kind = rng.choices(kinds, weights)[0]
                source = self._address(rng, used)
                own = random.Random(rng.getrandbits(64))  # noqa: S311
                actor = _ACTORS[kind](self, own, next_start, source)
                first = next(actor, None)
                if first is not None:
                    heapq.heappush(heap, (first.time, seq, first, actor))
                    seq += 1
                next_start += rng.expovariate(1.0 / gap)
            _, _, event, actor = heapq.heappop(heap)
            yield event
            emitted += 1
            nxt = next(actor, None)
            if nxt is not None:
                heapq.heappush(heap, (nxt.time, seq, nxt, actor))
                seq += 1

    @staticmethod
    def _address(rng: random.Random, used: set[int]) -> ipaddress.IPv4Address:
        while True:
            n = rng.getrandbits(32)
            if n in used:
                continue
            addr = ipaddress.IPv4Address(n)
            if addr.is_global and not addr.is_multicast:
                used.add(n)
                return addr


def _sample_members(c: Campaign, rng: random.Random, k: int) -> list[str]:
    return [c.member(i) for i in rng.sample(range(c.members), min(k, c.members))]


def _botnet(
    c: Campaign, rng: random.Random, t: float, src: ipaddress.IPv4Address
) -> Iterator[DrillEvent]:
    for m in _sample_members(c, rng, rng.randint(3, max(3, 2 * c.members // 5))):
        for _ in range(rng.randint(6, 12)):
            yield DrillEvent(t, m, src)
            t += rng.uniform(1.0, 8.0)
        t += rng.uniform(5.0, 60.0)


def _slow(
    c: Campaign, rng: random.Random, t: float, src: ipaddress.IPv4Address
) -> Iterator[DrillEvent]:
    for m in _sample_members(c, rng, rng.randint(3, max(3, 2 * c.members // 3))):
        for _ in range(rng.randint(1, 2)):
            yield DrillEvent(t, m, src)
            t += rng.uniform(20.0, 90.0)


def _scanner(
    c: Campaign, rng: random.Random, t: float, src: ipaddress.IPv4Address
) -> Iterator[DrillEvent]:
    for m in _sample_members(c, rng, int(c.members * rng.uniform(0.8, 1.0))):
        yield DrillEvent(t, m, src)
        t += rng.uniform(0.5, 5.0)


def _nat(
    c: Campaign, rng: random.Random, t: float, src: ipaddress.IPv4Address
) -> Iterator[DrillEvent]:
    users = rng.randint(1, 10)  # real users behind the address
    lo = min(5 * users, c.members)
    homes = _sample_members(c, rng, rng.randint(lo, max(lo, min(50, c.members))))
    for _ in range(max(1, int(rng.expovariate(1.0 / (40.0 * users))))):
        m = rng.choice(homes)
        if rng.random() < 0.15:  # a typo first
            yield DrillEvent(t, m, src, FAIL, legit=True)
            t += rng.uniform(3.0, 15.0)
        yield DrillEvent(t, m, src, SUCCESS, legit=True)
        t += rng.expovariate(users / 240.0) + 20.0 / users


_ACTORS = {"botnet": _botnet, "slow": _slow, "scanner": _scanner, "nat": _nat}


def _open_out(out: Path) -> TextIO:
    if out.suffix == ".gz":
        return gzip.open(out, "wt", encoding="utf-8", newline="", compresslevel=3)
    return out.open("w", encoding="utf-8", newline="")


def write_csv(campaign: Campaign, out: Path) -> dict[str, int]:
    """Write ``campaign`` as an event CSV (gzip when ``out`` ends in ``.gz``); its counts."""
    events = legit = 0
    sources: set[ipaddress.IPv4Address] = set()
    with _open_out(out) as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["time", "member", "source", "kind", "rule", "legit"])
        for e in campaign:
            w.writerow([f"{e.time:.3f}", e.member, str(e.source), e.kind, e.rule, int(e.legit)])
            events += 1
            legit += e.legit
            sources.add(e.source)  # type: ignore[arg-type]
    return {"events": events, "legit_events": legit, "sources": len(sources)}
