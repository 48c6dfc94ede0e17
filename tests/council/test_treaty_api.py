"""The treaty wired into the council, through its real HTTP API: alliance-wide detection from
sightings, consultation, evidence chains, flags and audit, revocation through the stream,
and a poisoning member."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from typing import Any

import httpx
import pytest

from shieldwall.agent.client import StreamBatch, StreamSnapshot
from shieldwall.model import EventKind, LogEvent
from shieldwall.wire import signing
from shieldwall.wire.messages import ConcernRequest, WireAlert, WireConsult, encode
from tests.council.conftest import Council
from tests.council.support import (
    active,
    close_all,
    enroll,
    explain,
    operator,
    stats,
    until,
)

ATTACKER = "203.0.113.40"


async def test_sightings_below_every_local_threshold_cross_the_alliance_threshold(
    council: Council,
) -> None:
    """Default terms: 5 members with at least 1 failure each and 20 in all."""
    members = [await enroll(council, f"web{i}") for i in range(5)]
    for m in members[:4]:
        out = await m.sight(council, ATTACKER, 4)
        assert out["decided"] == []
        assert out["sightings"] == 1
    assert await active(council) == []  # 4 members, 16 failures: not yet
    out = await members[4].sight(council, ATTACKER, 4)
    assert len(out["decided"]) == 1
    (d,) = await active(council)
    assert (d["scope"], d["origin"], d["member"]) == (ATTACKER, "alert", None)
    why = await explain(council, d["id"])
    assert why["state"] == "active"
    assert why["evidence"]["clauses"] == ["alliance.threshold"]
    assert why["evidence"]["members"] == sorted(m.name for m in members)
    assert {x["kind"] for x in why["evidence"]["exhibits"]} == {"sightings"}
    assert sum(x["failures"] for x in why["evidence"]["exhibits"]) == 20
    await close_all(members)


async def test_successful_logins_veto_sums(council: Council) -> None:
    """Friendly fire: one member's successful logins keep sums from deciding the source."""
    members = [await enroll(council, f"web{i}") for i in range(6)]
    await members[5].sight(council, ATTACKER, 1, rule="sshd-success", kind="success")
    for m in members[:5]:
        await m.sight(council, ATTACKER, 4)
    assert await active(council) == []
    async with operator(council) as http:
        refusals = (await http.get("/v1/refusals")).json()
    assert [r["reason"] for r in refusals] == ["friendly-fire"]
    await close_all(members)


@pytest.mark.treaty({"alliance": {"rules": {"sshd": {"members": 50, "per-member": 2}}}})
async def test_low_and_slow_two_attempts_at_each_of_fifty_members_within_an_hour(
    council: Council,
) -> None:
    """The attacker stays under every member's maxretry (5): 2 attempts at each of 50
    members, one member every 70 s (57 minutes in all). The 50th member's sighting decides."""
    members = await asyncio.gather(*(enroll(council, f"m{i:02d}") for i in range(50)))
    for i, m in enumerate(members):
        out = await m.sight(council, ATTACKER, 2)
        if i < 49:
            assert out["decided"] == [], f"decided after {i + 1} members"
            council.clock.advance(70)
    assert len(out["decided"]) == 1
    (d,) = await active(council)
    assert d["scope"] == ATTACKER
    why = await explain(council, d["id"])
    assert why["evidence"]["clauses"] == ["alliance.threshold"]
    assert len(why["evidence"]["members"]) == 50
    await close_all(list(members))


@pytest.mark.treaty({"alliance": {"rules": {"sshd": {"members": 50, "per-member": 2}}}})
async def test_sightings_older_than_the_window_do_not_add_up(council: Council) -> None:
    members = await asyncio.gather(*(enroll(council, f"m{i:02d}") for i in range(50)))
    for m in members:
        out = await m.sight(council, ATTACKER, 2)
        council.clock.advance(80)  # 50 × 80 s: the first sightings have left the hour
    assert out["decided"] == []
    assert await active(council) == []
    await close_all(list(members))


async def _consultation(client: Any, since: int) -> WireConsult:
    async for item in client.stream(since):
        if isinstance(item, WireConsult):
            return item
    raise AssertionError("the stream ended")


