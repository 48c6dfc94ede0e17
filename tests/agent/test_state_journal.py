"""The agent's buckets and pending sightings are a snapshot plus a journal of changed rows:
whatever the sequence of batches (and compactions, and reopenings), what is loaded is what
was committed, and the journal never grows past its bound."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shieldwall.agent import state as state_module
from shieldwall.agent.state import AgentState, SightingRow

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEYS = [("sshd", f"203.0.113.{i}") for i in range(6)]

change = st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), st.integers(0, 99)))
batches = st.lists(st.lists(change, max_size=8), max_size=25)


def _commit(state: AgentState, rows: list[list[Any]]) -> None:
    state.commit_batch(
        path="auth.log",
        position={"offset": 0},
        buckets=rows,
        counters={},
        local_bans={},
        report_id=None,
        alerts=[],
        now=NOW,
    )


def _journal_entries(path: Path) -> int:
    db = sqlite3.connect(path / "agent.db")
    try:
        return int(db.execute("SELECT COALESCE(SUM(entries), 0) FROM journal").fetchone()[0])
    finally:
        db.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=batches)
def test_loaded_buckets_are_what_was_committed(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, steps: list[Any]
) -> None:
    monkeypatch.setattr(state_module, "COMPACT_MIN", 5)
    path = tmp_path_factory.mktemp("state")
    model: dict[tuple[str, str], Any] = {}
    state = AgentState(str(path))
    for i, batch in enumerate(steps):
        rows = []
        for (rule, source), value in batch:
            data = None if value is None else {"timestamps": [float(value)], "evidence": ["x"]}
            rows.append([rule, source, data])
            if data is None:
                model.pop((rule, source), None)
            else:
                model[(rule, source)] = data
        _commit(state, rows)
        if i % 7 == 6:  # the agent restarts now and then
            state.close()
            state = AgentState(str(path))
        # folded once it holds more than max(COMPACT_MIN, 4 × snapshot) entries
        assert _journal_entries(path) <= max(5, 4 * len(KEYS)) + 8
    assert {(r, s): d for r, s, d in state.buckets()} == model
    state.close()
    again = AgentState(str(path))
    assert {(r, s): d for r, s, d in again.buckets()} == model
    again.close()


def test_a_rolled_back_batch_is_not_counted_toward_compaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fails leaves neither its rows nor its count behind."""
    monkeypatch.setattr(state_module, "COMPACT_MIN", 3)
    state = AgentState(str(tmp_path))
    _commit(state, [["sshd", "203.0.113.1", {"timestamps": [1.0], "evidence": ["a"]}]])
    bad = SightingRow("203.0.113.2", "sshd", "failure", 1, 1.0, 1.0)
    with pytest.raises(sqlite3.ProgrammingError):
        state.commit_batch(
            path="auth.log",
            position={"offset": 1},
            buckets=[["sshd", "203.0.113.3", {"timestamps": [2.0], "evidence": ["b"]}]],
            counters={"hits": object()},  # type: ignore[dict-item]  # not storable: fails
            local_bans={},
            report_id=None,
            alerts=[],
            now=NOW,
            sightings=[bad],
        )
    assert state.pending_sightings() == 0
    assert [s for _, s, _ in state.buckets()] == ["203.0.113.1"]
    assert state._sizes["buckets"] == [0, 1]  # what the database holds
    state.close()
