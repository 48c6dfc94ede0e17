"""The Store contract, run over every implementation (``memory://``, ``sqlite://`` in memory
and on disk): the decision log, members, nonces, records, treaty state, counters, and
transactions that span them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shieldwall.council.store import SCHEMES, Store, open_store
from shieldwall.council.store.base import FlagRecord, MemberRecord
from shieldwall.decision_log import replay
from shieldwall.errors import ConfigError, StoreError
from shieldwall.model import (
    Action,
    Decision,
    DecisionEvent,
    EventKind,
    Origin,
    Refusal,
    parse_scope,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
URLS = ["memory://", "sqlite://:memory:", "sqlite-file"]


def _url(kind: str, tmp: Path) -> str:
    return f"sqlite://{tmp / 'council.db'}" if kind == "sqlite-file" else kind


@pytest.fixture(params=URLS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(_url(request.param, tmp_path))
    yield s
    await s.close()


def dec(i: int, minutes: float = 60, scope: str | None = None, at: datetime = NOW) -> Decision:
    return Decision(
        f"d{i:04d}",
        parse_scope(scope or f"203.0.113.{i % 250}"),
        Action.BAN,
        Origin.ALERT,
        f"reason {i}",
        at,
        at + timedelta(minutes=minutes),
        "web1",
        "sshd",
    )


def test_every_scheme_is_covered() -> None:
    assert {u.split("://")[0].removesuffix("-file") for u in URLS} == set(SCHEMES)


def test_an_unknown_scheme_names_the_key_and_the_schemes() -> None:
    with pytest.raises(ConfigError, match=r"council.toml: store: .*postgres.*sqlite://"):
        open_store("postgres://x", "council.toml")


# -- the decision log -------------------------------------------------------------------


async def test_append_numbers_events_without_gaps_and_since_resumes_exactly(store: Store) -> None:
    log = store.log
    assert await log.last_seq() == 0
    first = await log.append([(EventKind.ADD, dec(1)), (EventKind.ADD, dec(2))], NOW)
    second = await log.append([(EventKind.REVOKE, dec(1))], NOW)
    assert [e.seq for e in first + second] == [1, 2, 3]
    assert [(e.kind, e.decision.id) for e in second] == [(EventKind.REVOKE, "d0001")]
    assert await log.last_seq() == 3
    assert [e.seq for e in await log.since(1)] == [2, 3]
    assert [e.seq for e in await log.since(0, limit=2)] == [1, 2]
    assert await log.since(3) == []
    got = (await log.since(0))[0]
    assert (got.decision, got.at) == (dec(1), NOW)
    assert await log.append([], NOW) == []


async def test_state_get_and_expiry(store: Store) -> None:
    log = store.log
    await log.append([(EventKind.ADD, dec(1, 10)), (EventKind.ADD, dec(2, 60))], NOW)
    await log.append([(EventKind.EXPIRE, dec(1, 10))], NOW)
    assert await log.state("d0001") == "expired"
    assert await log.state("d0002") == "active"
    assert await log.state("nope") is None
    assert await log.get("d0002") == dec(2, 60)
    assert await log.get("nope") is None
    assert await log.due_for_expiry(NOW + timedelta(minutes=30)) == []
    assert [d.id for d in await log.due_for_expiry(NOW + timedelta(minutes=61))] == ["d0002"]


async def test_an_add_for_an_active_id_extends_it(store: Store) -> None:
    log = store.log
    await log.append([(EventKind.ADD, dec(1, 10))], NOW)
    longer = dec(1, 10)._replace(expires=NOW + timedelta(hours=5), reason="x")
    await log.append([(EventKind.ADD, longer)], NOW)
    assert await log.get("d0001") == longer
    seq, active = await log.active(NOW + timedelta(hours=1))
    assert (seq, active) == (2, [longer])


async def test_active_pages_cover_the_active_set_once(store: Store) -> None:
    log = store.log
    await log.append([(EventKind.ADD, dec(i, 60 if i % 3 else -1)) for i in range(1, 40)], NOW)
    await log.append([(EventKind.REVOKE, dec(5))], NOW)
    _, active = await log.active(NOW)
    pages: list[Decision] = []
    cursor: str | None = None
    while True:
        page, cursor = await log.active_page(NOW, cursor, 7)
        assert len(page) == 7 or cursor is None
        pages += page
        if cursor is None:
            break
    assert sorted(d.id for d in pages) == sorted(d.id for d in active)
    assert len(pages) == len(active)
    assert "d0005" not in {d.id for d in pages}


_change = st.tuples(
    st.sampled_from([EventKind.ADD, EventKind.ADD, EventKind.REVOKE, EventKind.EXPIRE]),
    st.integers(0, 12),
    st.integers(-30, 120),
)


@pytest.mark.parametrize("kind", URLS)
@given(
    batches=st.lists(st.lists(_change, min_size=1, max_size=6), max_size=10),
    probe=st.integers(-10, 150),
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_the_active_set_is_always_what_replaying_the_log_gives(
    kind: str,
    tmp_path: Path,
    batches: list[list[tuple[EventKind, int, int]]],
    probe: int,
) -> None:
    path = tmp_path / f"p{len(list(tmp_path.iterdir()))}"
    path.mkdir()
    s = open_store(_url(kind, path))
    live: dict[int, Decision] = {}
    try:
        for batch in batches:
            changes = []
            for k, i, minutes in batch:
                if k is EventKind.ADD:
                    d = dec(i, minutes)
                    if i in live:  # an extension keeps the decision's creation
                        d = d._replace(created=live[i].created)
                    live[i] = d
                    changes.append((k, d))
                elif i in live:
                    changes.append((k, live.pop(i)))
            await s.log.append(changes, NOW)
        now = NOW + timedelta(minutes=probe)
        events: list[DecisionEvent] = await s.log.since(0, 10_000)
        seq, active = await s.log.active(now)
        assert seq == len(events)
        assert sorted(d.id for d in active) == sorted(d.id for d in replay(events, now))
    finally:
        await s.close()


async def test_evidence_goes_with_its_event_and_amendments_replace_it(store: Store) -> None:
    log = store.log
    d = dec(1)
    chain = {"clauses": ["article5.alert"], "members": ["web1"], "exhibits": [], "summary": "x"}
    await log.append([(EventKind.ADD, d), (EventKind.ADD, dec(2))], NOW, [chain, None])
    assert await log.evidence([d.id, "d0002", "other"]) == {d.id: chain}
    amended = {**chain, "members": ["web1", "web2"]}
    await log.set_evidence([(d.id, amended)])
    why = {"clauses": ["revocation"], "members": ["web1"], "exhibits": [], "summary": "y"}
    await log.append([(EventKind.REVOKE, d)], NOW, [why])
    record = await log.get_evidence(d.id)
    assert record is not None
    assert (record.evidence, record.revoked) == (amended, why)
    assert await log.get_evidence("d0002") is None
    with pytest.raises(ValueError, match="evidence"):
        await log.append([(EventKind.ADD, dec(3))], NOW, [None, None])


# -- the other aggregates ----------------------------------------------------------------


def member(name: str, key: str) -> MemberRecord:
    return MemberRecord(name, key, (parse_scope("192.0.2.1"),), "member", NOW)


async def test_members(store: Store) -> None:
    await store.members.add(member("web2", "k2"))
    await store.members.add(member("web1", "k1"))
    for dup in (member("web1", "k9"), member("web9", "k1")):
        with pytest.raises(StoreError, match="already enrolled"):
            await store.members.add(dup)
    assert [m.name for m in await store.members.list()] == ["web1", "web2"]
    assert await store.members.get("web1") == member("web1", "k1")
    assert await store.members.get("nope") is None
    assert await store.members.revoke("web1", NOW)
    assert not await store.members.revoke("web1", NOW)
    assert not await store.members.revoke("nope", NOW)
    got = await store.members.get("web1")
    assert got is not None
    assert got.revoked_at == NOW
    # a revoked name enrolled again with a new key; a key moved to another member is refused
    again = member("web1", "k3")
    await store.members.replace(again)
    assert await store.members.get("web1") == again
    with pytest.raises(StoreError, match="another member"):
        await store.members.replace(member("web1", "k2"))
    with pytest.raises(StoreError, match="no member"):
        await store.members.replace(member("nope", "k4"))
    assert await store.members.get("web1") == again


async def test_nonces_are_remembered_once_and_forgotten(store: Store) -> None:
    assert not await store.nonces.seen("web1", "n1")
    assert await store.nonces.remember("web1", "n1", NOW)
    assert await store.nonces.seen("web1", "n1")
    assert not await store.nonces.seen("web2", "n1")
    assert not await store.nonces.remember("web1", "n1", NOW)
    assert await store.nonces.remember("web2", "n1", NOW)
    await store.nonces.forget(NOW + timedelta(seconds=1))
    assert await store.nonces.remember("web1", "n1", NOW)


async def test_records_are_read_newest_first(store: Store) -> None:
    r = store.records
    await r.add_refusals(
        [
            Refusal(parse_scope("10.0.0.1"), "protected:private", None, NOW + timedelta(seconds=i))
            for i in range(3)
        ]
    )
    assert [x.at.second for x in await r.refusals(2)] == [2, 1]
    await r.add_flags(
        [FlagRecord("web1", "blast-radius", NOW, "too many"), FlagRecord("web2", "x", NOW)]
    )
    assert [f.member for f in await r.flags()] == ["web2", "web1"]
    await r.add_audit(
        [{"at": 1.0, "actor": "operator", "action": "ban", "outcome": "done", "n": [1]}]
    )
    await r.add_audit([{"at": 2.0, "actor": "operator", "action": "unban", "outcome": "done"}])
    assert [a["action"] for a in await r.audit()] == ["unban", "ban"]
    assert (await r.audit(1))[0]["at"] == 2.0


async def test_treaty_state_and_counters(store: Store) -> None:
    assert await store.treaty.load() is None
    await store.treaty.save({"version": 2, "x": [1, 2]}, NOW)
    await store.treaty.save({"version": 2, "x": [3]}, NOW)
    assert await store.treaty.load() == {"version": 2, "x": [3]}
    await store.counters.bump({"a": 1, "b": 0})
    await store.counters.bump({"a": 2, "c": 5})
    assert await store.counters.all() == {"a": 3, "c": 5}


# -- transactions ------------------------------------------------------------------------


async def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    await store.log.append([(EventKind.ADD, dec(1))], NOW)
    await store.counters.bump({"a": 1})
    with pytest.raises(RuntimeError, match="boom"):  # noqa: PT012 - the whole transaction
        async with store.transaction():
            await store.log.append([(EventKind.ADD, dec(2)), (EventKind.REVOKE, dec(1))], NOW)
            await store.log.set_evidence([("d0001", {"summary": "changed"})])
            await store.members.add(member("web1", "k1"))
            await store.nonces.remember("web1", "n1", NOW)
            await store.records.add_audit(
                [{"at": 1.0, "actor": "a", "action": "b", "outcome": "c"}]
            )
            await store.treaty.save({"version": 2}, NOW)
            await store.counters.bump({"a": 5, "b": 1})
            raise RuntimeError("boom")
    assert await store.log.last_seq() == 1
    assert await store.log.state("d0001") == "active"
    assert await store.log.get("d0002") is None
    assert await store.log.evidence(["d0001"]) == {}
    assert await store.members.list() == []
    assert await store.nonces.remember("web1", "n1", NOW)
    assert await store.records.audit() == []
    assert await store.treaty.load() is None
    assert await store.counters.all() == {"a": 1}
    # the sequence goes on without a gap
    assert [e.seq for e in await store.log.append([(EventKind.ADD, dec(3))], NOW)] == [2]


async def test_a_transaction_commits_everything_together_and_nested_ones_join(
    store: Store,
) -> None:
    async with store.transaction():
        await store.log.append([(EventKind.ADD, dec(1))], NOW)
        async with store.transaction():
            await store.counters.bump({"a": 1})
        await store.members.add(member("web1", "k1"))
    assert await store.log.last_seq() == 1
    assert await store.counters.all() == {"a": 1}
    assert [m.name for m in await store.members.list()] == ["web1"]
