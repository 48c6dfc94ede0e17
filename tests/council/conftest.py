from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from shieldwall.clock import ManualClock
from shieldwall.council.api import create_app
from shieldwall.council.service import CouncilService
from shieldwall.council.store.sqlite import SqliteStore
from shieldwall.treaty import TreatyTerms

TOKEN = "test-operator-token"  # noqa: S105


@dataclass
class Council:
    url: str
    service: CouncilService
    clock: ManualClock
    clients: list[Any] = field(default_factory=list)
    """Clients a test opened (closed at teardown, even when the test fails)."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "treaty(table): the council fixture's [treaty] table (TOML keys)"
    )


@pytest.fixture
def terms(request: pytest.FixtureRequest) -> TreatyTerms:
    """The council's treaty terms: the defaults with 198.51.100.0/24 allowlisted, or the
    ``[treaty]`` table given by ``@pytest.mark.treaty({...})``."""
    marker = request.node.get_closest_marker("treaty")
    table = {"allowlist": ["198.51.100.0/24"], **(marker.args[0] if marker else {})}
    return TreatyTerms.from_mapping(table)


@pytest.fixture
async def council(clock: ManualClock, terms: TreatyTerms) -> AsyncIterator[Council]:
    """A real council (uvicorn on loopback, SQLite in memory) in the test's event loop."""
    service = CouncilService(SqliteStore(":memory:"), terms, clock, replay_window=300)
    app = create_app(service, TOKEN, reaper_interval=0.05)
    port = _port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    council = Council(f"http://127.0.0.1:{port}", service, clock)
    try:
        yield council
    finally:
        for client in council.clients:
            await client.close()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
