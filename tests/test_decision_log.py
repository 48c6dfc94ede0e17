"""Decision-log semantics: replay gives the active set; resuming is exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shieldwall.blocklist import Diff, full_diff
from shieldwall.decision_log import DecisionView, blocked_scopes, replay
from shieldwall.model import (
    Action,
    Decision,
    DecisionEvent,
    EventKind,
    Origin,
    parse_scope,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def dec(i: int, minutes: int = 60, scope: str | None = None) -> Decision:
    return Decision(
        f"d{i}",
        parse_scope(scope or f"203.0.113.{i % 250}"),
        Action.BAN,
        Origin.ALERT,
        "r",
        NOW,
        NOW + timedelta(minutes=minutes),
    )


def test_add_revoke_expire() -> None:
    events = [
        DecisionEvent(1, EventKind.ADD, dec(1), NOW),
        DecisionEvent(2, EventKind.ADD, dec(2), NOW),
        DecisionEvent(3, EventKind.ADD, dec(3, minutes=1), NOW),
        DecisionEvent(4, EventKind.REVOKE, dec(1), NOW),
    ]
    assert [d.id for d in replay(events, NOW)] == ["d2", "d3"]
    assert [d.id for d in replay(events, NOW + timedelta(minutes=2))] == ["d2"]


def test_duplicates_and_old_events_are_ignored() -> None:
    view = DecisionView()
    assert view.apply(DecisionEvent(1, EventKind.ADD, dec(1), NOW))
    assert not view.apply(DecisionEvent(1, EventKind.ADD, dec(1), NOW))
    assert view.apply(DecisionEvent(2, EventKind.REVOKE, dec(1), NOW))
    assert not view.apply(DecisionEvent(1, EventKind.ADD, dec(1), NOW))
    assert view.active(NOW) == []


def test_blocked_scopes_takes_the_latest_expiry_and_diff_only_extends() -> None:
    a = dec(1, 10, "203.0.113.1")
    b = Decision("x", a.scope, Action.BAN, Origin.OPERATOR, "r", NOW, NOW + timedelta(hours=9))
    now = NOW.timestamp()
    target = blocked_scopes([a, b], NOW)
    assert target == {a.scope: b.expires.timestamp()}
    before = {a.scope: a.expires.timestamp()}
    assert full_diff(before, target, now) == Diff({a.scope: b.expires.timestamp()})
    # shorter: the block is replaced (unblocked, then blocked until the earlier expiry)
    assert full_diff(target, before, now) == Diff(before, [a.scope])
    assert full_diff(target, {}, now) == Diff({}, [a.scope])


@st.composite
def logs(draw: st.DrawFn) -> list[DecisionEvent]:
    n = draw(st.integers(1, 40))
    events: list[DecisionEvent] = []
    live: list[Decision] = []
    for seq in range(1, n + 1):
        if live and draw(st.booleans()):
            d = live.pop(draw(st.integers(0, len(live) - 1)))
            kind = draw(st.sampled_from([EventKind.REVOKE, EventKind.EXPIRE]))
        else:
            d = dec(seq, draw(st.integers(-5, 120)))
            live.append(d)
            kind = EventKind.ADD
        events.append(DecisionEvent(seq, kind, d, NOW))
    return events


@given(log=logs(), cut=st.integers(0, 40))
def test_resuming_from_any_seq_gives_the_same_active_set(
    log: list[DecisionEvent], cut: int
) -> None:
    whole = replay(log, NOW)
    view = DecisionView()
    for e in log[:cut]:
        view.apply(e)
    # the member went away at `cut` and resumes with everything after its seq, plus some
    # events it had already seen (a reconnect overlapping its position)
    for e in log[max(0, cut - 3) :]:
        view.apply(e)
    assert view.active(NOW) == whole
