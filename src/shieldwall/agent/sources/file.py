"""Tail a log file by path, across restarts, ``kill -9`` and rotation (guarantee 2).

:class:`FileSource` reads raw bytes with ``pread`` from a file descriptor it keeps open, cuts
them into lines and hands them out in :class:`~shieldwall.agent.sources.base.Batch` es, each
with the :class:`~shieldwall.agent.sources.base.Position` just after its last line. A read
whose lines are all short enough is handed out as one block (a
:class:`~shieldwall.model.LineBlock`: the bytes up to its last newline, not split), which the
detector scans as it is.

Position
    ``(path, dev, inode, offset, fingerprint)``: the file the bytes come from, the byte
    offset just after the last consumed newline, and :func:`fingerprint` — sha256 over the
    first ``min(256, offset)`` bytes of that file and the last ``min(64, offset)`` bytes
    before ``offset``. A position is *valid* for an open file when the file is at least
    ``offset`` bytes long and its fingerprint at ``offset`` is the same.

Following the file while running (checked at every ``poll()``)
    * **append** — lines are returned once their newline is there; a trailing partial line
      waits for its newline.
    * **rename rotation** (``path`` now names another file): the old file is read through
      the descriptor we hold — lines its daemon writes to it after the rename, until its
      HUP, are not lost — until it has been quiet for ``rotate_grace`` seconds (or for a
      second once the new file has lines: its writer moved on); then we switch to the new
      file at offset 0. The old file's last line, if it never got its newline, is emitted
      at the switch.
    * **copytruncate** (same file, now shorter than what we read, or its first bytes
      changed): we look for the copy among the siblings of ``path`` (names starting with the
      file's stem, e.g. ``auth.log.1``, ``auth-20240101.log``; compressed files skipped) by
      content — a file whose fingerprint at our offset matches — finish the copy from our
      offset, then read ``path`` from 0. Without a copy we read ``path`` from 0.

      *Inherent copytruncate race:* lines written between the copy and the truncation are
      in neither file and are lost; nothing a reader does can recover them. Lines written
      before the copy are recovered from the copy even if we had not read them yet (as long
      as the copy is still uncompressed when we look).

Resuming from a stored position (first ``poll()`` of a new source)
    * ``path`` is the same file (dev, inode) and the position is valid: continue at
      ``offset``.
    * same file but no longer valid (shorter, or fingerprint differs — copytruncate while we
      were down, or a new file that reused the inode number): finish the copy found by
      content if any, then read ``path`` from 0.
    * ``path`` is another file or is missing (rotated while we were down): look for the old
      file by (dev, inode) among all files of the directory (then by content, as above),
      check its fingerprint, finish it from ``offset``, then read every generation rotated
      since — rotation names (``path.1``, ``path-20261201``, ``stem-20261201.ext``) modified
      after it, oldest first (``generations_read``) — then ``path`` from 0. If the old file
      is gone (deleted, compressed), ``lost_generations`` is counted and the generations
      modified after the stored position's ``mtime_ns`` are read before ``path``.
      Compressed generations are not read: ``generations_compressed`` counts them.

Limits
    * When more than one rotation happens between two polls while running, the
      generations in between are not read: we finish the file we held, then jump to
      ``path`` (at a poll every 50 ms, two rotations would have to fall between two polls).
    * Rotation into another directory (logrotate ``olddir``) is followed while running (we
      hold the descriptor) but cannot be found when resuming.
    * A file rewritten in place with identical first bytes and identical bytes before our
      offset is indistinguishable from the original.

Missing files are waited for: ``poll()`` returns ``None`` and ``missing`` is counted once
per absence. ``from_end=True`` starts at the last complete line of a file present at the
first poll, like ``tail -f`` (ignored when resuming); a file that appears later is read from
its start.

Counters (``FileSource.counters``): ``lines``, ``skipped`` (longer than ``max_line``),
``rotations``, ``truncations``, ``copies_followed`` (unread lines taken from a copytruncate
copy), ``lost_generations`` (resumed but the old file was gone), ``generations_read``,
``generations_compressed`` (rotated while down: read, or skipped compressed), ``missing``
(absences),
``errors`` (I/O errors; the last one is in ``last_error``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass, field

from shieldwall.agent.sources.base import Batch, Position
from shieldwall.lines import LineBlock, LineSplitter
from shieldwall.model import Counters

__all__ = ["HEAD_BYTES", "TAIL_BYTES", "Batch", "FileSource", "Position", "fingerprint"]

HEAD_BYTES = 256
"""Bytes at the start of a file covered by a position's fingerprint."""
TAIL_BYTES = 64
"""Bytes just before a position's offset covered by its fingerprint."""

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".lz", ".z", ".zip")
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
_MAX_STEPS = 16  # read/switch steps per poll (a poll follows at most a few rotations)

