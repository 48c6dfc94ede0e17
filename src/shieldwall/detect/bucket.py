"""Buckets on event time: count hits per (rule, source) and raise an alert on overflow.

A bucket holds the times of the recent hits of one source for one rule. A hit older than
``findtime`` before the newest hit of the bucket falls out; when ``maxretry`` hits remain, the
bucket overflows: :meth:`BucketSet.add` returns an :class:`~shieldwall.model.Alert` and the
bucket is emptied. Times come from the log lines (event time), so replays and drills behave
like production; hits may arrive out of order.

Memory is bounded: beyond ``max_tracked`` buckets the least recently touched one is evicted
(counter ``bucket_evicted``). ``touched``/``export``/``restore`` let an adapter persist buckets
across restarts without the core doing I/O.
"""

from __future__ import annotations

import math
from bisect import insort
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeAlias

from shieldwall.errors import InvalidScope
from shieldwall.model import Address, Alert, Counters, parse_address

__all__ = ["EVIDENCE_CHARS", "BucketKey", "BucketRow", "BucketSet"]

EVIDENCE_CHARS: Final = 1000
"""Evidence lines are cut to this many characters."""

BucketKey: TypeAlias = tuple[str, Address]
"""``(rule name, source)``."""


@dataclass(frozen=True, slots=True)
class BucketRow:
    """One bucket as plain values, for a store.

    ``timestamps`` are epoch seconds, oldest first; ``evidence`` holds the matching lines in
    the same order. Empty lists mean the bucket no longer exists (delete the stored row).
    """

    rule: str
    source: str
    timestamps: list[float]
    evidence: list[str]


