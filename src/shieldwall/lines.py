"""Lines of a log: framing only, pure.

A log source reads bytes; :class:`LineSplitter` cuts them into lines (skipping, never holding,
a line longer than the limit) and hands them out as a :class:`LineBlock` — the complete lines
of one read, kept joined as they were read, split only for the paths that need a list.
Used by the agent's sources and by the drill.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def short_lines(block: bytes, max_line: int) -> bool:
    """True if no line of ``block`` (lines joined by ``b"\\n"``) is longer than ``max_line``
    bytes, told without splitting it: every aligned window of ``(max_line + 1) // 2`` bytes
    holds a newline (a run of ``max_line + 1`` bytes without one covers a whole window).
    False means only that it takes a split to tell (a line may be long without being too
    long)."""
    size = len(block)
    if size <= max_line:
        return True
    width = (max_line + 1) // 2
    find = block.find
    return all(
        find(b"\n", start, start + width) >= 0 for start in range(0, size - width + 1, width)
    )


class LineBlock:
    """Complete lines (``bytes`` without their newline, in order) held as one block — the
    lines joined by ``b"\\n"``, no trailing newline — or as a list; each form is made from
    the other only when asked for, then kept.

    A log source hands out what it read as one block and the detector scans that block, so
    the lines are never split only to be joined again. ``LineBlock(lines)`` holds a list;
    ``LineBlock.joined(block, count)`` holds ``count`` lines already joined: ``block`` must
    be ``b"\\n".join(lines)`` and ``count`` their number (trusted, not checked; ``count``
    tells no line from one empty line). Equal when they hold the same lines.
    """

    __slots__ = ("_block", "_count", "_lines")

    def __init__(self, lines: list[bytes] | None = None) -> None:
        self._lines: list[bytes] | None = [] if lines is None else lines
        self._count = len(self._lines)
        self._block: bytes | None = None

    @classmethod
    def joined(cls, block: bytes, count: int) -> LineBlock:
        """``count`` lines already joined into ``block``, split only if asked to."""
        if count < 0 or (count == 0 and block):
            raise ValueError(f"{count} lines cannot make a block of {len(block)} bytes")
        new = cls.__new__(cls)
        new._lines = None if count else []
        new._count = count
        new._block = block
        return new

    @classmethod
    def concat(cls, parts: Sequence[LineBlock]) -> LineBlock:
        """The lines of ``parts``, in order, as one block."""
        full = [part for part in parts if part._count]
        if len(full) == 1:
            return full[0]
        if not full:
            return cls()
        return cls.joined(b"\n".join(part.block for part in full), sum(p._count for p in full))

    @property
    def count(self) -> int:
        """The number of lines (no split)."""
        return self._count

    @property
    def block(self) -> bytes:
        """The lines joined by ``b"\\n"`` (no trailing newline)."""
        if self._block is None:
            self._block = b"\n".join(self._lines or ())
        return self._block

    @property
    def lines(self) -> list[bytes]:
        """The lines as a list (split from the block on first use, then kept)."""
        if self._lines is None:
            self._lines = self.block.split(b"\n")
        return self._lines

    def fits(self, max_line: int) -> bool:
        """True if no line is longer than ``max_line`` bytes (split only if it takes one)."""
        if self._lines is None and short_lines(self.block, max_line):
            return True
        return max(map(len, self.lines), default=0) <= max_line

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.lines)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LineBlock):
            return NotImplemented
        if self._count != other._count:
            return False
        if self._lines is not None and other._lines is not None:
            return self._lines == other._lines
        return self.block == other.block

    def __repr__(self) -> str:
        return f"LineBlock({self.lines!r})"


class LineSplitter:
    """Cuts a byte stream into lines, skipping lines longer than ``max_line``.

    A too-long line is never held as a whole: once the pending part exceeds ``max_line`` its
    bytes are dropped as they arrive until its newline, and it is counted once.
    """

    __slots__ = ("_buf", "_discarding", "_max")

    def __init__(self, max_line: int) -> None:
        if max_line < 1:
            raise ValueError(f"max_line must be >= 1, got {max_line}")
        self._max = max_line
        self._buf = bytearray()
        self._discarding = False

    @property
    def max_line(self) -> int:
        return self._max

    @property
    def pending(self) -> int:
        """Bytes held of the current unterminated line (0 while discarding)."""
        return len(self._buf)

    @property
    def discarding(self) -> bool:
        """True while inside a line already known to be too long."""
        return self._discarding

    def reset(self) -> None:
        """Forget the current unterminated line."""
        self._buf.clear()
        self._discarding = False

    def discard_current(self) -> None:
        """Treat the current line as too long: drop it up to its newline."""
        self._buf.clear()
        self._discarding = True

    def feed(self, data: bytes) -> tuple[list[bytes], int, int]:
        """Split ``data``; return ``(lines, skipped, consumed)``.

        ``consumed`` is the number of bytes of ``data`` up to and including its last newline,
        0 if ``data`` holds no newline.
        """
        first = data.find(b"\n")
        if first < 0:
            self._keep(data)
            return [], 0, 0
        lines: list[bytes] = []
        skipped = 0
        if self._discarding:
            skipped += 1
            self._discarding = False
        elif len(self._buf) + first > self._max:
            skipped += 1
        elif self._buf:
            lines.append(bytes(self._buf) + data[:first])
        else:
            lines.append(data[:first])
        self._buf.clear()
        last = data.rfind(b"\n")
        if last > first:
            parts = data[first + 1 : last].split(b"\n")
            if max(map(len, parts)) <= self._max:  # the usual case, without a Python loop
                lines += parts
            else:
                for part in parts:
                    if len(part) > self._max:
                        skipped += 1
                    else:
                        lines.append(part)
        self._keep(data[last + 1 :])
        return lines, skipped, last + 1

    def feed_block(self, data: bytes) -> tuple[LineBlock, int, int]:
        """:meth:`feed`, with the lines as a :class:`LineBlock`.

        When no line of ``data`` is too long (the usual case), the lines are kept as one
        block — ``data`` up to its last newline, the pending partial line in front — and are
        never split; else this is :meth:`feed`'s split. Same lines, same state after it.
        """
        last = data.rfind(b"\n")
        if last < 0:
            self._keep(data)
            return LineBlock(), 0, 0
        buf = self._buf
        if not self._discarding and len(buf) + data.find(b"\n") <= self._max:
            block = b"".join((buf, memoryview(data)[:last])) if buf else data[:last]
            if short_lines(block, self._max):
                buf.clear()
                self._keep(data[last + 1 :])
                return LineBlock.joined(block, data.count(b"\n", 0, last) + 1), 0, last + 1
        lines, skipped, consumed = self.feed(data)
        return LineBlock(lines), skipped, consumed

    def flush(self) -> tuple[list[bytes], int]:
        """End of stream: the unterminated last line, if any, as ``(lines, skipped)``."""
        if self._discarding:
            self._discarding = False
            return [], 1
        if self._buf:
            line = bytes(self._buf)
            self._buf.clear()
            return [line], 0
        return [], 0

    def _keep(self, rest: bytes) -> None:
        if self._discarding or not rest:
            return
        if len(self._buf) + len(rest) > self._max:
            self.discard_current()
        else:
            self._buf += rest
