"""Bad input at every endpoint is a 4xx with a reason, never a 500; what a report carries is
validated before anything is stored."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest

from shieldwall.wire import signing
from shieldwall.wire.messages import Report, WireAlert, encode
from tests.council.conftest import Council
from tests.council.support import enroll, operator

POSTS = [
    "/v1/reports",
    "/v1/concerns",
    "/v1/decisions",
    "/v1/decisions/import",
    "/v1/decisions/revoke",
    "/v1/decisions/revoke/bulk",
    "/v1/members",
    "/v1/allowlist",
]
DEEP = b"[" * 100_000 + b"]" * 100_000
GARBAGE = [
    b"\xff\xfe\xfa not utf-8 \xc3\x28",
    b'{"id": "\xff\xfe", "member": "m"}',
    DEEP,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b"[]",
    b"null",
    b"7",
    b'"text"',
    b"{",
    b"",
]
WRONG_TYPES: dict[str, list[Any]] = {
    "/v1/decisions": [
        {"scope": 5},
        {"scope": "203.0.113.5", "force": "false"},
        {"scope": "203.0.113.5", "duration": True},
        {"scope": "203.0.113.5", "duration": "1d"},
        {"scope": "203.0.113.5", "reason": {"a": 1}},
        {"scope": ["203.0.113.5"]},
    ],
    "/v1/decisions/revoke": [{"scope": 5}, {"id": [1]}, {}],
    "/v1/decisions/import": [{"decisions": "x"}, {"decisions": [{"scope": 1}]}],
    "/v1/decisions/revoke/bulk": [{"scopes": [1, 2]}, {"scopes": "x"}],
    "/v1/members": [
        {"name": "wide", "public_key": "x", "addresses": ["0.0.0.0/0"]},
        {"name": 5, "public_key": "x"},
        {"name": "m", "public_key": 5},
        {"name": "m", "public_key": "x", "addresses": "1.2.3.4"},
        {"name": "m", "public_key": "x", "trust": ["a"]},
    ],
    "/v1/allowlist": [{"scope": 5}, {"scope": "1.2.3.4", "reason": 5}, {"remove": 1}],
    "/v1/concerns": [{"source": 5}, {"source": "203.0.113.5", "rule": 5}],
}


async def _post(http: httpx.AsyncClient, path: str, content: bytes) -> httpx.Response:
    return await http.post(path, content=content, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("path", POSTS)
async def test_garbage_bodies_are_4xx_with_a_reason_with_and_without_the_token(
    council: Council, path: str
) -> None:
    async with (
        operator(council) as op,
        httpx.AsyncClient(base_url=council.url) as anyone,
    ):
        for http in (anyone, op):
            for body in GARBAGE:
                r = await _post(http, path, body)
                assert 400 <= r.status_code < 500, (path, body[:40], r.status_code, r.text)
                assert r.json().get("error"), r.text


@pytest.mark.parametrize("path", sorted(WRONG_TYPES))
async def test_wrong_types_are_400_never_500(council: Council, path: str) -> None:
    async with operator(council) as op:
        for body in WRONG_TYPES[path]:
            r = await _post(op, path, msgspec.json.encode(body))
            assert r.status_code == 400, (path, body, r.status_code, r.text)


async def test_force_is_a_json_boolean_and_a_protected_ban_is_refused(council: Council) -> None:
    async with operator(council) as op:
        r = await op.post("/v1/decisions", json={"scope": "127.0.0.1", "force": "false"})
        assert r.status_code == 400
        r = await op.post("/v1/decisions", json={"scope": "127.0.0.1"})
        assert r.status_code == 403


async def _report(council: Council, member: Any, report: Report) -> httpx.Response:
    body = encode(report)
    key = signing.signing_key(member.key)
    async with httpx.AsyncClient(base_url=council.url) as http:
        return await http.post(
            "/v1/reports",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Shieldwall-Signature": signing.sign(key, body),
            },
        )


async def test_what_a_report_carries_is_validated(council: Council) -> None:
    m = await enroll(council, "m1")
    now = council.clock.now()

    def alert(**kw: Any) -> WireAlert:
        base: dict[str, Any] = {
            "rule": "sshd",
            "source": "203.0.113.5",
            "first": now,
            "last": now,
            "count": 5,
        }
        return WireAlert(**{**base, **kw})

    def report(*alerts: WireAlert, rid: str | None = None) -> Report:
        rid = uuid.uuid4().hex if rid is None else rid
        return Report(id=rid, member="m1", sent_at=now, alerts=list(alerts))

    for rid in ("x" * 7_000_000, "", "id with\nnewline", "é" * 10):
        resp = await _report(council, m, report(alert(), rid=rid))
        assert resp.status_code == 400, (resp.status_code, resp.text[:200])
        assert "id" in resp.json()["detail"]
    # an alert that cannot be true is skipped and counted; the report's others still count
    bad = [
        alert(first=now, last=now - timedelta(hours=1)),
        alert(first=now.replace(year=9999), last=now.replace(year=9999)),
        alert(first=now - timedelta(days=400), last=now),
        alert(count=0),
        alert(count=-3),
        alert(rule=""),
        alert(bantime=-1.0),
    ]
    for a in bad:
        resp = await _report(council, m, report(a))
        assert resp.status_code == 200, resp.text
        assert resp.json()["malformed"] == 1, (a, resp.text)
        assert resp.json()["decided"] == []
    resp = await _report(council, m, report(*bad, alert()))
    assert resp.status_code == 200, resp.text
    assert resp.json()["malformed"] == len(bad)
    assert len(resp.json()["decided"]) == 1


@pytest.mark.treaty({"blast-radius": {"member": 100_000}})
async def test_a_large_report_gives_the_event_loop_back_while_it_is_judged(
    council: Council, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import itertools

    m = await enroll(council, "big")
    now = council.clock.now()
    n = 2_000
    alerts = [
        WireAlert(rule="sshd", source=f"198.18.{i >> 8}.{i & 255}", first=now, last=now, count=5)
        for i in range(n)
    ]
    turns = 0
    judging = True

    async def other_work() -> None:  # what health checks and streams need: turns of the loop
        nonlocal turns
        while judging:
            turns += 1
            await asyncio.sleep(0)

    treaty = council.service.treaty
    real = treaty.handle
    at_call: list[int] = []  # the loop's turn count at each alert the treaty judges

    def judged(event: Any, when: Any) -> Any:
        at_call.append(turns)
        return real(event, when)

    monkeypatch.setattr(treaty, "handle", judged)
    log = council.service.store.log
    real_append = log.append
    written: list[int] = []  # decisions per transaction

    async def append(changes: Any, *args: Any, **kwargs: Any) -> Any:
        written.append(len(changes))
        return await real_append(changes, *args, **kwargs)

    monkeypatch.setattr(log, "append", append)
    ticker = asyncio.create_task(other_work())
    out = await m.client.send_report(uuid.uuid4().hex, alerts)
    judging = False
    await ticker
    assert len(out["decided"]) == n  # type: ignore[arg-type]
    assert len(at_call) == n
    # never more than 100 alerts (a few ms of treaty work) without giving the loop a turn
    longest = max(len(list(run)) for _, run in itertools.groupby(at_call))
    assert longest <= 100, longest
    # and its 2,000 decisions were written a slice at a time, every one of them
    assert sum(written) == n
    assert max(written) <= 500
    active = {d["scope"] for d in (await _active(council))}
    assert all(a.source in active for a in alerts)


async def test_a_member_cannot_be_enrolled_with_a_network_wider_than_its_hosts(
    council: Council,
) -> None:
    from shieldwall.wire import signing as sg

    async with operator(council) as op:
        for wide in ("0.0.0.0/0", "10.0.0.0/8", "2001::/16"):
            body = {"name": "m", "public_key": sg.generate()[1], "addresses": [wide]}
            r = await op.post("/v1/members", json=body)
            assert r.status_code == 400, (wide, r.text)
            assert "wider than" in r.json()["detail"]
        ok = {"name": "m", "public_key": sg.generate()[1], "addresses": ["192.0.2.0/24"]}
        assert (await op.post("/v1/members", json=ok)).status_code == 201


async def _active(council: Council) -> list[dict[str, Any]]:
    async with operator(council) as op:
        out: list[dict[str, Any]] = (await op.get("/v1/decisions")).json()["decisions"]
    return out
