from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import uvicorn

from shieldwall.clock import ManualClock
from shieldwall.config.schema import TreatySettings
from shieldwall.council.app import create_app
from shieldwall.council.service import CouncilService
from shieldwall.council.store.sqlite import SqliteStore
from shieldwall.model import parse_scope

TOKEN = "test-operator-token"  # noqa: S105


@dataclass
class Council:
    url: str
    service: CouncilService
    clock: ManualClock

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def council(clock: ManualClock) -> AsyncIterator[Council]:
    """A real council (uvicorn on loopback, SQLite in memory) in the test's event loop."""
    treaty = TreatySettings(
        ban_duration=4 * 3600,
        max_duration=7 * 86400,
        honour_rule_bantime=True,
        protect_private=True,
        allowlist=(parse_scope("198.51.100.0/24"),),
    )
    service = CouncilService(SqliteStore(":memory:"), treaty, clock, replay_window=300)
    app = create_app(service, TOKEN, reaper_interval=0.05)
    port = _port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield Council(f"http://127.0.0.1:{port}", service, clock)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
