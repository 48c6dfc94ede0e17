"""The council's lifecycle around the HTTP API: start the service, reap (expiries, the
treaty's tick, its state saved) every ``reaper_interval`` seconds, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from shieldwall.council.service import CouncilService

log = logging.getLogger("shieldwall.council")


def lifespan(
    service: CouncilService, reaper_interval: float = 1.0
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        await service.start()

        async def reap() -> None:
            while True:
                try:
                    await service.tick()
                except Exception:  # keep reaping; the next round retries
                    log.exception("reaper.failed")
                await asyncio.sleep(reaper_interval)

        task = asyncio.create_task(reap(), name="reaper")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await service.fanout.close()
            try:
                await service.stop()  # the treaty's state, for the next start
            except Exception:
                log.exception("treaty.state.save_failed")

    return run