async def test_consultation_is_corroborated_by_two_members(council: Council) -> None:
    a, b, c = [await enroll(council, n) for n in ("web1", "web2", "web3")]
    listener = asyncio.create_task(_consultation(c.client, 0))
    await until(
        lambda: _streams(council, 1), "the listener's stream"
    )  # so the consultation reaches it
    async with operator(council) as http:
        r = await http.post("/v1/concerns", json={"source": "203.0.113.60", "reason": "odd logins"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "consulting"
    concern = body["concern"]["id"]
    consult = await asyncio.wait_for(listener, 10)
    assert (consult.concern, consult.source) == (concern, "203.0.113.60")
    assert consult.lookback == 3600
    out = await a.answer(concern, failures=3)
    assert out["decided"] == []
    assert out["answers"] == 1
    assert await active(council) == []
    out = await b.answer(concern, failures=1)
    assert len(out["decided"]) == 1
    (d,) = await active(council)
    assert d["scope"] == "203.0.113.60"
    why = await explain(council, d["id"])
    assert why["evidence"]["clauses"] == ["article4.corroborated"]
    assert why["evidence"]["members"] == ["web1", "web2"]
    assert [x["kind"] for x in why["evidence"]["exhibits"]] == ["concern", "testimony", "testimony"]
    # raising it again is answered with the decision, not a new consultation
    async with operator(council) as http:
        again = (await http.post("/v1/concerns", json={"source": "203.0.113.60"})).json()
    assert (again["status"], again["outcome"]) == ("closed", "already-decided")
    await close_all([a, b, c])


async def test_a_members_concern_is_signed_and_a_login_closes_it(council: Council) -> None:
    a, b = await enroll(council, "web1"), await enroll(council, "web2")
    status, body = await a.client.raise_concern("203.0.113.61", reason="slow scan")
    assert (status, body["status"]) == (200, "consulting")
    assert body["concern"]["raised_by"] == "web1"
    concern = body["concern"]["id"]
    out = await b.answer(concern, failures=0, successes=2)
    assert out["decided"] == []
    assert await active(council) == []
    assert (await stats(council))["concerns.friendly-fire"] == 1
    # a protected target is refused; a forged or malformed concern is not even considered
    status, body = await a.client.raise_concern("10.1.2.3")
    assert (status, body["status"], body["refused"][0]["reason"]) == (
        403,
        "refused",
        "protected:private",
    )
    forged = encode(
        ConcernRequest(
            id=uuid.uuid4().hex, member="web1", sent_at=council.clock.now(), source="203.0.113.62"
        )
    )
    wrong_key, _ = signing.generate()
    sig = signing.sign(signing.signing_key(wrong_key), forged)
    async with httpx.AsyncClient(base_url=council.url) as anon:
        r = await anon.post("/v1/concerns", content=forged, headers={"X-Shieldwall-Signature": sig})
        assert (r.status_code, r.json()["error"]) == (401, "bad-signature")
        r = await anon.post("/v1/concerns", content=b'{"id": "x"}')
        assert (r.status_code, r.json()["error"]) == (400, "malformed")
    async with operator(council) as http:
        r = await http.post("/v1/concerns", json={"source": "not-an-ip"})
        assert r.status_code == 400
    assert (await stats(council))["concerns.refused.bad-signature"] == 1
    await close_all([a, b])


async def test_explain_flags_and_audit(council: Council) -> None:
    a = await enroll(council, "web1")
    out = await a.alert(council, "203.0.113.5")
    (decision_id,) = out["decided"]
    why = await explain(council, decision_id)
    assert why["decision"]["scope"] == "203.0.113.5"
    assert why["evidence"]["clauses"] == ["article5.alert"]
    assert why["evidence"]["members"] == ["web1"]
    (exhibit,) = why["evidence"]["exhibits"]
    assert (exhibit["member"], exhibit["kind"], exhibit["rule"]) == ("web1", "alert", "sshd")
    assert why["revoked"] is None
    # members may read it too (signed), strangers may not
    assert (await a.client.explain(decision_id))["evidence"] == why["evidence"]
    async with operator(council) as http:
        assert (await http.get("/v1/decisions/nope/explain")).status_code == 404
        r = await http.post("/v1/decisions", json={"scope": "203.0.113.0/28", "duration": 60})
        assert r.status_code == 201
        r = await http.post("/v1/decisions", json={"scope": "127.0.0.1"})
        assert r.status_code == 403
        r = await http.post("/v1/decisions/revoke", json={"id": decision_id})
        assert len(r.json()["revoked"]) == 1
        audit = (await http.get("/v1/audit")).json()
        flags = (await http.get("/v1/flags")).json()
    async with httpx.AsyncClient(base_url=council.url) as anon:
        assert (await anon.get(f"/v1/decisions/{decision_id}/explain")).status_code == 401
        assert (await anon.get("/v1/audit")).status_code == 401
        assert (await anon.get("/v1/flags")).status_code == 401
    assert [(r["action"], r["outcome"]) for r in reversed(audit)] == [
        ("member.enroll", "done"),
        ("ban", "done"),
        ("ban", "refused:protected:loopback"),
        ("unban", "done"),
    ]
    assert audit[0]["decisions"] == [decision_id]
    assert flags == []
    revoked = await explain(council, decision_id)
    assert revoked["state"] == "revoked"
    assert revoked["revoked"]["clauses"] == ["operator"]
    assert revoked["evidence"]["clauses"] == ["article5.alert"]
    await a.client.close()


async def _streams(council: Council, n: int) -> bool:
    return council.service.fanout.subscribers >= n


async def _events(client: Any, since: int, n: int) -> list[LogEvent]:
    got: list[LogEvent] = []
    async for item in client.stream(since):
        if isinstance(item, StreamBatch):
            got += item.events
        if len(got) >= n:
            break
    return got


async def test_revocation_retracts_sole_evidence_decisions_through_the_stream(
    council: Council,
) -> None:
    bad, good, watcher = [await enroll(council, n) for n in ("bad", "good", "watcher")]
    await bad.alert(council, "203.0.113.1", "203.0.113.2")
    await good.alert(council, "203.0.113.2")  # corroborates one of them
    seq, _ = await council.service.snapshot()
    follow = asyncio.create_task(_events(watcher.client, seq, 1))
    await until(lambda: _streams(council, 1), "the watcher's stream")
    async with operator(council) as http:
        r = await http.post("/v1/members/bad/revoke")
    assert r.status_code == 200
    assert len(r.json()["decisions_revoked"]) == 1
    assert r.json()["amended"] == 1
    (event,) = await asyncio.wait_for(follow, 10)
    assert (event.kind, str(event.scope)) == (EventKind.REVOKE, "203.0.113.1/32")
    (left,) = await active(council)
    assert left["scope"] == "203.0.113.2"
    assert (await explain(council, left["id"]))["evidence"]["members"] == ["good"]
    why = await explain(council, event.decision_id)
    assert (why["state"], why["revoked"]["clauses"]) == ("revoked", ["revocation"])
    await close_all([bad, good, watcher])


def _protected_and_members() -> tuple[list[str], list[str]]:
    protected = [
        "127.0.0.1",
        "10.0.0.1",
        "192.168.1.1",
        "172.16.5.5",
        "100.64.0.1",
        "169.254.1.1",
        "0.0.0.0",
        "224.0.0.1",
        "198.51.100.7",  # the allowlist
        "::1",
        "fd00::1",
    ]
    members = ["192.0.2.10", "192.0.2.20"]
    return protected, members


async def test_a_poisoning_member_cannot_turn_the_alliance_against_anyone(
    council: Council,
) -> None:
    """An enrolled member reports 10,000 addresses — protected ones and other members'
    among them — as fast as it can. Nothing protected is decided, at most its blast radius
    (100 for trust "member"), it is flagged, and once revoked nothing it alone caused stays."""
    protected, member_addresses = _protected_and_members()
    honest = await enroll(council, "honest", [member_addresses[0]])
    other = await enroll(council, "other", [member_addresses[1]])
    evil = await enroll(council, "evil")
    targets = [*protected, *member_addresses]
    net = ipaddress.ip_network("203.0.0.0/16")
    public = [str(net[i * 5 + 1]) for i in range(10_000 - len(targets))]
    targets += public
    assert len(set(targets)) == 10_000
    now = council.clock.now()
    alerts = [WireAlert(rule="sshd", source=t, first=now, last=now, count=5) for t in targets]
    # a first decision the honest member corroborates: it must survive the revocation
    await evil.alert(council, public[0])
    await honest.alert(council, public[0])
    chunks = [alerts[i : i + 1000] for i in range(0, len(alerts), 1000)]
    answers = await asyncio.gather(
        *(evil.client.send_report(uuid.uuid4().hex, chunk) for chunk in chunks)
    )
    decided = [d for a in answers for d in a["decided"]]
    assert len(decided) == 100 - 1  # the cap, one already used on public[0]
    decisions = await active(council)
    assert len(decisions) == 100
    scopes = {d["scope"] for d in decisions}
    assert scopes.isdisjoint([*protected, *member_addresses])
    async with operator(council) as http:
        flags = (await http.get("/v1/flags")).json()
    assert [(f["member"], f["clause"]) for f in flags] == [("evil", "blast-radius")]
    counters = await stats(council)
    assert counters["refusals.protected"] == len(protected) + len(member_addresses)
    # every other new public address was refused by the cap (public[0] was a duplicate)
    assert counters["refusals.blast-radius"] == len(public) - 1 - 99
    # revoked: every decision that rested on it alone is retracted
    async with operator(council) as http:
        r = await http.post("/v1/members/evil/revoke")
    assert r.status_code == 200
    remaining = await active(council)
    assert [d["scope"] for d in remaining] == [public[0]]
    assert (await explain(council, remaining[0]["id"]))["evidence"]["members"] == ["honest"]
    for d in remaining:
        assert (await explain(council, d["id"]))["evidence"]["members"] != ["evil"]
    assert len(r.json()["decisions_revoked"]) == len(decisions) - 1
    await close_all([honest, other, evil])


async def test_snapshot_then_consultation_does_not_move_the_resume_point(
    council: Council,
) -> None:
    """A consult frame has no id: the client's sequence number comes from the log alone."""
    a = await enroll(council, "web1")
    await a.alert(council, "203.0.113.9")
    items: list[Any] = []

    async def read() -> None:
        async for item in a.client.stream(None):
            items.append(item)
            if isinstance(item, WireConsult):
                return

    reader = asyncio.create_task(read())
    await until(lambda: _streams(council, 1), "the stream")
    async with operator(council) as http:
        await http.post("/v1/concerns", json={"source": "203.0.113.77"})
    await asyncio.wait_for(reader, 10)
    assert isinstance(items[0], StreamSnapshot)
    assert items[0].seq == 1
    assert isinstance(items[-1], WireConsult)
    await a.client.close()


async def test_the_new_endpoints_are_described_in_the_openapi_schema(council: Council) -> None:
    async with operator(council) as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
    for path, method in (
        ("/v1/concerns", "post"),
        ("/v1/decisions/{id}/explain", "get"),
        ("/v1/flags", "get"),
        ("/v1/audit", "get"),
    ):
        assert paths[path][method]["summary"], path
    assert "sightings" in paths["/v1/reports"]["post"]["description"]


async def test_allowlist_changes_are_audited_revoke_overlaps_and_survive_a_restart(
    council: Council,
) -> None:
    from shieldwall.council.service import CouncilService

    a = await enroll(council, "web1")
    out = await a.alert(council, "203.0.113.77")
    (decided,) = out["decided"]
    async with operator(council) as http:
        r = await http.post("/v1/allowlist", json={"scope": "203.0.113.0/24", "reason": "partner"})
        assert r.status_code == 200
        assert [d["id"] for d in r.json()["revoked"]] == [decided]
        listing = (await http.get("/v1/allowlist")).json()
        assert listing == {"configured": ["198.51.100.0/24"], "added": ["203.0.113.0/24"]}
        r = await http.post("/v1/allowlist", json={"scope": "198.51.100.0/24", "action": "remove"})
        assert r.status_code == 409  # a config entry is changed in council.toml
        r = await http.post("/v1/allowlist", json={"scope": "not-a-scope"})
        assert r.status_code == 400
    assert await active(council) == []
    refused = await a.alert(council, "203.0.113.78")
    assert refused["decided"] == []
    assert [x["reason"] for x in refused["refused"]] == ["protected:allowlist"]
    # a new council over the same store (a restart) still protects the range
    again = CouncilService(
        council.service.store, council.service.terms, council.clock, replay_window=300
    )
    await again.start()
    assert again.allowlist()[1] == council.service.allowlist()[1]
    async with operator(council) as http:
        r = await http.post(
            "/v1/allowlist", json={"scope": "203.0.113.0/24", "action": "remove", "reason": "x"}
        )
        assert r.status_code == 200
        audit = (await http.get("/v1/audit")).json()
    assert [(x["action"], x["outcome"]) for x in reversed(audit) if "allowlist" in x["action"]] == [
        ("allowlist.add", "done"),
        ("allowlist.remove", "refused:configured"),
        ("allowlist.remove", "done"),
    ]
    assert len((await a.alert(council, "203.0.113.79"))["decided"]) == 1
    await a.client.close()
