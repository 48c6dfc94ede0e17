"""Decision-log semantics, pure.

The log is an append-only sequence of :class:`~shieldwall.model.DecisionEvent` with strictly
increasing ``seq``. ``add`` makes a decision active until its expiry; ``revoke`` and ``expire``
end it. Replaying the log from the start (or from a snapshot at ``seq``) yields the active set;
an event at or below the view's ``seq`` is a duplicate and is ignored, which is what makes
resuming a stream from ``since=SEQ`` exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from shieldwall.model import Decision, DecisionEvent, EventKind, Scope


@dataclass(slots=True)
class DecisionView:
    """The active decisions as of ``seq``: what a member (or the council) holds."""

    seq: int = 0
    decisions: dict[str, Decision] = field(default_factory=dict)

    def apply(self, event: DecisionEvent) -> bool:
        """Apply one event; False when it was already applied (``seq`` not above ours)."""
        if event.seq <= self.seq:
            return False
        self.seq = event.seq
        if event.kind is EventKind.ADD:
            self.decisions[event.decision.id] = event.decision
        else:
            self.decisions.pop(event.decision.id, None)
        return True

    def reset(self, seq: int, decisions: Iterable[Decision]) -> None:
        self.seq = seq
        self.decisions = {d.id: d for d in decisions}

    def active(self, now: datetime) -> list[Decision]:
        return sorted(
            (d for d in self.decisions.values() if d.active_at(now)), key=lambda d: d.created
        )

    def drop_expired(self, now: datetime) -> list[Decision]:
        gone = [d for d in self.decisions.values() if not d.active_at(now)]
        for d in gone:
            del self.decisions[d.id]
        return gone


def replay(events: Iterable[DecisionEvent], now: datetime) -> list[Decision]:
    """The active set at ``now`` from a whole log."""
    view = DecisionView()
    for event in events:
        view.apply(event)
    return view.active(now)


def blocked_scopes(decisions: Iterable[Decision], now: datetime) -> dict[Scope, float]:
    """Scope → the latest expiry (epoch seconds) over all active decisions on it: what a
    member must block, recomputed in full (the reference the incremental
    :class:`~shieldwall.blocklist.BlockList` is tested against)."""
    out: dict[Scope, float] = {}
    for d in decisions:
        if not d.active_at(now):
            continue
        expires = d.expires.timestamp()
        prev = out.get(d.scope)
        if prev is None or expires > prev:
            out[d.scope] = expires
    return out
