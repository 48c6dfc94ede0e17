"""The SQLite store's own promises (migrations in place from every earlier version, the
sequence surviving a reopen), and the council's state surviving a restart. The contract every
store keeps is ``tests/contract/test_store.py``."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from shieldwall.clock import ManualClock
from shieldwall.council.service import CouncilService
from shieldwall.council.store.base import FlagRecord, MemberRecord
from shieldwall.council.store.sqlite import _MIGRATIONS, _SCHEMA, SCHEMA_VERSION, SqliteStore
from shieldwall.errors import StoreError
from shieldwall.model import Action, Decision, EventKind, Origin, parse_scope
from shieldwall.treaty import TreatyTerms
from shieldwall.wire import signing
from shieldwall.wire.messages import Report, WireSighting, encode


def _decision(clock: ManualClock, scope: str = "203.0.113.5") -> Decision:
    now = clock.now()
    return Decision(
        id=uuid.uuid4().hex,
        scope=parse_scope(scope),
        action=Action.BAN,
        origin=Origin.ALERT,
        reason="sshd: 5 failures at web1",
        created=now,
        expires=now + timedelta(hours=4),
        member="web1",
        rule="sshd",
    )


async def test_a_version_1_database_is_migrated_in_place(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "council.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(_SCHEMA)  # the version-1 tables, as shieldwall 0.1 made them
    db.execute("INSERT INTO schema_version VALUES (1)")
    d = _decision(clock)
    at = clock.now().timestamp()
    db.execute(
        "INSERT INTO decisions VALUES (?, '203.0.113.5', 'ban', 'alert', 'x', ?, ?, "
        "'web1', 'sshd', 'active')",
        (d.id, at, at + 3600),
    )
    db.execute("INSERT INTO events (kind, decision_id, at) VALUES ('add', ?, ?)", (d.id, at))
    db.close()

    store = SqliteStore(str(path))
    assert store.schema_version == SCHEMA_VERSION == 4
    seq, active = await store.log.active(clock.now())
    assert (seq, [x.id for x in active]) == (1, [d.id])
    page, cursor = await store.log.active_page(clock.now(), None, 10)
    assert ([x.id for x in page], cursor) == ([d.id], None)
    assert await store.log.get_evidence(d.id) is None  # decided before evidence was kept
    assert await store.treaty.load() is None
    await store.records.add_flags([FlagRecord("web1", "blast-radius", clock.now(), "too many")])
    assert [f.member for f in await store.records.flags()] == ["web1"]
    # the log goes on from the version-1 sequence
    (event,) = await store.log.append(
        [(EventKind.ADD, _decision(clock, "203.0.113.6"))], clock.now()
    )
    assert event.seq == 2
    await store.close()
    again = SqliteStore(str(path))  # opening a current database changes nothing
    assert again.schema_version == 4
    assert [f.clause for f in await again.records.flags()] == ["blast-radius"]
    assert await again.log.last_seq() == 2
    await again.close()


@pytest.mark.parametrize("version", [2, 3])
async def test_a_wide_row_database_is_rewritten_lean(
    tmp_path: Path, clock: ManualClock, version: int
) -> None:
    """Versions 2 and 3 kept every column in the decision's row; 4 moves what decisions
    share into ``infos``: the decisions, their state, evidence and the log survive it."""
    path = tmp_path / "council.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(_SCHEMA)
    for v in range(2, version + 1):
        db.executescript(_MIGRATIONS[v])
    db.execute("INSERT INTO schema_version VALUES (?)", (version,))
    now = clock.now().timestamp()
    for i, state in enumerate(("active", "revoked", "expired")):
        db.execute(
            "INSERT INTO decisions VALUES (?, ?, 'ban', 'operator', ?, ?, ?, NULL, NULL, ?)",
            (f"d{i}", f"203.0.113.{i}", f"why {i}", now, now + 3600, state),
        )
        db.execute(
            "INSERT INTO events (kind, decision_id, at) VALUES ('add', ?, ?)", (f"d{i}", now)
        )
    db.execute("INSERT INTO evidence (decision_id, data) VALUES ('d0', '{\"summary\": \"s\"}')")
    db.close()

    store = SqliteStore(str(path))
    assert store.schema_version == SCHEMA_VERSION == 4
    seq, active = await store.log.active(clock.now())
    assert (seq, [(d.id, d.reason, d.scope.text()) for d in active]) == (
        3,
        [("d0", "why 0", "203.0.113.0")],
    )
    assert [await store.log.state(f"d{i}") for i in range(3)] == ["active", "revoked", "expired"]
    assert [e.decision.id for e in await store.log.since(0)] == ["d0", "d1", "d2"]
    assert (await store.log.evidence(["d0"])) == {"d0": {"summary": "s"}}
    (event,) = await store.log.append(
        [(EventKind.ADD, _decision(clock, "203.0.113.9"))], clock.now()
    )
    assert event.seq == 4
    await store.close()


async def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "council.db"
    SqliteStore(str(path))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE schema_version SET version = 99")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(str(path))


async def test_sequence_numbers_are_never_reused_after_a_reopen(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = str(tmp_path / "council.db")
    store = SqliteStore(path)
    await store.log.append([(EventKind.ADD, _decision(clock))], clock.now())
    with pytest.raises(RuntimeError):  # noqa: PT012 - a transaction that fails
        async with store.transaction():
            await store.log.append([(EventKind.ADD, _decision(clock, "203.0.113.9"))], clock.now())
            raise RuntimeError
    await store.close()
    store = SqliteStore(path)
    (event,) = await store.log.append(
        [(EventKind.ADD, _decision(clock, "203.0.113.8"))], clock.now()
    )
    assert event.seq == 2
    await store.close()


def _report(member: str, key: str, clock: ManualClock, source: str, count: int) -> bytes:
    now = clock.now()
    s = WireSighting(source=source, rule="sshd", kind="failure", count=count, first=now, last=now)
    return encode(Report(id=uuid.uuid4().hex, member=member, sent_at=now, sightings=[s]))


async def test_the_treatys_state_survives_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    """Sightings from 4 members before the restart and 1 after add up to a decision: the
    state was saved at shutdown and restored at start."""
    path = str(tmp_path / "council.db")
    terms = TreatyTerms()
    keys: dict[str, str] = {}
    service = CouncilService(SqliteStore(path), terms, clock)
    await service.start()
    for i in range(5):
        private, public = signing.generate()
        keys[f"web{i}"] = private
        await service.enroll(f"web{i}", public, ())
    for i in range(4):
        body = _report(f"web{i}", keys[f"web{i}"], clock, "203.0.113.40", 5)
        sig = signing.sign(signing.signing_key(keys[f"web{i}"]), body)
        assert (await service.receive_report(body, sig)).decided == []
    await service.stop()
    await service.store.close()

    restarted = CouncilService(SqliteStore(path), terms, clock)
    await restarted.start()
    assert restarted.treaty.state.sizes()["treaty.sources"] == 1
    body = _report("web4", keys["web4"], clock, "203.0.113.40", 5)
    out = await restarted.receive_report(
        body, signing.sign(signing.signing_key(keys["web4"]), body)
    )
    assert [str(d.scope) for d in out.decided] == ["203.0.113.40/32"]
    explained = await restarted.explain(out.decided[0].id)
    assert explained is not None
    assert explained.evidence is not None
    assert explained.evidence["members"] == [f"web{i}" for i in range(5)]
    await restarted.stop()
    await restarted.store.close()


async def test_start_adopts_the_stores_decisions_and_their_evidence(
    tmp_path: Path, clock: ManualClock
) -> None:
    """With no saved state (a crash before the first save), ``sync`` rebuilds the active
    decisions from the store; revoking the member still retracts what rested on it."""
    path = str(tmp_path / "council.db")
    store = SqliteStore(path)
    await store.members.add(MemberRecord("web1", signing.generate()[1], (), "member", clock.now()))
    d = _decision(clock)
    chain = {"clauses": ["article5.alert"], "members": ["web1"], "exhibits": [], "summary": ""}
    await store.log.append([(EventKind.ADD, d)], clock.now(), [chain])
    service = CouncilService(store, TreatyTerms(), clock)
    await service.start()
    assert [x.id for x in service.treaty.active(clock.now())] == [d.id]
    out = await service.revoke_member("web1")
    assert out is not None
    assert [x.id for x in out.revoked] == [d.id]
    assert (await service.snapshot())[1] == []
    await store.close()
