"""Replay: members' events merged into one stream ordered by event time. Pure.

``merge`` joins streams that are each in time order (one per member or per file);
``reorder`` puts a stream that is only *nearly* in order (log files of several hosts
concatenated, clocks a little apart) in order with a bounded buffer: an event later than
``slack`` seconds behind the newest one seen is replayed at the time already reached
(counted in ``late``), so memory stays bounded and the replay never goes back in time.

Both work on :class:`~shieldwall.drill.io.DrillEvent` objects and, for the drill's fast path,
on :data:`~shieldwall.drill.io.Row` tuples (``merge_rows``, :meth:`Reorder.rows`).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import chain
from operator import attrgetter, itemgetter
from typing import TypeVar

from shieldwall.drill.io import DrillEvent, Row

__all__ = ["Reorder", "merge", "merge_rows", "reorder"]

_T = TypeVar("_T")

_event_time: Callable[[DrillEvent], float] = attrgetter("time")
_row_time: Callable[[Row], float] = itemgetter(0)


def merge(*streams: Iterable[DrillEvent]) -> Iterator[DrillEvent]:
    """Streams each ordered by time, merged into one (stable: ties keep stream order)."""
    return heapq.merge(*streams, key=_event_time)


def merge_rows(*streams: Iterable[Row]) -> Iterator[Row]:
    """:func:`merge` for :data:`~shieldwall.drill.io.Row` streams."""
    return heapq.merge(*streams, key=_row_time)


def _retime_event(e: DrillEvent, t: float) -> DrillEvent:
    return replace(e, time=t)


def _retime_row(row: Row, t: float) -> Row:
    return (t, *row[1:])


@dataclass(slots=True)
class Reorder:
    """Orders a nearly ordered stream within ``slack`` seconds, holding at most
    ``max_buffer`` events."""

    slack: float = 3600.0
    max_buffer: int = 1_000_000
    late: int = 0

    def __call__(self, events: Iterable[DrillEvent]) -> Iterator[DrillEvent]:
        return self._order(events, _event_time, _retime_event)

    def rows(self, rows: Iterable[Row]) -> Iterator[Row]:
        """The same order for :data:`~shieldwall.drill.io.Row` tuples."""
        return self._order(rows, _row_time, _retime_row)

    def _order(
        self, items: Iterable[_T], time_of: Callable[[_T], float], retime: Callable[[_T, float], _T]
    ) -> Iterator[_T]:
        """Every item goes into the buffer as ``(time, arrival, item)``; the smallest one leaves
        while it is more than ``slack`` behind the newest time seen, or the buffer is full.

        While the stream is in time order, the buffer is a queue in arrival order (the order
        a heap would give: nothing is late, ties keep their arrival order) and no heap work
        is done; from the first item out of order on, the buffer is that queue plus a heap of
        the items that came out of order, and the next to leave is the smaller of their heads.
        """
        it = iter(items)
        slack = self.slack
        max_buffer = self.max_buffer
        held: deque[_T] = deque()
        times: deque[float] = deque()
        out_time = newest = float("-inf")
        for item in it:
            t = time_of(item)
            if t < newest:
                break
            newest = t
            held.append(item)
            times.append(t)
            limit = t - slack
            while times and (times[0] < limit or len(times) > max_buffer):
                out_time = times.popleft()
                yield held.popleft()
        else:
            yield from held
            return
        # the first item out of order: the held ones are the latest arrivals, in order
        run = deque(zip(times, range(-len(held), 0), held, strict=True))
        heap: list[tuple[float, int, _T]] = []
        for seq, arrived in enumerate(chain((item,), it)):
            t = time_of(arrived)
            item = arrived
            if t < out_time:
                self.late += 1
                item = retime(arrived, out_time)
                t = out_time
            if t > newest:
                newest = t
            if not run or t >= run[-1][0]:
                run.append((t, seq, item))
            else:
                heapq.heappush(heap, (t, seq, item))
            limit = newest - slack
            while True:
                if run and (not heap or run[0] < heap[0]):
                    head = run[0]
                    if not (head[0] < limit or len(run) + len(heap) > max_buffer):
                        break
                    run.popleft()
                elif heap:
                    head = heap[0]
                    if not (head[0] < limit or len(run) + len(heap) > max_buffer):
                        break
                    heapq.heappop(heap)
                else:
                    break
                out_time = head[0]
                yield head[2]
        while run or heap:
            if run and (not heap or run[0] < heap[0]):
                yield run.popleft()[2]
            else:
                yield heapq.heappop(heap)[2]


def reorder(
    events: Iterable[DrillEvent], slack: float = 3600.0, max_buffer: int = 1_000_000
) -> Iterator[DrillEvent]:
    """``events`` in time order (see :class:`Reorder`)."""
    return Reorder(slack, max_buffer)(events)
