"""A member's decision stream: the store's backlog (or a paged snapshot), then live batches
from the fan-out, as SSE bytes. The HTTP handler only iterates :func:`follow`.

Order of operations, so that nothing is missed and nothing sent twice:

1. subscribe to the fan-out *first* (events committed from now on are queued);
2. read the log's last sequence number ``last``;
3. without ``since`` (or with one ahead of the log): the active set in pages read one by
   one — a page read after ``last`` may already show a later event; that event comes again
   in step 4 and is idempotent (an ``add`` by id, an end) — then ``sent = last``; with
   ``since``: every event after it from the store, a page at a time;
4. live batches, skipping events at or below ``sent``.

A cut subscription (the member fell too far behind) ends the stream: the member resumes
from its sequence number, from the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from shieldwall.council.fanout.base import Batch, Fanout, Item, Notice
from shieldwall.council.store.base import DecisionLog
from shieldwall.wire.stream import HEARTBEAT, Signer, batch_frame, page_frame, sse

PAGE = 5000
"""Decisions per snapshot page, and events per backlog message."""
HEARTBEAT_EVERY = 15.0


def frames(items: list[Item], sent: int, sign: Signer | None = None) -> tuple[bytes, int]:
    """The SSE bytes of live items, in order, each message signed by ``sign``; events at or
    below ``sent`` are skipped (a batch entirely past ``sent`` is sent as encoded and signed
    once for every subscriber)."""
    out: list[bytes] = []
    for item in items:
        if isinstance(item, Notice):
            out.append(sse(item.event, item.data, sign=sign))
        elif isinstance(item, Batch) and item.last_seq > sent:
            if item.first_seq > sent:
                out.append(item.wire(lambda events: batch_frame(events, sign)))
            else:
                out.append(batch_frame([e for e in item.events if e.seq > sent], sign))
            sent = item.last_seq
    return b"".join(out), sent


async def follow(
    log: DecisionLog,
    fanout: Fanout,
    now: Callable[[], datetime],
    member: str | None,
    since: int | None,
    *,
    heartbeat: float = HEARTBEAT_EVERY,
    sign: Signer | None = None,
    protect: Callable[[], bytes] | None = None,
) -> AsyncIterator[bytes]:
    async with fanout.subscribe(member) as sub:
        last = await log.last_seq()
        if since is None or since > last:
            cursor: str | None = None
            while True:
                page, cursor = await log.active_page(now(), cursor, PAGE)
                yield page_frame(last, page, cursor is None, sign)
                if cursor is None:
                    break
            sent = last
        else:
            sent = since
            while True:
                events = await log.since(sent, PAGE)
                if not events:
                    break
                yield batch_frame(events, sign)
                sent = events[-1].seq
        if protect is not None:  # what the council protects, as of now (changes come live)
            yield sse("protect", protect(), sign=sign)
        while True:
            try:
                items = await asyncio.wait_for(sub.next(), heartbeat)
            except TimeoutError:
                yield HEARTBEAT
                continue
            if items is None:  # cut: the member resumes from `sent`
                return
            data, sent = frames(items, sent, sign)
            if data:
                yield data
