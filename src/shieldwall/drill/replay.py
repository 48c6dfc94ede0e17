"""Replay: members' events merged into one stream ordered by event time. Pure.

``merge`` joins streams that are each in time order (one per member or per file);
``reorder`` puts a stream that is only *nearly* in order (log files of several hosts
concatenated, clocks a little apart) in order with a bounded buffer: an event later than
``slack`` seconds behind the newest one seen is replayed at the time already reached
(counted in ``late``), so memory stays bounded and the replay never goes back in time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from shieldwall.drill.io import DrillEvent

__all__ = ["Reorder", "merge", "reorder"]


def _key(e: DrillEvent) -> float:
    return e.time


def merge(*streams: Iterable[DrillEvent]) -> Iterator[DrillEvent]:
    """Streams each ordered by time, merged into one (stable: ties keep stream order)."""
    return heapq.merge(*streams, key=_key)


@dataclass(slots=True)
class Reorder:
    """Orders a nearly ordered stream within ``slack`` seconds, holding at most
    ``max_buffer`` events."""

    slack: float = 3600.0
    max_buffer: int = 1_000_000
    late: int = 0

    def __call__(self, events: Iterable[DrillEvent]) -> Iterator[DrillEvent]:
        heap: list[tuple[float, int, DrillEvent]] = []
        out_time = float("-inf")
        newest = float("-inf")
        for seq, event in enumerate(events):
            e = event
            t = e.time
            if t < out_time:
                self.late += 1
                e = replace(e, time=out_time)
                t = out_time
            if t > newest:
                newest = t
            heapq.heappush(heap, (t, seq, e))
            while heap and (heap[0][0] < newest - self.slack or len(heap) > self.max_buffer):
                out_time, _, first = heapq.heappop(heap)
                yield first
        while heap:
            _, _, first = heapq.heappop(heap)
            yield first


def reorder(
    events: Iterable[DrillEvent], slack: float = 3600.0, max_buffer: int = 1_000_000
) -> Iterator[DrillEvent]:
    """``events`` in time order (see :class:`Reorder`)."""
    return Reorder(slack, max_buffer)(events)