FileId = tuple[int, int]


def fingerprint(head: bytes, tail: bytes) -> str:
    """sha256 hex of ``head`` (the first ``min(HEAD_BYTES, offset)`` bytes of the file) and
    ``tail`` (the last ``min(TAIL_BYTES, offset)`` bytes before ``offset``)."""
    return hashlib.sha256(head + tail).hexdigest()


def fingerprint_at(fd: int, offset: int) -> str | None:
    """The fingerprint of the open file ``fd`` at ``offset``; ``None`` if it is shorter."""
    if os.fstat(fd).st_size < offset:
        return None
    hn = min(HEAD_BYTES, offset)
    tn = min(TAIL_BYTES, offset)
    head = os.pread(fd, hn, 0)
    tail = os.pread(fd, tn, offset - tn)
    if len(head) != hn or len(tail) != tn:
        return None
    return fingerprint(head, tail)


def _file_id(st: os.stat_result) -> FileId:
    return (st.st_dev, st.st_ino)


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


@dataclass(slots=True)
class _Acc:
    """What one poll gathered: usually the block of one read, else a few to concatenate."""

    parts: list[LineBlock] = field(default_factory=list)
    count: int = 0
    skipped: int = 0
    rotated: bool = False

    def add(self, lines: LineBlock, skipped: int) -> None:
        if lines.count:
            self.parts.append(lines)
            self.count += lines.count
        self.skipped += skipped

    def lines(self) -> LineBlock:
        return LineBlock.concat(self.parts)

    def empty(self) -> bool:
        return not self.count and not self.skipped and not self.rotated


