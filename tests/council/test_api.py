"""The council's HTTP API against a real server: signed reports, refusals, stream resume."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import msgspec
import pytest

from shieldwall.agent.client import CouncilClient, StreamBatch, StreamSnapshot
from shieldwall.errors import CouncilError
from shieldwall.model import EventKind, LogEvent
from shieldwall.wire import signing
from shieldwall.wire.messages import Report, Snapshot, WireAlert, encode
from tests.council.conftest import Council


def wire_alert(source: str, council: Council) -> WireAlert:
    now = council.clock.now()
    return WireAlert(
        rule="sshd",
        source=source,
        first=now,
        last=now,
        count=5,
        evidence=["Failed password for root from x"],
    )


async def enroll(council: Council, name: str, addresses: list[str] | None = None) -> str:
    private, public = signing.generate()
    async with httpx.AsyncClient(base_url=council.url, headers=council.headers) as http:
        r = await http.post(
            "/v1/members", json={"name": name, "public_key": public, "addresses": addresses or []}
        )
        assert r.status_code == 201, r.text
    return private


async def post_report(council: Council, body: bytes, sig: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if sig is not None:
        headers["X-Shieldwall-Signature"] = sig
    async with httpx.AsyncClient(base_url=council.url) as http:
        return await http.post("/v1/reports", content=body, headers=headers)


async def test_signed_alert_becomes_a_decision(council: Council) -> None:
    key = await enroll(council, "web1")
    client = CouncilClient(council.url, "web1", key, council.clock)
    out = await client.send_report(uuid.uuid4().hex, [wire_alert("203.0.113.5", council)])
    assert len(out["decided"]) == 1  # type: ignore[arg-type]
    snap = await client.snapshot()
    assert [d.scope for d in snap.decisions] == ["203.0.113.5"]
    assert snap.decisions[0].member == "web1"
    assert snap.decisions[0].expires - snap.decisions[0].created == timedelta(hours=4)
    await client.close()


async def test_forged_unsigned_unknown_revoked_replayed_and_stale_reports_are_refused(
    council: Council,
) -> None:
    key = await enroll(council, "web1")
    other, _ = signing.generate()
    now = council.clock.now()

    def body(member: str = "web1", rid: str | None = None, sent: object = None) -> bytes:
        return encode(
            Report(
                id=rid or uuid.uuid4().hex,
                member=member,
                sent_at=sent or now,  # type: ignore[arg-type]
                alerts=[wire_alert("203.0.113.5", council)],
            )
        )

    sk = signing.signing_key(key)
    forged = body()
    r = await post_report(council, forged, signing.sign(signing.signing_key(other), forged))
    assert (r.status_code, r.json()["error"]) == (401, "bad-signature")
    r = await post_report(council, forged, None)
    assert (r.status_code, r.json()["error"]) == (401, "unsigned")
    ghost = body(member="ghost")
    r = await post_report(council, ghost, signing.sign(sk, ghost))
    assert (r.status_code, r.json()["error"]) == (401, "unknown-member")
    stale = body(sent=now - timedelta(minutes=10))
    r = await post_report(council, stale, signing.sign(sk, stale))
    assert (r.status_code, r.json()["error"]) == (401, "stale")
    good = body()
    r = await post_report(council, good, signing.sign(sk, good))
    assert r.status_code == 200
    r = await post_report(council, good, signing.sign(sk, good))
    assert (r.status_code, r.json()["error"]) == (409, "replayed")
    r = await post_report(council, b"{not json", signing.sign(sk, b"{not json"))
    assert (r.status_code, r.json()["error"]) == (400, "malformed")
    async with httpx.AsyncClient(base_url=council.url, headers=council.headers) as http:
        decided_before = (await http.get("/v1/decisions")).json()["decisions"]
        assert (await http.post("/v1/members/web1/revoke")).status_code == 200
    late = body()
    r = await post_report(council, late, signing.sign(sk, late))
    assert (r.status_code, r.json()["error"]) == (403, "revoked")
    async with httpx.AsyncClient(base_url=council.url, headers=council.headers) as http:
        stats = (await http.get("/v1/stats")).json()
        active = (await http.get("/v1/decisions")).json()
    for reason in (
        "bad-signature",
        "unsigned",
        "unknown-member",
        "stale",
        "replayed",
        "malformed",
        "revoked",
    ):
        assert stats[f"reports.refused.{reason}"] == 1, reason
    assert stats["reports.accepted"] == 1
    # the one good report decided once; the decision rested on web1 alone, so revoking web1
    # retracted it (treaty clause revocation)
    assert len(decided_before) == 1
    assert active["decisions"] == []


async def test_protected_targets_are_refused_and_recorded(council: Council) -> None:
    key = await enroll(council, "web1", addresses=["192.0.2.10"])
    await enroll(council, "web2", addresses=["192.0.2.20/32"])
    client = CouncilClient(council.url, "web1", key, council.clock)
    sources = [
        "127.0.0.1",
        "10.0.0.8",
        "192.0.2.20",
        "198.51.100.4",
        "192.0.2.10",
        "::1",
        "203.0.113.50",
    ]
    out = await client.send_report(uuid.uuid4().hex, [wire_alert(s, council) for s in sources])
    assert len(out["decided"]) == 1  # type: ignore[arg-type]
    reasons = {r["scope"]: r["reason"] for r in out["refused"]}  # type: ignore[attr-defined]
    assert reasons == {
        "127.0.0.1": "protected:loopback",
        "10.0.0.8": "protected:private",
        "192.0.2.20": "protected:member:web2",
        "198.51.100.4": "protected:allowlist",
        "192.0.2.10": "protected:member:web1",
        "::1": "protected:loopback",
    }
    async with httpx.AsyncClient(base_url=council.url, headers=council.headers) as http:
        refusals = (await http.get("/v1/refusals")).json()
    assert {r["scope"] for r in refusals} == set(reasons)
    await client.close()


async def test_reads_need_a_member_signature_or_the_operator_token(council: Council) -> None:
    key = await enroll(council, "web1")
    async with httpx.AsyncClient(base_url=council.url) as http:
        assert (await http.get("/v1/decisions")).status_code == 401
        r = await http.get(
            "/v1/decisions",
            headers={
                "X-Shieldwall-Member": "web1",
                "X-Shieldwall-Time": "1",
                "X-Shieldwall-Signature": "AAAA",
            },
        )
        assert r.status_code == 401
        assert (await http.get("/v1/members")).status_code == 401
        assert (await http.post("/v1/decisions", json={"scope": "1.2.3.4"})).status_code == 401
    client = CouncilClient(council.url, "web1", key, council.clock)
    assert isinstance(await client.snapshot(), Snapshot)
    await client.close()


async def test_operator_ban_unban_and_protected_refusal(council: Council) -> None:
    async with httpx.AsyncClient(base_url=council.url, headers=council.headers) as http:
        r = await http.post(
            "/v1/decisions", json={"scope": "203.0.113.0/24", "duration": 600, "reason": "scanner"}
        )
        assert r.status_code == 201
        assert r.json()["origin"] == "operator"
        r = await http.post("/v1/decisions", json={"scope": "10.0.0.0/8"})
        assert (r.status_code, r.json()["reason"]) == (403, "protected:private")
        r = await http.post("/v1/decisions", json={"scope": "10.0.0.1/8"})
        assert r.status_code == 400  # host bits set: not a network
        r = await http.post("/v1/decisions", json={"scope": "not-an-ip"})
        assert r.status_code == 400
        r = await http.post("/v1/decisions", content=b"\xff\xfe")
        assert r.status_code == 400
        r = await http.post("/v1/decisions/revoke", json={"scope": "203.0.113.0/24"})
        assert len(r.json()["revoked"]) == 1
        assert (await http.get("/v1/decisions")).json()["decisions"] == []
        openapi = (await http.get("/openapi.json")).json()
    assert "/v1/reports" in openapi["paths"]
    assert "/v1/decisions/stream" in openapi["paths"]


async def _collect(
    client: CouncilClient, since: int | None, n: int
) -> list[StreamSnapshot | LogEvent]:
    """The first ``n`` items of the stream: a snapshot, then events one by one."""
    got: list[StreamSnapshot | LogEvent] = []
    async for item in client.stream(since):
        if isinstance(item, StreamBatch):
            got += item.events
        elif isinstance(item, StreamSnapshot):
            got.append(item)
        if len(got) >= n:
            break
    return got[:n]


async def test_stream_sends_snapshot_then_live_and_resumes_exactly(council: Council) -> None:
    key = await enroll(council, "web1")
    client = CouncilClient(council.url, "web1", key, council.clock)
    for i in range(3):
        await client.send_report(uuid.uuid4().hex, [wire_alert(f"203.0.113.{i + 1}", council)])
    first = asyncio.create_task(_collect(client, None, 3))
    await asyncio.sleep(0.2)
    await client.send_report(uuid.uuid4().hex, [wire_alert("203.0.113.10", council)])
    await client.send_report(uuid.uuid4().hex, [wire_alert("203.0.113.11", council)])
    got = await asyncio.wait_for(first, 10)
    assert isinstance(got[0], StreamSnapshot)
    assert got[0].seq == 3
    assert len(got[0].claims) == 3
    assert [e.seq for e in got[1:]] == [4, 5]  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=council.url, headers=council.headers) as http:
        await http.post("/v1/decisions/revoke", json={"scope": "203.0.113.1"})
    resumed = await asyncio.wait_for(_collect(client, 2, 4), 10)
    assert [(e.seq, e.kind) for e in resumed] == [  # type: ignore[union-attr]
        (3, EventKind.ADD),
        (4, EventKind.ADD),
        (5, EventKind.ADD),
        (6, EventKind.REVOKE),
    ]
    # a member ahead of the log (the council's database was replaced) gets a snapshot
    ahead = await asyncio.wait_for(_collect(client, 999, 1), 10)
    assert isinstance(ahead[0], StreamSnapshot)
    assert ahead[0].seq == 6
    await client.close()


async def test_expiry_is_an_event_in_the_log(council: Council) -> None:
    key = await enroll(council, "web1")
    client = CouncilClient(council.url, "web1", key, council.clock)
    a = wire_alert("203.0.113.7", council)
    a.bantime = 60
    await client.send_report(uuid.uuid4().hex, [a])
    council.clock.advance(61)
    events = await asyncio.wait_for(_collect(client, 0, 2), 10)
    assert [e.kind for e in events] == [EventKind.ADD, EventKind.EXPIRE]  # type: ignore[union-attr]
    await client.close()


async def test_stream_with_bad_since_is_refused(council: Council) -> None:
    async with httpx.AsyncClient(base_url=council.url, headers=council.headers) as http:
        assert (await http.get("/v1/decisions/stream?since=x")).status_code == 400
        assert (await http.get("/v1/decisions/stream?since=-1")).status_code == 400


async def test_transport_failure_is_a_council_error(council: Council) -> None:
    key, _ = signing.generate()
    client = CouncilClient("http://127.0.0.1:9", "web1", key, council.clock)
    with pytest.raises(CouncilError) as exc:
        await client.send_report("x", [])
    assert exc.value.status is None
    await client.close()


def test_report_decoding_rejects_unknown_fields() -> None:
    from shieldwall.errors import WireError
    from shieldwall.wire.messages import decode_report

    with pytest.raises(WireError):
        decode_report(
            msgspec.json.encode(
                {
                    "id": "x",
                    "member": "m",
                    "sent_at": "2026-01-01T00:00:00Z",
                    "alerts": [],
                    "evil": 1,
                }
            )
        )
