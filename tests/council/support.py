"""Helpers for the treaty tests against a real council: members with signed clients."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from shieldwall.agent.client import CouncilClient
from shieldwall.wire import signing
from shieldwall.wire.messages import WireAlert, WireAnswer, WireSighting
from tests.council.conftest import Council


@dataclass
class Member:
    name: str
    key: str
    client: CouncilClient

    async def alert(self, council: Council, *sources: str, rule: str = "sshd") -> dict[str, Any]:
        now = council.clock.now()
        alerts = [WireAlert(rule=rule, source=s, first=now, last=now, count=5) for s in sources]
        return await self.client.send_report(uuid.uuid4().hex, alerts)

    async def sight(
        self,
        council: Council,
        source: str,
        count: int,
        *,
        rule: str = "sshd",
        kind: str = "failure",
    ) -> dict[str, Any]:
        now = council.clock.now()
        s = WireSighting(source=source, rule=rule, kind=kind, count=count, first=now, last=now)  # type: ignore[arg-type]
        return await self.client.send_report(uuid.uuid4().hex, [], [s])

    async def answer(self, concern: str, failures: int, successes: int = 0) -> dict[str, Any]:
        a = WireAnswer(concern=concern, failures=failures, successes=successes)
        return await self.client.send_report(uuid.uuid4().hex, [], answers=[a])


async def enroll(
    council: Council, name: str, addresses: list[str] | None = None, trust: str = "member"
) -> Member:
    private, public = signing.generate()
    async with operator(council) as http:
        r = await http.post(
            "/v1/members",
            json={"name": name, "public_key": public, "addresses": addresses or [], "trust": trust},
        )
        assert r.status_code == 201, r.text
    client = CouncilClient(council.url, name, private, council.clock)
    council.clients.append(client)
    return Member(name, private, client)


@asynccontextmanager
async def operator(council: Council) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=council.url, headers=council.headers) as http:
        yield http


async def active(council: Council) -> list[dict[str, Any]]:
    async with operator(council) as http:
        data: list[dict[str, Any]] = (await http.get("/v1/decisions")).json()["decisions"]
    return data


async def explain(council: Council, decision_id: str) -> dict[str, Any]:
    async with operator(council) as http:
        r = await http.get(f"/v1/decisions/{decision_id}/explain")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
    return data


async def stats(council: Council) -> dict[str, int]:
    async with operator(council) as http:
        data: dict[str, int] = (await http.get("/v1/stats")).json()
    return data


async def close_all(members: list[Member]) -> None:
    await asyncio.gather(*(m.client.close() for m in members))


async def until(
    check: Callable[[], Awaitable[bool]],
    what: str,
    timeout: float = 10.0,
    step: Callable[[], None] | None = None,
) -> None:
    """Poll ``check`` until it holds (``step`` runs between polls, e.g. to move a clock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        if step is not None:
            step()
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