class FileSource:
    """Lines of the log file at ``path``, following rotation; see the module docstring.

    ``start`` is the position stored by the caller (``None``: read from the start of the
    file, or from its end with ``from_end=True``). ``max_line`` bounds a line (longer ones
    are skipped and counted); ``chunk`` bounds the bytes read by one ``poll()``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        start: Position | None = None,
        *,
        max_line: int = 65536,
        chunk: int = 1 << 20,
        from_end: bool = False,
        rotate_grace: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = os.fspath(path)
        if not self._path or "\x00" in self._path:
            raise ValueError(f"invalid log path {self._path!r}")
        if start is not None and start.path != self._path:
            raise ValueError(f"position is for {start.path!r}, not for {self._path!r}")
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self._dir = os.path.dirname(self._path) or "."
        self._name = os.path.basename(self._path)
        self._stem = os.path.splitext(self._name)[0] or self._name
        self._start = start
        self._from_end = from_end
        self._chunk = chunk
        self._splitter = LineSplitter(max_line)
        self.counters = Counters()
        self.last_error: str | None = None
        self._fd: int | None = None
        self._id: FileId = (0, 0)
        self._offset = 0  # just after the last consumed newline
        self._read_pos = 0  # just after the last byte read (offset + pending partial line)
        self._head = b""  # first min(HEAD_BYTES, read_pos) bytes of the file
        self._recent = b""  # last min(TAIL_BYTES, read_pos) bytes before read_pos
        self._pos: Position | None = start
        self._missing = False
        self._ever_missing = False
        self._searched = False
        self._closed = False
        if rotate_grace < 0:
            raise ValueError(f"rotate_grace must be >= 0, got {rotate_grace}")
        self._grace = rotate_grace
        self._clock = clock
        self._quiet_since: float | None = None
        """When the renamed file we hold was last seen not growing (None: not renamed)."""
        self._mtime_ns: int | None = None
        self._generations: list[tuple[str, FileId]] = []
        """Files rotated while we were down, newer than the one we finish: read next, oldest
        first, before ``path``."""

    # -- public ------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    @property
    def position(self) -> Position | None:
        """Position after the last line handed out (``start`` until the file is opened)."""
        return self._pos

    @property
    def missing(self) -> bool:
        """True while ``path`` does not exist."""
        return self._missing

    @property
    def closed(self) -> bool:
        return self._closed

    def poll(self) -> Batch | None:
        """Read the complete lines available now, about ``chunk`` bytes at most.

        Returns ``None`` when there is nothing new. Without ``start``, the poll that opens
        the file returns a batch even without lines, so that the starting position (with
        ``from_end``, the end of the file) can be stored before anything else is read.

        Never raises on I/O errors: they are counted (``errors``) and kept in
        ``last_error``, and the lines read before the error are still returned.
        """
        if self._closed:
            raise ValueError("poll() on a closed FileSource")
        acc = _Acc()
        before = self._pos
        more = False
        try:
            if self._fd is not None or self._open_first(acc):
                more = self._pump(acc)
        except OSError as exc:
            self.counters.inc("errors")
            self.last_error = f"{self._path}: {exc}"
        pos = self._pos
        if pos is None or (acc.empty() and pos == before and not more):
            return None
        if acc.count:
            self.counters.inc("lines", acc.count)
        if acc.skipped:
            self.counters.inc("skipped", acc.skipped)
        return Batch(acc.lines(), pos, acc.skipped, acc.rotated)

    async def batches(self, poll_interval: float = 0.05) -> AsyncGenerator[Batch, None]:
        """Poll until closed, sleeping ``poll_interval`` seconds when there is nothing new.

        Reads are local and bounded by ``chunk``, so they run on the event loop.
        """
        last = self._pos
        while not self._closed:
            batch = self.poll()
            if batch is None:
                await asyncio.sleep(poll_interval)
                continue
            if (
                not batch.count
                and not batch.skipped
                and not batch.rotated
                and batch.position == last
            ):
                await asyncio.sleep(0)  # progress inside a long line: nothing to hand out yet
                continue
            last = batch.position
            yield batch

    def close(self) -> None:
        """Close the file. The position is the caller's to keep."""
        self._closed = True
        fd, self._fd = self._fd, None
        _close(fd)

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------

    def _pump(self, acc: _Acc) -> bool:
        """Read, following truncation and rotation; True if the read budget ran out."""
        budget = self._chunk
        for _ in range(_MAX_STEPS):
            self._check_truncation(acc)
            budget -= self._read(budget, acc)
            if budget <= 0:
                return True
            if not self._follow_rotation(acc):
                return False
        return False

    def _read(self, budget: int, acc: _Acc) -> int:
        fd = self._require_fd()
        start = self._read_pos
        data = os.pread(fd, budget, start)
        if not data:
            return 0
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        before = self._recent
        self._recent = (before + data[-TAIL_BYTES:])[-TAIL_BYTES:]
        self._read_pos = start + len(data)
        self._mtime_ns = os.fstat(fd).st_mtime_ns
        self._quiet_since = None  # it grew: its writer is still at it
        lines, skipped, consumed = self._splitter.feed_block(data)  # no split if it can help it
        acc.add(lines, skipped)
        if consumed:
            self._offset = start + consumed
            tail = (before + data[max(0, consumed - TAIL_BYTES) : consumed])[-TAIL_BYTES:]
            self._pos = self._position(tail)
        return len(data)

    def _position(self, tail: bytes) -> Position:
        head = self._head[: min(HEAD_BYTES, self._offset)]
        dev, inode = self._id
        return Position(
            self._path, dev, inode, self._offset, fingerprint(head, tail), self._mtime_ns
        )

    def _require_fd(self) -> int:
        if self._fd is None:  # pragma: no cover - internal invariant
            raise RuntimeError("no open file")
        return self._fd

    def _install(
        self, fd: int, offset: int, *, discard: bool = False, flush_into: _Acc | None = None
    ) -> None:
        """Make ``fd`` the current file, positioned at ``offset`` (a line start), closing the
        previous one. ``fd`` is owned from here on: closed if this fails.

        ``flush_into``: the previous file is left for good, so its unterminated last line
        (which will never end) goes into that batch.
        """
        try:
            st = os.fstat(fd)
            hn = min(HEAD_BYTES, offset)
            tn = min(TAIL_BYTES, offset)
            head = os.pread(fd, hn, 0)
            recent = os.pread(fd, tn, offset - tn)
        except BaseException:
            if fd != self._fd:
                _close(fd)
            raise
        if flush_into is not None:
            last, skipped = self._splitter.flush()
            flush_into.add(LineBlock(last), skipped)
        if self._fd is not None and self._fd != fd:
            _close(self._fd)
        self._fd = fd
        self._id = _file_id(st)
        self._mtime_ns = st.st_mtime_ns
        self._quiet_since = None
        self._offset = self._read_pos = offset
        self._head = head
        self._recent = recent
        self._splitter.reset()
        if discard:
            self._splitter.discard_current()
        self._pos = self._position(recent)

    # -- truncation and rotation -----------------------------------------------------

    def _check_truncation(self, acc: _Acc) -> None:
        fd = self._require_fd()
        truncated = os.fstat(fd).st_size < self._read_pos
        if not truncated and self._head:
            truncated = os.pread(fd, len(self._head), 0) != self._head
        if not truncated:
            return
        self.counters.inc("truncations")
        acc.rotated = True
        pos = self._pos
        copy = self._find_copy(pos, {self._id}) if pos is not None else None
        if copy is not None and pos is not None:
            self.counters.inc("copies_followed")
            self._install(copy, pos.offset)  # the partial line is read again from the copy
        else:
            self._install(fd, 0, flush_into=acc)

    def _follow_rotation(self, acc: _Acc) -> bool:
        """At the end of the current file: switch if ``path`` names another file now.

        True if the caller should keep reading (switched, or the old file grew meanwhile).
        """
        old = self._require_fd()
        if os.fstat(old).st_size > self._read_pos:
            self._quiet_since = None
            return True  # the file we hold grew while we read it
        if self._generations:
            return self._next_generation(acc)
        try:
            st = os.stat(self._path)
        except OSError:
            return False  # rotated away and not re-created yet: keep the old file
        if _file_id(st) == self._id:
            return False
        if not self._quiet_for_grace(st):
            return False  # its daemon may still write to it (until its HUP)
        try:
            new = os.open(self._path, _OPEN_FLAGS)
        except OSError:
            return False
        try:
            nst = os.fstat(new)
            grew = os.fstat(old).st_size > self._read_pos
        except BaseException:
            _close(new)
            raise
        if _file_id(nst) == self._id or not stat.S_ISREG(nst.st_mode) or grew:
            _close(new)
            return grew
        self._install(new, 0, flush_into=acc)
        acc.rotated = True
        self.counters.inc("rotations")
        return True

    def _quiet_for_grace(self, new: os.stat_result) -> bool:
        """Whether the renamed file we hold has been quiet long enough to leave it: for the
        grace period, or for a second once the new file has lines (its writer moved on)."""
        if self._grace <= 0:
            return True
        now = self._clock()
        if self._quiet_since is None:
            self._quiet_since = now
        quiet = now - self._quiet_since
        return quiet >= self._grace or (new.st_size > 0 and quiet >= min(self._grace, 1.0))

    def _next_generation(self, acc: _Acc) -> bool:
        """Read the next file rotated while we were down (from its start)."""
        path, want = self._generations.pop(0)
        fd = self._open_id(path, want)
        if fd is None:  # gone meanwhile (compressed, deleted)
            self.counters.inc("lost_generations")
            return True
        self._install(fd, 0, flush_into=acc)
        acc.rotated = True
        self.counters.inc("generations_read")
        return True

    def _open_id(self, path: str, want: FileId) -> int | None:
        """The file ``want`` (dev, inode), at ``path`` or wherever it moved in the folder."""
        for candidate in (path, *(p for p, st in self._siblings(by_name=False)
                                  if _file_id(st) == want)):  # fmt: skip
            try:
                fd = os.open(candidate, _OPEN_FLAGS)
            except OSError:
                continue
            try:
                if _file_id(os.fstat(fd)) == want:
                    return fd
            except OSError:
                pass
            _close(fd)
        return None

    def _find_generations(self, after_ns: int | None, exclude: set[FileId]) -> None:
        """The generations of ``path`` rotated while we were down: rotation names
        (``auth.log.1``, ``auth.log-20261201``, ``auth-20261201.log``) modified after
        ``after_ns``, oldest first. Compressed ones are not read: counted."""
        if after_ns is None:
            return
        found: list[tuple[int, str, FileId]] = []
        try:
            entries = list(os.scandir(self._dir))
        except OSError:
            return
        stem, ext = os.path.splitext(self._name)
        for entry in entries:
            name = entry.name
            if not (name.startswith((self._name + ".", self._name + "-"))
                    or (ext and name.startswith(stem + "-") and name.endswith(ext))):  # fmt: skip
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_mtime_ns <= after_ns:
                continue
            if name.lower().endswith(COMPRESSED_SUFFIXES):
                self.counters.inc("generations_compressed")
                continue
            if _file_id(st) not in exclude:
                found.append((st.st_mtime_ns, entry.path, _file_id(st)))
        self._generations = [(path, fid) for _, path, fid in sorted(found)]

    # -- opening and resuming --------------------------------------------------------

    def _open_path(self) -> tuple[int, os.stat_result] | None:
        try:
            fd = os.open(self._path, _OPEN_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            if not self._missing:
                self.counters.inc("missing")
            self._missing = self._ever_missing = True
            return None
        self._missing = False
        try:
            st = os.fstat(fd)
        except BaseException:
            _close(fd)
            raise
        if not stat.S_ISREG(st.st_mode):
            _close(fd)
            raise OSError(f"not a regular file: {self._path}")
        return fd, st

    def _open_first(self, acc: _Acc) -> bool:
        if self._start is not None:
            return self._resume(self._start, acc)
        opened = self._open_path()
        if opened is None:
            return False
        fd, st = opened
        offset, discard = 0, False
        if self._from_end and not self._ever_missing:
            try:
                offset, discard = self._last_line_start(fd, st.st_size)
            except BaseException:
                _close(fd)
                raise
        self._install(fd, offset, discard=discard)
        return True

    def _last_line_start(self, fd: int, size: int) -> tuple[int, bool]:
        """Where ``tail -f`` starts: after the last newline (keeping a partial last line)."""
        if size == 0:
            return 0, False
        n = min(size, self._splitter.max_line + 1)
        block = os.pread(fd, n, size - n)
        i = block.rfind(b"\n")
        if i >= 0:
            return size - n + i + 1, False
        if n == size:
            return 0, False
        return size, True  # inside a line already too long: drop its rest

    def _resume(self, start: Position, acc: _Acc) -> bool:
        opened = self._open_path()
        fd: int | None = None
        exclude: set[FileId] = set()
        if opened is not None:
            fd, st = opened
            exclude.add(_file_id(st))
            if _file_id(st) == (start.dev, start.inode):
                try:
                    valid = fingerprint_at(fd, start.offset) == start.fingerprint
                except BaseException:
                    _close(fd)
                    raise
                if valid:
                    self._install(fd, start.offset)
                else:  # truncated (copytruncate) while we were down, or inode number reused
                    self.counters.inc("truncations")
                    acc.rotated = True
                    copy = self._find_copy(start, exclude)
                    if copy is not None:
                        self.counters.inc("copies_followed")
                        _close(fd)
                        self._install(copy, start.offset)
                    else:  # or an inode number reused after rotations while we were down
                        self._find_generations(start.mtime_ns, exclude)
                        self._begin(fd)
                self._start = None
                return True
        # path is another file, or missing: ours was rotated while we were down.
        old: int | None = None
        if fd is not None or not self._searched:
            self._searched = True  # while path is missing, look once, then wait for it
            old = self._find_by_id(start, exclude)
            if old is None:
                old = self._find_copy(start, exclude)
        if old is not None:
            _close(fd)
            self._install(old, start.offset)
            exclude.add(self._id)
            self._find_generations(self._mtime_ns, exclude)
            self._start = None
            return True
        if fd is None:
            return False  # wait for the file to appear
        if start.offset > 0:
            self.counters.inc("lost_generations")
        acc.rotated = True
        self._find_generations(start.mtime_ns, exclude)
        self._begin(fd)
        self._start = None
        return True

    def _begin(self, fd: int) -> None:
        """Read ``path`` (open as ``fd``) from its start — after the generations found, the
        oldest first, if any."""
        while self._generations:
            path, want = self._generations.pop(0)
            first = self._open_id(path, want)
            if first is not None:
                _close(fd)
                self._install(first, 0)
                self.counters.inc("generations_read")
                return
            self.counters.inc("lost_generations")
        self._install(fd, 0)

    def _siblings(self, *, by_name: bool) -> Iterator[tuple[str, os.stat_result]]:
        """Regular, uncompressed files next to ``path`` (only rotation-like names if
        ``by_name``)."""
        try:
            entries = list(os.scandir(self._dir))
        except OSError:
            return
        for entry in entries:
            name = entry.name
            if name == self._name or name.lower().endswith(COMPRESSED_SUFFIXES):
                continue
            if by_name and not name.startswith(self._stem):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                yield entry.path, st

    def _open_valid(self, path: str, pos: Position, expect: FileId) -> int | None:
        """Open ``path`` if it is the file ``expect`` and ``pos`` is valid in it."""
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError:
            return None
        try:
            if _file_id(os.fstat(fd)) == expect and fingerprint_at(fd, pos.offset) == (
                pos.fingerprint
            ):
                return fd
        except OSError:
            pass
        _close(fd)
        return None

    def _find_by_id(self, pos: Position, exclude: set[FileId]) -> int | None:
        """The file ``pos`` points into, by (dev, inode), wherever it is in the directory."""
        want = (pos.dev, pos.inode)
        if want in exclude:
            return None
        for path, st in self._siblings(by_name=False):
            if _file_id(st) == want:
                return self._open_valid(path, pos, want)
        return None

    def _find_copy(self, pos: Position, exclude: set[FileId]) -> int | None:
        """A copy of the file ``pos`` points into (copytruncate), found by content."""
        if pos.offset == 0:
            return None  # nothing to recognise it by
        best: tuple[int, int] | None = None  # (mtime_ns, fd)
        for path, st in self._siblings(by_name=True):
            if _file_id(st) in exclude or st.st_size < pos.offset:
                continue
            fd = self._open_valid(path, pos, _file_id(st))
            if fd is None:
                continue
            if best is None or st.st_mtime_ns > best[0]:
                if best is not None:
                    _close(best[1])
                best = (st.st_mtime_ns, fd)
            else:
                _close(fd)
        return None if best is None else best[1]
