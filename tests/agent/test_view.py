"""The agent's durable view of the council's decisions: a snapshot plus a journal of batches,
compacted as it grows; reopening gives exactly what was applied."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shieldwall.agent.state import AgentState
from shieldwall.model import Action, Decision, EventKind, LogEvent, Origin, parse_scope
from shieldwall.wire.messages import decision_to_wire

T0 = 1_800_000_000.0
SCOPES = ["203.0.113.1", "203.0.113.0/24", "2001:db8::7", "198.51.100.9"]

batch = st.lists(
    st.tuples(
        st.sampled_from([EventKind.ADD, EventKind.REVOKE, EventKind.EXPIRE]),
        st.integers(0, 9),
        st.sampled_from(SCOPES),
        st.floats(0, 9000),
    ),
    max_size=8,
)


@given(st.lists(st.tuples(batch, st.booleans()), max_size=12))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_reopening_gives_what_was_applied(
    tmp_path: Path, batches: list[tuple[list[tuple[EventKind, int, str, float]], bool]]
) -> None:
    state_dir = tmp_path / f"s{len(list(tmp_path.iterdir()))}"
    state = AgentState(str(state_dir))
    model: dict[str, tuple[str, float]] = {}
    seq = 0
    for events, compact in batches:
        applied = []
        for kind, i, scope, dt in events:
            seq += 1
            applied.append(LogEvent(seq, kind, f"d{i}", parse_scope(scope), T0 + dt))
            if kind is EventKind.ADD:
                model[f"d{i}"] = (scope, T0 + dt)
            else:
                model.pop(f"d{i}", None)
        state.journal(seq, applied)
        if compact:
            state.save_snapshot(seq, [(i, parse_scope(s), e) for i, (s, e) in model.items()])
            assert state.journaled() == 0
        state.close()
        state = AgentState(str(state_dir))
        got_seq, claims = state.view()
        assert got_seq == seq
        assert {i: (s.text(), e) for i, s, e in claims} == model
    state.close()


def test_an_older_database_view_becomes_a_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE view_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    db.execute("CREATE TABLE view_decisions (id TEXT PRIMARY KEY, data BLOB NOT NULL)")
    now = datetime.fromtimestamp(T0, UTC)
    d = Decision(
        "x1",
        parse_scope("203.0.113.8"),
        Action.BAN,
        Origin.ALERT,
        "r",
        now,
        now + timedelta(hours=1),
    )
    db.execute(
        "INSERT INTO view_decisions VALUES (?, ?)", ("x1", msgspec.json.encode(decision_to_wire(d)))
    )
    db.execute("INSERT INTO view_meta VALUES ('seq', 41)")
    db.close()

    state = AgentState(str(tmp_path))
    assert state.view() == (41, [("x1", parse_scope("203.0.113.8"), T0 + 3600)])
    state.close()
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "view_decisions" not in tables


def test_a_batch_kept_as_received_never_replays_what_came_before(tmp_path: Path) -> None:
    """A raw batch may repeat events already applied (a backlog overlapping live events):
    loading skips them, so a revoked decision is not added back."""
    state = AgentState(str(tmp_path))
    scope = parse_scope("203.0.113.4")
    add = LogEvent(1, EventKind.ADD, "d1", scope, T0 + 60)
    revoke = LogEvent(2, EventKind.REVOKE, "d1", scope, T0 + 60)
    state.journal(2, [add, revoke])
    raw = (
        b'{"events":[[1,"add","d1","203.0.113.4",1800000060.0],'
        b'[3,"add","d2","203.0.113.5",1800000060.0]]}'
    )
    state.journal(3, [LogEvent(3, EventKind.ADD, "d2", parse_scope("203.0.113.5"), T0 + 60)], raw)
    state.close()
    assert AgentState(str(tmp_path)).view() == (3, [("d2", parse_scope("203.0.113.5"), T0 + 60)])
