"""The running agent's control socket (``agent.sock`` in its state-dir, mode 0600): one JSON
request a line, one JSON answer a line. What ``shieldwall agent unban`` talks to, so that a
change reaches the agent's memory and its enforcers at once — not only its database.

Requests: ``{"op": "unban", "scope": "203.0.113.7"}`` → ``{"lifted": n, "council": bool}``
(``council``: a council decision blocks it too — lift that with ``shieldwall unban``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

SOCKET = "agent.sock"
MAX_REQUEST = 64 * 1024

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ControlServer:
    def __init__(self, state_dir: str, handle: Handler) -> None:
        self.path = Path(state_dir) / SOCKET
        self._handle = handle
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket (the state-dir's lock says it is ours)
        with _short(self.path) as where:
            old = os.umask(0o177)  # 0600 from the start: never a moment open to others
            try:
                self._server = await asyncio.start_unix_server(
                    self._client, path=where, limit=MAX_REQUEST
                )
            finally:
                os.umask(old)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
                answer = await self._handle(request)
            except (ValueError, KeyError, TypeError) as exc:
                answer = {"error": str(exc)}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, OSError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()


@contextlib.contextmanager
def _short(path: Path) -> Iterator[str]:
    """``path`` as a socket address: a unix socket's path is at most 107 bytes, so a longer
    one is reached through its folder's descriptor (``/proc/self/fd/N/agent.sock``)."""
    if len(str(path).encode()) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def ask(state_dir: str, request: dict[str, Any], timeout: float = 5.0) -> dict[str, Any] | None:
    """Send one request to the running agent; None when no agent listens."""
    import socket

    path = Path(state_dir) / SOCKET
    try:
        with _short(path) as where, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(where)
            s.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (FileNotFoundError, ConnectionRefusedError):
        return None
    answer: dict[str, Any] = json.loads(data)
    return answer
