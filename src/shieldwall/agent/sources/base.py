"""The log source port: where the agent's lines come from.

Contract (guarantee 2 of ``DESIGN.md``: never lose or double-count a line):

* A source yields :class:`Batch` es of complete lines, as ``bytes`` without the newline. It
  never decodes: decoding is the detector's job. Binary garbage and invalid UTF-8 pass
  through untouched. A read whose lines all fit is handed out as the block it was
  (:meth:`LineSplitter.feed_block`, ``Batch.line_block``), split only if someone asks for
  ``Batch.lines``.
* Every batch carries the :class:`Position` just after its last line. The *caller* owns
  persistence: it processes the batch, then stores ``batch.position`` (together with the
  effects of the batch, in one transaction). A new source started from a stored position
  resumes exactly after the last line of that batch; started from an older position it
  replays from there. So the stored position alone defines exactly-once, whatever happens to
  the process in between (``kill -9`` included).
* Lines longer than ``max_line`` are skipped and counted in ``Batch.skipped``; their bytes are
  never held in memory as a whole (guarantee 6). The position moves past them.
* ``poll()`` is synchronous. It returns ``None`` when there is nothing new right now; it may
  return a batch without lines when the position moved (a skipped line, a rotation) or when
  it stopped at its per-call read budget with more to read — the caller just stores the
  position and polls again without sleeping. ``batches()`` is the async loop around it.
* A source owns its counters (``counters``, a :class:`~shieldwall.model.Counters`): lines,
  skipped lines, rotations, truncations, missing files, I/O errors. I/O errors never escape
  ``poll()``: they are counted, remembered in ``last_error`` and retried on the next poll.

Implementations: :mod:`shieldwall.agent.sources.file` (a log file, following rotation) and
:mod:`shieldwall.agent.sources.stdin` (a byte stream such as ``sys.stdin.buffer``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncGenerator, Mapping
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Protocol

from shieldwall.lines import LineBlock
from shieldwall.model import Counters

EMPTY_FINGERPRINT = hashlib.sha256(b"").hexdigest()
"""The fingerprint of nothing: a position at offset 0, or one that carries no fingerprint."""

_FIELDS = frozenset({"path", "dev", "inode", "offset", "fingerprint"})
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Position:
    """Where a source stands: just after the last line it handed out.

    * ``path`` — the configured path (for a file source, even while the bytes come from an
      older generation of that file, e.g. ``auth.log.1`` after a rotation).
    * ``dev``, ``inode`` — which file the offset is in.
    * ``offset`` — byte offset just after the last consumed newline (for the stdin source:
      the number of lines consumed).
    * ``fingerprint`` — sha256 hex identifying the content before ``offset`` (see
      :func:`shieldwall.agent.sources.file.fingerprint`), so that a file replaced in place,
      truncated and rewritten, or an inode number reused by a new file, is recognised.

    Plain values; :meth:`to_dict` / :meth:`from_dict` give a JSON-ready form for the agent's
    state.
    """

    path: str
    dev: int
    inode: int
    offset: int
    fingerprint: str = EMPTY_FINGERPRINT
    mtime_ns: int | None = field(default=None, compare=False)
    """The file's modification time when its bytes were last read: on a resume after
    rotations, the generations rotated since are those modified later (None: not known).
    Not part of a position's identity."""

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path or "\x00" in self.path:
            raise ValueError(f"position: path must be a non-empty string, got {self.path!r}")
        for name in ("dev", "inode", "offset"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"position: {name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.fingerprint, str) or not _HEX64.fullmatch(self.fingerprint):
            raise ValueError(
                f"position: fingerprint must be 64 lowercase hex digits, got {self.fingerprint!r}"
            )

    def to_dict(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {
            "path": self.path,
            "dev": self.dev,
            "inode": self.inode,
            "offset": self.offset,
            "fingerprint": self.fingerprint,
        }
        if self.mtime_ns is not None:
            out["mtime_ns"] = self.mtime_ns
        return out

    @classmethod
    def from_dict(cls, data: object) -> Position:
        """Rebuild a position from :meth:`to_dict` output; ``ValueError`` if malformed."""
        if not isinstance(data, Mapping):
            raise ValueError(f"position: expected a mapping, got {type(data).__name__}")
        keys = set(data) - {"mtime_ns"}
        if keys != _FIELDS:
            missing = sorted(str(k) for k in _FIELDS - keys)
            extra = sorted(str(k) for k in keys - _FIELDS)
            raise ValueError(f"position: missing keys {missing}, unknown keys {extra}")
        return cls(
            path=_str(data, "path"),
            dev=_int(data, "dev"),
            inode=_int(data, "inode"),
            offset=_int(data, "offset"),
            fingerprint=_str(data, "fingerprint"),
            mtime_ns=_int(data, "mtime_ns") if "mtime_ns" in data else None,
        )


def _str(data: Mapping[object, object], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"position: {key} must be a string, got {value!r}")
    return value


def _int(data: Mapping[object, object], key: str) -> int:
    value = data[key]
    if type(value) is not int:
        raise ValueError(f"position: {key} must be an integer, got {value!r}")
    return value


class Batch:
    """Lines read by one ``poll()`` (a value: frozen, equal by content).

    * ``lines`` — complete lines, without their newline, in file order.
    * ``position`` — just after the last line (or skipped line) of the batch.
    * ``skipped`` — lines longer than ``max_line`` passed over in this batch.
    * ``rotated`` — a rotation or truncation was followed during this batch (the lines before
      it came from the old file, the ones after from the new one).

    The lines may come as a :class:`~shieldwall.model.LineBlock` (``Batch(block, position)``):
    a source that read them as one block hands that out, and ``lines`` splits it only when
    asked (once). ``count`` and ``block`` (the lines joined by ``b"\\n"``) need no split;
    ``line_block`` is what ``Detector.feed_many`` scans without joining the lines again.
    """

    __slots__ = ("_lines", "position", "rotated", "skipped")
    __match_args__ = ("lines", "position", "skipped", "rotated")

    _lines: LineBlock
    position: Position
    skipped: int
    rotated: bool

    def __init__(
        self,
        lines: list[bytes] | LineBlock,
        position: Position,
        skipped: int = 0,
        rotated: bool = False,
    ) -> None:
        init = object.__setattr__
        init(self, "_lines", lines if isinstance(lines, LineBlock) else LineBlock(lines))
        init(self, "position", position)
        init(self, "skipped", skipped)
        init(self, "rotated", rotated)

    @property
    def lines(self) -> list[bytes]:
        """The lines as a list (split on first use if they came as a block, then kept)."""
        return self._lines.lines

    @property
    def count(self) -> int:
        """How many lines (``len(lines)``, without splitting them)."""
        return self._lines.count

    @property
    def block(self) -> bytes:
        """The lines joined by ``b"\\n"``, no trailing newline (no join if read as a block)."""
        return self._lines.block

    @property
    def line_block(self) -> LineBlock:
        """The lines in the form they came in: what to hand to ``Detector.feed_many``."""
        return self._lines

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Batch):
            return NotImplemented
        return (self._lines, self.position, self.skipped, self.rotated) == (
            other._lines,
            other.position,
            other.skipped,
            other.rotated,
        )

    def __repr__(self) -> str:
        return (
            f"Batch(lines={self.lines!r}, position={self.position!r}, "
            f"skipped={self.skipped!r}, rotated={self.rotated!r})"
        )

    def __reduce__(self) -> tuple[type[Batch], tuple[LineBlock, Position, int, bool]]:
        return Batch, (self._lines, self.position, self.skipped, self.rotated)


class LineSource(Protocol):
    """A source of log lines (see the module docstring for the contract)."""

    counters: Counters

    @property
    def position(self) -> Position | None:
        """The position after the last line handed out (``None`` before anything is known)."""
        ...

    def poll(self) -> Batch | None:
        """Read what is available now; ``None`` if nothing new."""
        ...

    def batches(self, poll_interval: float = 0.05) -> AsyncGenerator[Batch, None]:
        """Batches as they come, sleeping ``poll_interval`` seconds when idle."""
        ...

    def close(self) -> None:
        """Release the source's resources; the position is the caller's to keep."""
        ...
