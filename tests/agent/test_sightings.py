"""Sightings at the agent: aggregation per (source, rule), the durable pending table and its
reports (bounded, coalesced), the recent-sightings index that answers consultations, and
success rules (never bucketed, never alerted)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shieldwall.agent import state as agent_state
from shieldwall.agent.recent import RecentIndex
from shieldwall.agent.run import sightings_of
from shieldwall.agent.state import AgentState, SightingRow
from shieldwall.detect import Detector, builtin_rule
from shieldwall.loopback.alliance import failed_password, syslog_line
from shieldwall.model import Hit, parse_address
from shieldwall.treaty.protect import Protected
from shieldwall.wire.messages import WireAlert, WireAnswer

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def hit(source: str, seconds: float, rule: str = "sshd") -> Hit:
    return Hit(rule, parse_address(source), NOW + timedelta(seconds=seconds), 0, "line")


def test_hits_are_counted_per_source_and_rule_and_protected_sources_left_out() -> None:
    recent = RecentIndex()
    hits = [
        hit("203.0.113.1", 0),
        hit("203.0.113.1", 30),
        hit("203.0.113.1", 10, rule="ssh-bf"),
        hit("10.0.0.1", 5),  # private: protected
        hit("203.0.113.2", 20),
    ]
    out = sightings_of(hits, "failure", Protected.build(), recent)
    got = {(s.source, s.rule): (s.hits, s.first, s.last, s.kind) for s in out}
    now = NOW.timestamp()
    t10, t20, t30 = (now + n for n in (10, 20, 30))
    assert got == {
        ("203.0.113.1", "sshd"): (2, now, t30, "failure"),
        ("203.0.113.1", "ssh-bf"): (1, t10, t10, "failure"),
        ("203.0.113.2", "sshd"): (1, t20, t20, "failure"),
    }
    assert recent.answer(parse_address("203.0.113.1"), 3600, NOW) == (3, 0)
    assert recent.answer(parse_address("10.0.0.1"), 3600, NOW) == (0, 0)
    login = hit("203.0.113.1", 40, "sshd-success")
    logins = sightings_of([login], "success", Protected.build(), recent)
    assert [(s.kind, s.hits) for s in logins] == [("success", 1)]
    assert recent.answer(parse_address("203.0.113.1"), 3600, NOW) == (3, 1)


def test_the_recent_index_is_bounded_and_honours_the_lookback() -> None:
    recent = RecentIndex(max_sources=2, window=3600)
    a, b, c = (parse_address(f"203.0.113.{i}") for i in (1, 2, 3))
    recent.add(a, NOW, failures=2)
    recent.add(b, NOW, failures=1)
    recent.add(a, NOW + timedelta(seconds=1), failures=1)  # a is now the most recent
    recent.add(c, NOW, successes=1)  # evicts b, the least recently seen
    assert len(recent) == 2
    assert recent.evicted == 1
    assert recent.answer(b, 3600, NOW) == (0, 0)
    assert recent.answer(a, 3600, NOW + timedelta(minutes=30)) == (3, 0)
    assert recent.answer(a, 600, NOW + timedelta(minutes=30)) == (0, 0)  # outside lookback
    recent.add(a, NOW + timedelta(hours=3), failures=1)  # a new episode: old counts go
    assert recent.answer(a, 3600, NOW + timedelta(hours=3)) == (1, 0)


def _sighting(source: str, count: int, at: datetime, kind: str = "failure") -> SightingRow:
    return SightingRow(source, "sshd", kind, count, at.timestamp(), at.timestamp())


def _commit(
    st: AgentState, sightings: list[SightingRow], alerts: list[WireAlert] | None = None
) -> None:
    st.commit_batch(
        path="log",
        position={"offset": 0},
        buckets=[],
        counters={},
        local_bans={},
        report_id="r-alert" if alerts else None,
        alerts=alerts or [],
        now=NOW,
        sightings=sightings,
    )


def test_batches_are_merged_until_a_report_takes_them(tmp_path: Path) -> None:
    st = AgentState(str(tmp_path))
    _commit(st, [_sighting("203.0.113.1", 2, NOW)])
    _commit(st, [_sighting("203.0.113.1", 1, NOW + timedelta(seconds=5))])
    assert st.outbox_size() == 0
    assert st.pending_sightings() == 1
    # not yet: the oldest pending sighting has waited less than the delay
    assert not st.flush_sightings("r1", NOW + timedelta(seconds=0.5), 1.0)
    # a batch with an alert takes the pending sightings into its report
    alert = WireAlert(rule="sshd", source="203.0.113.9", first=NOW, last=NOW, count=5)
    _commit(st, [_sighting("203.0.113.9", 5, NOW)], [alert])
    (item,) = st.outbox()
    assert [a.source for a in item.alerts] == ["203.0.113.9"]
    assert {(s.source, s.count) for s in item.sightings} == {("203.0.113.1", 3), ("203.0.113.9", 5)}
    merged = next(s for s in item.sightings if s.source == "203.0.113.1")
    assert (merged.first, merged.last) == (NOW, NOW + timedelta(seconds=5))
    assert st.pending_sightings() == 0
    # sightings alone get their own report once they have waited
    _commit(st, [_sighting("203.0.113.2", 1, NOW, "success")])
    assert st.flush_sightings("r2", NOW + timedelta(seconds=2), 1.0)
    items = st.outbox()
    assert [i.report_id for i in items] == ["r-alert", "r2"]
    assert [(s.source, s.kind) for s in items[1].sightings] == [("203.0.113.2", "success")]
    assert items[1].alerts == []
    assert items[1].answers == []
    st.queue_answers("r3", [WireAnswer(concern="c1", failures=2)], NOW)
    assert st.outbox()[-1].answers == [WireAnswer(concern="c1", failures=2)]
    st.close()


def test_pending_sightings_and_sighting_reports_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_state, "MAX_PENDING", 3)
    monkeypatch.setattr(agent_state, "MAX_SIGHTING_REPORTS", 2)
    st = AgentState(str(tmp_path))
    _commit(st, [_sighting(f"203.0.113.{i}", 1, NOW) for i in range(5)])
    assert st.pending_sightings() == 3
    assert st.counters()["sightings.dropped"] == 2
    st.queue_answers("answers", [WireAnswer(concern="c1", failures=1)], NOW)
    for n in range(4):
        _commit(st, [_sighting("203.0.113.1", 1, NOW)])
        assert st.flush_sightings(f"r{n}", NOW + timedelta(seconds=2), 1.0)
    # answers are never dropped; of the reports holding only sightings, the newest two stay
    assert [i.report_id for i in st.outbox()] == ["answers", "r2", "r3"]
    assert st.counters()["sightings.dropped-reports"] == 2
    st.close()


def test_an_older_outbox_gains_the_new_columns(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "agent.db")
    db.execute(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, report_id TEXT NOT NULL "
        "UNIQUE, alerts BLOB NOT NULL, created REAL NOT NULL, attempts INTEGER NOT NULL "
        "DEFAULT 0)"
    )
    db.execute("INSERT INTO outbox (report_id, alerts, created) VALUES ('old', '[]', 0)")
    db.commit()
    db.close()
    st = AgentState(str(tmp_path))
    (item,) = st.outbox()
    assert (item.report_id, item.sightings, item.answers) == ("old", [], [])
    st.close()


def test_a_success_rules_hits_become_success_sightings() -> None:
    rule = builtin_rule("sshd-success")
    assert rule.kind == "success"
    assert builtin_rule("sshd").kind == "failure"
    lines = [
        syslog_line(NOW, "web1", "Accepted password for bob from 203.0.113.5 port 1 ssh2")
        .rstrip("\n")
        .encode()
        for _ in range(20)
    ]
    lines.append(failed_password(NOW, "web1", "203.0.113.5").rstrip("\n").encode())
    found = Detector([rule], max_tracked=1).feed_many(lines, NOW)
    assert len(found.hits) == 20
    out = sightings_of(found.hits, "success", Protected.build(), RecentIndex())
    assert [(s.source, s.kind, s.hits) for s in out] == [("203.0.113.5", "success", 20)]
