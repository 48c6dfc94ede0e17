"""Lines from a byte stream such as ``sys.stdin.buffer`` (``shieldwall agent --stdin``,
``shieldwall rules test RULE -``).

A stream cannot be re-read, so nothing is persisted: the position's ``offset`` is just the
number of lines consumed so far (handed out or skipped), with ``dev = inode = 0``. The last
line is handed out at end of input even without its newline.

``poll()`` reads once from the stream, so it **blocks** on a pipe or a terminal until some
input or end of input arrives; it returns ``None`` when that read completed no line, and
``eof`` tells whether input has ended. ``batches()`` reads in a daemon thread instead (so a
stalled pipe never blocks the event loop nor the interpreter's exit) and ends at end of
input. Use one or the other on a given source, not both.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from typing import BinaryIO

from shieldwall.agent.sources.base import EMPTY_FINGERPRINT, Batch, Position
from shieldwall.lines import LineBlock, LineSplitter
from shieldwall.model import Counters

__all__ = ["StdinSource"]

_QUEUE_DEPTH = 4  # chunks read ahead by the batches() thread


class StdinSource:
    """Lines of a binary stream, in order, each once; see the module docstring."""

    def __init__(
        self,
        stream: BinaryIO,
        *,
        max_line: int = 65536,
        chunk: int = 1 << 20,
        name: str = "-",
    ) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        read1 = getattr(stream, "read1", None)
        # read1 returns what is available (one raw read); read(n) could wait for n bytes.
        self._read: Callable[[int], bytes] = read1 if callable(read1) else stream.read
        self._name = name
        self._chunk = chunk
        self._splitter = LineSplitter(max_line)
        self._count = 0
        self._eof = False
        self._closed = False
        self._pos = Position(name, 0, 0, 0, EMPTY_FINGERPRINT)
        self.counters = Counters()
        self.last_error: str | None = None

    @property
    def position(self) -> Position:
        return self._pos

    @property
    def eof(self) -> bool:
        """True once the stream has ended (or failed) and its last line was handed out."""
        return self._eof

    def poll(self) -> Batch | None:
        """Read once (blocking on pipes); the lines it completed, or ``None``."""
        if self._closed:
            raise ValueError("poll() on a closed StdinSource")
        if self._eof:
            return None
        try:
            data = self._read(self._chunk)
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed
            self._fail(exc)
            data = b""
        return self._take(data)

    async def batches(self, poll_interval: float = 0.05) -> AsyncGenerator[Batch, None]:
        """Batches until end of input. ``poll_interval`` is unused: reads wait for input."""
        if self._closed:
            raise ValueError("batches() on a closed StdinSource")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | Exception] = asyncio.Queue()
        slots = threading.Semaphore(_QUEUE_DEPTH)
        stop = threading.Event()

        def reader() -> None:
            while True:
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                item: bytes | Exception
                try:
                    item = self._read(self._chunk)
                except Exception as exc:
                    item = exc
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, item)
                except RuntimeError:  # the loop is closed
                    return
                if not isinstance(item, bytes) or not item:
                    return

        thread = threading.Thread(target=reader, name=f"shieldwall-stdin-{self._name}")
        thread.daemon = True
        thread.start()
        try:
            while not self._eof and not self._closed:
                item = await queue.get()
                slots.release()
                if isinstance(item, Exception):
                    self._fail(item)
                    item = b""
                batch = self._take(item)
                if batch is not None:
                    yield batch
        finally:
            stop.set()

    def close(self) -> None:
        """Stop; the stream itself belongs to the caller and stays open."""
        self._closed = True

    def _fail(self, exc: Exception) -> None:
        self.counters.inc("errors")
        self.last_error = f"{self._name}: {exc}"

    def _take(self, data: bytes) -> Batch | None:
        if data:
            lines, skipped, _ = self._splitter.feed_block(data)
        else:
            self._eof = True
            last, skipped = self._splitter.flush()
            lines = LineBlock(last)
        if not lines.count and not skipped:
            return None
        self._count += lines.count + skipped
        self._pos = Position(self._name, 0, 0, self._count, EMPTY_FINGERPRINT)
        if lines.count:
            self.counters.inc("lines", lines.count)
        if skipped:
            self.counters.inc("skipped", skipped)
        return Batch(lines, self._pos, skipped)