class _Bucket:
    __slots__ = ("hits",)

    def __init__(self) -> None:
        self.hits: list[tuple[float, str]] = []  # (epoch seconds, evidence line), sorted


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class BucketSet:
    """The buckets of one rule (keys still carry the rule name, so rows are self-describing).

    ``max_tracked`` bounds the number of buckets; ``bantime`` is copied into alerts.
    """

    __slots__ = (
        "_buckets",
        "_counters",
        "_touched",
        "_tracking",
        "bantime",
        "findtime",
        "max_tracked",
        "maxretry",
    )

    def __init__(
        self,
        maxretry: int,
        findtime_seconds: float,
        max_tracked: int = 100_000,
        *,
        bantime: float | None = None,
        counters: Counters | None = None,
    ) -> None:
        if maxretry < 1:
            raise ValueError("maxretry must be at least 1")
        if not findtime_seconds > 0:
            raise ValueError("findtime must be positive")
        if max_tracked < 1:
            raise ValueError("max_tracked must be at least 1")
        self.maxretry = maxretry
        self.findtime = float(findtime_seconds)
        self.max_tracked = max_tracked
        self.bantime = bantime
        self._counters = counters if counters is not None else Counters()
        self._buckets: OrderedDict[BucketKey, _Bucket] = OrderedDict()
        self._touched: set[BucketKey] = set()
        self._tracking = False

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    @property
    def counters(self) -> Counters:
        return self._counters

    def _touch(self, key: BucketKey) -> None:
        if self._tracking:
            touched = self._touched
            touched.add(key)
            if len(touched) > 4 * self.max_tracked:
                # Nobody is collecting: stop before this grows without bound. The next
                # touched() returns every live key (a full resync of live buckets).
                touched.clear()
                self._tracking = False
                self._counters.inc("bucket_touched_overflow")

    def add(self, rule: str, source: Address, at: datetime, line: str) -> Alert | None:
        """Record one hit at ``at`` (aware); return an alert if the bucket overflows."""
        key = (rule, source)
        epoch = at.timestamp()
        if len(line) > EVIDENCE_CHARS:
            line = line[:EVIDENCE_CHARS]
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            if self.maxretry == 1:
                self._touch(key)
                return self._alert(rule, source, [(epoch, line)])
            bucket = _Bucket()
            buckets[key] = bucket
            if len(buckets) > self.max_tracked:
                evicted, _ = buckets.popitem(last=False)
                self._counters.inc("bucket_evicted")
                self._touch(evicted)
        else:
            buckets.move_to_end(key)
        hits = bucket.hits
        if not hits or epoch >= hits[-1][0]:
            hits.append((epoch, line))
        else:
            insort(hits, (epoch, line), key=_first)
        cutoff = hits[-1][0] - self.findtime
        if hits[0][0] < cutoff:
            keep = 0
            while hits[keep][0] < cutoff:
                keep += 1
            del hits[:keep]
        self._touch(key)
        if len(hits) >= self.maxretry:
            del buckets[key]
            return self._alert(rule, source, hits)
        return None

    def _alert(self, rule: str, source: Address, hits: list[tuple[float, str]]) -> Alert:
        return Alert(
            rule=rule,
            source=source,
            first=_when(hits[0][0]),
            last=_when(hits[-1][0]),
            count=len(hits),
            evidence=tuple(line for _, line in hits[-self.maxretry :]),
            bantime=self.bantime,
        )

    def prune(self, now: datetime) -> int:
        """Drop buckets whose newest hit is older than ``now - findtime``; return how many."""
        cutoff = now.timestamp() - self.findtime
        stale = [key for key, bucket in self._buckets.items() if bucket.hits[-1][0] < cutoff]
        for key in stale:
            del self._buckets[key]
            self._touch(key)
        return len(stale)

    def touched(self) -> set[BucketKey]:
        """Keys created, changed, emptied or evicted since the last call (then forgotten).

        Tracking starts with the first call, which returns every live key; until then nothing
        is recorded, so a detector without persistence keeps no such set.
        """
        if not self._tracking:
            self._tracking = True
            self._touched = set()
            return set(self._buckets)
        touched, self._touched = self._touched, set()
        return touched

    def export(self, keys: Iterable[BucketKey]) -> list[BucketRow]:
        """Rows for ``keys``; a key without a bucket gives a row with empty lists (deleted)."""
        rows = []
        for rule, source in keys:
            bucket = self._buckets.get((rule, source))
            hits = bucket.hits if bucket is not None else []
            rows.append(
                BucketRow(
                    rule=rule,
                    source=str(source),
                    timestamps=[epoch for epoch, _ in hits],
                    evidence=[line for _, line in hits],
                )
            )
        return rows

    def restore(self, rows: Iterable[BucketRow]) -> None:
        """Load rows from :meth:`export`. Bad rows are skipped and counted (``bucket_bad_row``).

        At most ``maxretry - 1`` hits are kept per bucket (the newest), so restoring never
        raises an alert by itself. Restored buckets do not count as touched.
        """
        for row in rows:
            try:
                source = parse_address(row.source)
            except InvalidScope:
                self._counters.inc("bucket_bad_row")
                continue
            times = [float(t) for t in row.timestamps]
            if not all(math.isfinite(t) for t in times):
                self._counters.inc("bucket_bad_row")
                continue
            count = len(times)
            evidence = (
                [str(line)[:EVIDENCE_CHARS] for line in row.evidence][-count:] if count else []
            )
            evidence = [""] * (count - len(evidence)) + evidence  # pair from the newest end
            hits = sorted(zip(times, evidence, strict=True))
            keep = self.maxretry - 1
            hits = hits[-keep:] if keep else []
            key = (row.rule, source)
            if not hits:
                self._buckets.pop(key, None)
                continue
            bucket = _Bucket()
            bucket.hits = hits
            self._buckets[key] = bucket
            self._buckets.move_to_end(key)
            if len(self._buckets) > self.max_tracked:
                self._buckets.popitem(last=False)
                self._counters.inc("bucket_evicted")


def _first(hit: tuple[float, str]) -> float:
    return hit[0]
