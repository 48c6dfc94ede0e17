"""Server-sent-event framing of the decision stream. Pure: values in, bytes out.

``batch`` messages carry decision-log events (``id:`` the last sequence number), ``snapshot``
messages a page of the active set (``id:`` on the last page only), ``consult`` messages a
consultation (no ``id:``: it is not part of the log and moves no resume point).
"""

from __future__ import annotations

from collections.abc import Sequence

from shieldwall.model import Decision, DecisionEvent
from shieldwall.wire.messages import batch_to_wire, encode, page_to_wire

HEARTBEAT = b": ping\n\n"


def sse(event: str, data: bytes, seq: int | None = None) -> bytes:
    if seq is None:
        return b"event: %s\ndata: %s\n\n" % (event.encode(), data)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, event.encode(), data)


def batch_frame(events: Sequence[DecisionEvent]) -> bytes:
    """One message for the events (in order), ``id:`` the last one's sequence number."""
    if not events:
        return b""
    return sse("batch", encode(batch_to_wire(events)), events[-1].seq)


def page_frame(seq: int, decisions: Sequence[Decision], last: bool) -> bytes:
    return sse("snapshot", encode(page_to_wire(seq, decisions, last)), seq if last else None)
