"""The council's lifecycle around the HTTP API: start the service, reap (expiries, the
treaty's tick, its state saved) every ``reaper_interval`` seconds, stop cleanly; serve it
over HTTPS or HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from shieldwall.config.schema import CouncilConfig
from shieldwall.council.service import CouncilService
from shieldwall.errors import ShieldwallError
from shieldwall.tls import reload_chain, server_context

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


def guarded_protocol(header_timeout: float, body_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with read deadlines: a connection that does not send its
    headers within ``header_timeout``, or its body within ``body_timeout`` after them, is
    closed (uvicorn has neither; its keep-alive timeout only covers idle time between
    requests). A stream's response may last for hours: the deadlines end with the request.

    A request only notes its deadline (a float); one sweep a second closes the connections
    past theirs — a timer per request cost the council 4 % of its CPU under load."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    waiting: dict[Guarded, None] = {}
    """Connections with a deadline (in the middle of receiving a request)."""
    sweeper: list[asyncio.TimerHandle] = []

    def sweep(loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for conn in [c for c in waiting if c._deadline_at <= now]:
            waiting.pop(conn, None)
            if not conn.transport.is_closing():
                log.info("http.timeout client=%s: request not sent in time", conn.client)
                conn.transport.close()
        sweeper[:] = [loop.call_later(1.0, sweep, loop)] if waiting else []

    class Guarded(HttpToolsProtocol):
        _deadline_at = 0.0

        def _arm(self, seconds: float) -> None:
            self._deadline_at = self.loop.time() + seconds
            waiting[self] = None
            if not sweeper:
                sweeper.append(self.loop.call_later(min(1.0, seconds), sweep, self.loop))

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(header_timeout)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm(header_timeout)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._arm(body_timeout)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            waiting.pop(self, None)

        def connection_lost(self, exc: Exception | None) -> None:
            waiting.pop(self, None)
            super().connection_lost(exc)

    return Guarded


def serve(app: Any, cfg: CouncilConfig) -> None:
    """Serve ``app`` as ``cfg`` says: HTTPS with its certificate (reloaded on SIGHUP: new
    connections get the renewed one, members' open streams stay), plain HTTP otherwise."""
    import uvicorn

    context = (
        server_context(cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca, cfg.origin)
        if cfg.tls_cert and cfg.tls_key
        else None
    )
    config = uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        http=guarded_protocol(cfg.header_timeout, cfg.body_timeout),
    )
    config.load()
    if context is not None:
        config.ssl = context
        cert, key = cfg.tls_cert, cfg.tls_key

        def reload(*_: object) -> None:
            try:
                reload_chain(context, cert, key, cfg.origin)  # type: ignore[arg-type]
            except ShieldwallError as exc:
                log.error("tls.reload_failed %s (the certificate in use stays)", exc)
                return
            log.warning("tls.reloaded cert=%s", cert)

        signal.signal(signal.SIGHUP, reload)
    uvicorn.Server(config).run()


def exposure_warning(cfg: CouncilConfig) -> str | None:
    """What an admin must hear when the council listens beyond loopback in clear."""
    if cfg.tls or cfg.loopback:
        return None
    return (
        f"WARNING: the council listens on {cfg.host or '*'}:{cfg.port} without TLS: the "
        "operator token and every member's traffic cross the network in clear. Set tls-cert "
        f"and tls-key in {cfg.origin or 'council.toml'} (docs/configuration.md)."
    )
