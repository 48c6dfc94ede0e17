"""An agent.db written by shieldwall 0.1 (a row per bucket, per pending sighting and per held
decision) is turned into snapshots when the new agent opens it: nothing it held is lost."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from shieldwall.agent.state import AgentState
from shieldwall.model import Action, Decision, Origin, parse_scope
from shieldwall.wire.messages import decision_to_wire

# the tables shieldwall 0.1 created (and still creates) in agent.db, as it created them
V01_SCHEMA = """
CREATE TABLE positions (path TEXT PRIMARY KEY, position TEXT NOT NULL);
CREATE TABLE buckets (
    rule TEXT NOT NULL, source TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (rule, source)
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id TEXT NOT NULL UNIQUE,
    alerts BLOB NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE sightings_pending (
    source TEXT NOT NULL,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    first REAL NOT NULL,
    last REAL NOT NULL,
    added REAL NOT NULL,
    PRIMARY KEY (source, rule, kind)
);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE local_bans (scope TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE view_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE view_decisions (id TEXT PRIMARY KEY, data BLOB NOT NULL);
"""

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _old_db(state_dir: Path) -> Decision:
    state_dir.mkdir()
    db = sqlite3.connect(state_dir / "agent.db", isolation_level=None)
    db.executescript(V01_SCHEMA)
    at = NOW.timestamp()
    db.execute(
        "INSERT INTO buckets VALUES ('sshd', '203.0.113.5', ?)",
        (f'{{"timestamps": [{at - 2}, {at - 1}], "evidence": ["l1", "l2"]}}',),
    )
    db.execute(
        "INSERT INTO sightings_pending VALUES ('203.0.113.6', 'sshd', 'failure', 3, ?, ?, ?)",
        (at - 30, at - 10, at - 10),
    )
    decision = Decision(
        id=uuid.uuid4().hex,
        scope=parse_scope("198.51.100.0/24"),
        action=Action.BAN,
        origin=Origin.OPERATOR,
        reason="drop list",
        created=NOW,
        expires=NOW + timedelta(hours=4),
    )
    db.execute("INSERT INTO view_meta VALUES ('seq', 41)")
    db.execute(
        "INSERT INTO view_decisions VALUES (?, ?)",
        (decision.id, msgspec.json.encode(decision_to_wire(decision))),
    )
    db.execute("INSERT INTO local_bans VALUES ('203.0.113.9', ?)", (at + 600,))
    db.close()
    return decision


def test_a_v01_agent_db_keeps_its_buckets_sightings_and_view(tmp_path: Path) -> None:
    decision = _old_db(tmp_path / "state")
    at = NOW.timestamp()

    for _ in range(2):  # opening a migrated database again changes nothing
        state = AgentState(str(tmp_path / "state"))
        assert state.buckets() == [
            ("sshd", "203.0.113.5", {"timestamps": [at - 2, at - 1], "evidence": ["l1", "l2"]})
        ]
        assert state.pending_sightings() == 1
        assert state.view() == (41, [(decision.id, decision.scope, decision.expires.timestamp())])
        assert state.local_bans(NOW) == {parse_scope("203.0.113.9"): NOW + timedelta(minutes=10)}
        state.close()

    tables = {
        r[0]
        for r in sqlite3.connect(tmp_path / "state" / "agent.db").execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    }
    assert not tables & {"buckets", "sightings_pending", "view_decisions"}

    state = AgentState(str(tmp_path / "state"))
    assert state.flush_sightings("r1", NOW, delay=0)
    (item,) = state.outbox()
    (sighting,) = item.sightings
    assert (sighting.source, sighting.rule, sighting.kind, sighting.count) == (
        "203.0.113.6",
        "sshd",
        "failure",
        3,
    )
    state.close()
