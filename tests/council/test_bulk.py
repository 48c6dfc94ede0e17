"""Batches cost one commit and give what one-by-one gives: bulk bans and unbans, group commit
of reports (property-tested against applying the same things one at a time)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shieldwall.clock import ManualClock
from shieldwall.council.fanout import Batch, InProcessFanout
from shieldwall.council.service import CouncilService
from shieldwall.council.store import MemoryStore, SqliteStore, Store
from shieldwall.model import parse_scope
from shieldwall.treaty import BanItem, TreatyTerms
from shieldwall.wire import signing
from shieldwall.wire.messages import Report, WireAlert, encode

SCOPES = [
    "203.0.113.1",
    "203.0.113.2",
    "203.0.113.0/24",
    "198.51.100.9",  # allowlisted below
    "10.0.0.1",  # private
    "2001:db8::5",
]
TERMS = TreatyTerms.from_mapping({"allowlist": ["198.51.100.0/24"]})


def service(clock: ManualClock, store: Store | None = None) -> CouncilService:
    return CouncilService(store or MemoryStore(), TERMS, clock, group_window=0)


async def history(svc: CouncilService) -> list[tuple[str, str, float]]:
    """The log as kind, scope, expiry (ids differ between councils)."""
    events = await svc.events_since(0, 100_000)
    return [(e.kind.value, e.decision.scope.text(), e.decision.expires.timestamp()) for e in events]


async def active(svc: CouncilService) -> list[tuple[str, str, float]]:
    _, decisions = await svc.snapshot()
    return sorted((d.scope.text(), d.origin.value, d.expires.timestamp()) for d in decisions)


async def test_a_chunk_is_one_commit_and_one_stream_message(clock: ManualClock) -> None:
    fanout = InProcessFanout()
    svc = CouncilService(MemoryStore(), TERMS, clock, fanout=fanout, group_window=0)
    await svc.start()
    items = [BanItem(parse_scope(f"203.0.{i // 250}.{i % 250 + 1}")) for i in range(1000)]
    items.append(BanItem(parse_scope("10.1.2.3")))  # protected: refused
    items.append(BanItem(parse_scope("203.0.0.1"), duration=60))  # again, shorter: unchanged
    async with fanout.subscribe("m") as sub:
        out = await svc.ban_many(items, duration=3600, reason="list", source="drop.txt")
        got = await asyncio.wait_for(sub.next(), 5)
    assert (out.added, out.extended, out.unchanged) == (1000, 0, 1)
    assert [(i, r.reason) for i, r in out.refused] == [(1000, "protected:private")]
    assert out.seq == 1000
    assert got is not None
    assert [len(b) for b in got if isinstance(b, Batch)] == [1000]  # one message
    (audit,) = [a for a in await svc.audit() if a["action"] == "import"]
    assert audit["detail"] == "1000 added, 0 extended, 1 unchanged, 1 refused (drop.txt)"
    counters = await svc.stats()
    assert counters["decisions.operator"] == 1000
    assert counters["refusals.protected"] == 1


async def test_importing_again_extends_and_never_duplicates(clock: ManualClock) -> None:
    svc = service(clock)
    await svc.start()
    items = [BanItem(parse_scope("203.0.113.5")), BanItem(parse_scope("203.0.113.6"))]
    first = await svc.ban_many(items, duration=3600)
    clock.advance(600)
    again = await svc.ban_many(items, duration=3600)  # later expiry: extended, same ids
    shorter = await svc.ban_many(items, duration=60)
    assert (first.added, again.extended, shorter.unchanged) == (2, 2, 2)
    _, decisions = await svc.snapshot()
    assert len(decisions) == 2
    assert all(d.expires == clock.now() + timedelta(hours=1) for d in decisions)
    explained = await svc.explain(decisions[0].id)
    assert explained is not None
    assert explained.evidence is not None  # the chain of a live import decision: the ledger's
    assert explained.evidence["clauses"] == ["operator"]
    # a single ban on the same scope extends it too
    clock.advance(60)
    ban = await svc.ban(parse_scope("203.0.113.5"), 7200, "longer")
    assert ban.outcome == "extended"
    assert ban.decision is not None
    assert ban.decision.id in {d.id for d in decisions}
    assert (await svc.ban(parse_scope("203.0.113.5"), 60, "shorter")).outcome == "unchanged"


async def test_a_bulk_unban_is_one_commit(clock: ManualClock) -> None:
    svc = service(clock)
    await svc.start()
    await svc.ban_many([BanItem(parse_scope(s)) for s in SCOPES[:3]], duration=3600)
    out = await svc.unban_many([parse_scope(s) for s in (*SCOPES[:3], "192.0.2.77")], "f.txt")
    assert (out.revoked, out.missing) == (3, 1)
    assert await active(svc) == []
    kinds = [k for k, _, _ in await history(svc)]
    assert kinds == ["add"] * 3 + ["revoke"] * 3


ban = st.tuples(
    st.just("ban"), st.sampled_from(SCOPES), st.sampled_from([None, 60.0, 3600.0, 86400.0])
)
unban = st.tuples(st.just("unban"), st.sampled_from(SCOPES), st.none())


@given(st.lists(st.lists(st.one_of(ban, unban), min_size=1, max_size=8), max_size=6))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_bulk_bans_and_unbans_give_what_one_by_one_gives(
    clock: ManualClock, chunks: list[list[tuple[str, str, float | None]]]
) -> None:
    bulk, single = service(ManualClock(clock.now())), service(ManualClock(clock.now()))
    await bulk.start()
    await single.start()
    refusals_bulk: list[str] = []
    refusals_single: list[str] = []
    for chunk in chunks:
        # a chunk of one kind at a time, as the CLI sends them
        for kind in ("ban", "unban"):
            items = [(s, d) for k, s, d in chunk if k == kind]
            if not items:
                continue
            if kind == "ban":
                out = await bulk.ban_many([BanItem(parse_scope(s), d) for s, d in items])
                refusals_bulk += [r.reason for _, r in out.refused]
                for s, d in items:
                    one = await single.ban(parse_scope(s), d, "")
                    if one.refusal is not None:
                        refusals_single.append(one.refusal.reason)
            else:
                await bulk.unban_many([parse_scope(s) for s, _ in items])
                for s, _ in items:
                    await single.unban(parse_scope(s))
        assert await active(bulk) == await active(single)
    assert await history(bulk) == await history(single)
    assert refusals_bulk == refusals_single


def _report(key: str, member: str, clock: ManualClock, source: str) -> tuple[bytes, str]:
    now = clock.now()
    alert = WireAlert(rule="sshd", source=source, first=now, last=now, count=5)
    body = encode(Report(id=uuid.uuid4().hex, member=member, sent_at=now, alerts=[alert]))
    return body, signing.sign(signing.signing_key(key), body)


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_reports_arriving_together_are_committed_together(
    clock: ManualClock, store: str
) -> None:
    """Fifty members' reports in flight at once: one transaction, one stream message, the
    same decisions and answers as sending them one after another."""
    fanout = InProcessFanout()
    svc = CouncilService(
        MemoryStore() if store == "memory" else SqliteStore(":memory:"),
        TERMS,
        clock,
        fanout=fanout,
        group_window=0.01,
    )
    await svc.start()
    keys = {}
    for i in range(50):
        private, public = signing.generate()
        keys[f"m{i}"] = private
        await svc.enroll(f"m{i}", public, ())
    # one source per /24 (several in one range would bring its range sanction)
    reports = [_report(keys[f"m{i}"], f"m{i}", clock, f"198.18.{i}.1") for i in range(50)]
    # a replay inside the group, and a report signed by the wrong key
    reports.append(reports[0])
    bad_body, _ = _report(keys["m1"], "m1", clock, "203.0.113.200")
    reports.append((bad_body, signing.sign(signing.signing_key(keys["m2"]), bad_body)))
    # a member nobody enrolled, and a report without a signature
    stranger, _ = signing.generate()
    reports.append(_report(stranger, "stranger", clock, "203.0.113.201"))
    reports.append((_report(keys["m3"], "m3", clock, "203.0.113.202")[0], ""))
    async with fanout.subscribe("watcher") as sub:
        results = await asyncio.gather(
            *(svc.receive_report(body, sig) for body, sig in reports), return_exceptions=True
        )
        got = await asyncio.wait_for(sub.next(), 5)
    decided = [r for r in results[:50] if not isinstance(r, BaseException)]
    assert [len(r.decided) for r in decided] == [1] * 50
    assert sorted(r.decided[0].scope.text() for r in decided) == sorted(
        f"198.18.{i}.1" for i in range(50)
    )
    # each refused for its own reason: the group's signatures are checked together, in a
    # worker thread (more than THREADED_CHECKS of them)
    assert [getattr(r, "reason", None) for r in results[50:]] == [
        "replayed",
        "bad-signature",
        "unknown-member",
        "unsigned",
    ]
    assert got is not None
    batches = [b for b in got if isinstance(b, Batch)]
    assert [len(b) for b in batches] == [50]  # one commit, one message
    counters = await svc.stats()
    assert counters["reports.accepted"] == 50
    assert counters["reports.refused.replayed"] == 1
    assert counters["reports.refused.bad-signature"] == 1
    assert counters["reports.refused.unknown-member"] == 1
    assert counters["reports.refused.unsigned"] == 1
