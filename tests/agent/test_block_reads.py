"""A read's complete lines are handed out as one block (``LineSplitter.feed_block``,
``Batch.line_block``) and scanned as it is: the same lines, skipped counts, positions,
counters, hits, tallies and alerts as the split path (``LineSplitter.feed``), which stays the
reference here."""

from __future__ import annotations

import copy
import io
import os
import pickle
import random
import shutil
import tempfile
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shieldwall.agent.sources import Batch, FileSource, LineSplitter, Position, StdinSource
from shieldwall.detect import Detector, builtin_rule
from shieldwall.lines import LineBlock

NOW = datetime(2026, 3, 20, tzinfo=UTC)
RULES = [builtin_rule("sshd"), builtin_rule("sshd-success")]


class ListSplitter(LineSplitter):
    """The split path, as every read took it before blocks: ``feed``, then a list."""

    __slots__ = ()

    def feed_block(self, data: bytes) -> tuple[LineBlock, int, int]:
        lines, skipped, consumed = self.feed(data)
        return LineBlock(lines), skipped, consumed


# -- the splitter --------------------------------------------------------------------------

FAIL = b"Mar  1 00:00:0%d h sshd[1]: Failed password for root from 203.0.113.%d port 2 ssh2"
PIECES = [
    b"\n",
    b"\n\n",
    b"x",
    b"abcdefg",
    b"y" * 15,
    b"\r",
    b"\x00",
    b"\xff",
    "\u00e9".encode(),
    FAIL % (1, 7) + b"\n",
    FAIL % (2, 8) + b"\n",
    b"Mar  1 00:00:03 h sshd[1]: Accepted password for ann from 198.51.100.4 port 2 ssh2\n",
]
pieces = st.sampled_from(PIECES)
streams = st.lists(pieces, max_size=80).map(b"".join)


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` in reads of the given sizes, in turn."""
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.append(data[i : i + n])
        i, k = i + n, k + 1
    return out


@settings(max_examples=400, derandomize=True, database=None)
@given(
    data=streams,
    sizes=st.lists(st.integers(1, 200), min_size=1, max_size=6),
    max_line=st.sampled_from([1, 2, 7, 8, 14, 15, 16, 30, 81, 82, 83, 100, 65536]),
)
@example(data=b"abcd\nabcdefgh\nab", sizes=[3], max_line=4)  # exactly at max_line, and over
@example(data=b"ab" + b"c" * 6 + b"\nde\nf", sizes=[2, 9], max_line=8)  # carried over: 2 + 6
@example(data=b"ab" + b"c" * 7 + b"\nde\nf", sizes=[2, 9], max_line=8)  # carried over: 2 + 7
@example(data=b"x" * 20 + b"\nab\ncd\n", sizes=[7], max_line=8)  # the end of a skipped line
def test_feed_block_equals_feed(data: bytes, sizes: list[int], max_line: int) -> None:
    block, split = LineSplitter(max_line), LineSplitter(max_line)
    for chunk in cut(data, sizes):
        got, skipped, consumed = block.feed_block(chunk)
        want = split.feed(chunk)
        assert got.count == len(want[0])  # the count is trusted, never derived: check it
        assert got.block == b"\n".join(want[0])
        assert (got.lines, skipped, consumed) == want
        assert (block.pending, block.discarding) == (split.pending, split.discarding)
    assert block.flush() == split.flush()


def test_a_read_of_short_lines_is_kept_as_it_came() -> None:
    sp = LineSplitter(8)
    assert sp.feed_block(b"ab") == (LineBlock(), 0, 0)
    lines, skipped, consumed = sp.feed_block(b"c\n12\nd\nef")
    assert (lines.block, lines.count, skipped, consumed) == (b"abc\n12\nd", 3, 0, 7)
    assert lines._lines is None  # not split: the bytes read, the pending "ab" in front
    assert sp.pending == 2
    lines, skipped, consumed = sp.feed_block(b"g\n123456789\nh\n")  # one too long: split
    assert (lines.lines, skipped, consumed) == ([b"efg", b"h"], 1, 14)
    assert sp.pending == 0


# -- the file source and the detector, block against split ---------------------------------

appends = st.lists(pieces, min_size=1, max_size=150).map(b"".join)
OPERATIONS = (
    ["append"] * 5 + ["poll"] * 2 + ["drain", "rotate", "copytruncate", "truncate", "restart"]
)
operations = st.lists(st.tuples(st.sampled_from(OPERATIONS), appends), min_size=1, max_size=25)


def summary(detector: Detector, lines: Any) -> Any:
    found = detector.feed_many(lines, NOW, hits=False, tally=True)
    assert found.tally is not None
    tally = sorted((t.rule, str(t.source), t.count, t.first, t.last) for t in found.tally.values())
    return tally, [repr(a) for a in found.alerts], dict(detector.counters.values)


class Pair:
    """Two file sources tailing one log — one reading blocks, one splitting every read — and
    a detector behind each, as the agent runs them."""

    def __init__(self, directory: Path, chunk: int, max_line: int, det_max: int) -> None:
        self.path = directory / "app.log"
        self.fh: BinaryIO = open(self.path, "ab", buffering=0)  # noqa: SIM115
        self.chunk, self.max_line = chunk, max_line
        self.stored: Position | None = None
        self.block = self.open(None, split=False)
        self.split = self.open(None, split=True)
        self.lines = self.skipped = 0  # handed out by the current sources
        self.det_block = Detector(RULES, max_line=det_max)
        self.det_split = Detector(RULES, max_line=det_max)

    def open(self, start: Position | None, *, split: bool) -> FileSource:
        src = FileSource(self.path, start, chunk=self.chunk, max_line=self.max_line)
        if split:
            src._splitter = ListSplitter(self.max_line)
        return src

    def poll(self) -> bool:
        got, want = self.block.poll(), self.split.poll()
        assert (got is None) == (want is None)
        if got is None or want is None:
            return False
        assert got.count == len(want.lines)
        assert got.block == b"\n".join(want.lines)
        assert got == want
        assert (got.lines, got.position, got.skipped, got.rotated) == (
            want.lines,
            want.position,
            want.skipped,
            want.rotated,
        )
        self.lines += len(want.lines)
        self.skipped += want.skipped
        assert self.block.counters.get("lines") == self.lines
        assert self.block.counters.get("skipped") == self.skipped
        assert self.block.counters == self.split.counters
        joined = LineBlock.joined(got.block, got.count)  # as read: not split by the asserts
        assert summary(self.det_block, joined) == summary(self.det_split, want.lines)
        self.stored = got.position
        return True

    def drain(self) -> None:
        for _ in range(10_000):
            if not self.poll():
                return
        raise AssertionError("poll() never returned None")

    def shift(self) -> Path:
        n = 1
        while self.path.with_name(f"app.log.{n}").exists():
            n += 1
        for i in range(n - 1, 0, -1):
            os.rename(self.path.with_name(f"app.log.{i}"), self.path.with_name(f"app.log.{i + 1}"))
        return self.path.with_name("app.log.1")

    def reopen(self) -> None:
        self.fh.close()
        self.fh = open(self.path, "ab", buffering=0)  # noqa: SIM115

    def run(self, name: str, arg: object) -> None:
        if name == "append":
            assert isinstance(arg, bytes)
            self.fh.write(arg)
        elif name == "poll":
            self.poll()
        elif name == "drain":
            self.drain()
        elif name == "rotate":
            os.rename(self.path, self.shift())
            self.reopen()
        elif name == "copytruncate":
            shutil.copyfile(self.path, self.shift())
            os.truncate(self.path, 0)
        elif name == "truncate":
            os.truncate(self.path, 0)
        elif name == "restart":
            self.block.close()
            self.split.close()
            self.block = self.open(self.stored, split=False)
            self.split = self.open(self.stored, split=True)
            self.lines = self.skipped = 0

    def close(self) -> None:
        self.block.close()
        self.split.close()
        self.fh.close()


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    ops=operations,
    chunk=st.sampled_from([1, 5, 16, 100, 1 << 20]),
    max_line=st.sampled_from([8, 15, 16, 90, 65536]),
    det_max=st.sampled_from([60, 82, 65536]),
)
@example(  # a rotation in the middle of a poll: two reads joined into one batch
    ops=[
        ("append", FAIL % (1, 7) + b"\n" + FAIL % (2, 7)),
        ("rotate", None),
        ("append", FAIL % (3, 7) + b"\n" + FAIL % (4, 7) + b"\n"),
        ("drain", None),
    ],
    chunk=1 << 20,
    max_line=65536,
    det_max=65536,
)
def test_file_source_blocks_equal_split_reads(
    ops: list[tuple[str, object]], chunk: int, max_line: int, det_max: int
) -> None:
    with tempfile.TemporaryDirectory() as d:
        pair = Pair(Path(d), chunk, max_line, det_max)
        try:
            for name, arg in ops:
                pair.run(name, arg)
            pair.drain()
        finally:
            pair.close()


@pytest.mark.parametrize("seed", range(16))
def test_file_source_blocks_equal_split_reads_at_length(seed: int) -> None:
    """Longer runs than the property test's: thousands of lines, alerts, every operation."""
    rng = random.Random(seed)
    chunk = rng.choice([7, 100, 4096, 1 << 20])
    max_line = rng.choice([16, 90, 65536])
    det_max = rng.choice([60, 82, 65536])
    with tempfile.TemporaryDirectory() as d:
        pair = Pair(Path(d), chunk, max_line, det_max)
        try:
            for _ in range(40):
                data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 400)))
                pair.run(rng.choice(OPERATIONS), data)
            pair.drain()
        finally:
            pair.close()


def test_the_agent_path_scans_what_it_read_without_a_split(tmp_path: Path) -> None:
    """One read, one block: the batch is never split, from the read to the C scan."""
    log = tmp_path / "auth.log"
    log.write_bytes(b"".join(FAIL % (i, 7) + b"\n" for i in range(9)) + b"partial")
    with FileSource(log) as src:
        batch = src.poll()
    assert batch is not None
    assert batch.count == 9
    detector = Detector(RULES)
    found = detector.feed_many(batch.line_block, NOW, hits=False, tally=True)
    assert batch.line_block._lines is None
    assert found.tally is not None
    assert [t.count for t in found.tally.values()] == [9]
    assert detector.counters.get("lines") == 9
    assert batch.lines == [FAIL % (i, 7) for i in range(9)]  # split when asked


def test_rotation_and_truncation_batches_are_blocks_too(tmp_path: Path) -> None:
    """Several reads in one poll (a rename rotation, the old file's unterminated last line
    flushed at the switch) make one batch of every line, in order."""
    with tempfile.TemporaryDirectory() as d:
        pair = Pair(Path(d), 1 << 20, 65536, 65536)
        try:
            pair.run("append", b"a\nb\nlast-of-old")
            pair.run("poll", None)
            pair.run("rotate", None)
            pair.run("append", b"c\nd\n")
            got = pair.block.poll()
            assert got is not None
            assert got.lines == [b"last-of-old", b"c", b"d"]
            assert got.rotated
            assert got.position.offset == 4
        finally:
            pair.close()


@settings(max_examples=200, derandomize=True, database=None)
@given(
    data=streams,
    chunk=st.integers(1, 64),
    max_line=st.sampled_from([1, 8, 16, 82, 65536]),
)
def test_stdin_blocks_equal_split_reads(data: bytes, chunk: int, max_line: int) -> None:
    block = StdinSource(io.BytesIO(data), chunk=chunk, max_line=max_line)
    split = StdinSource(io.BytesIO(data), chunk=chunk, max_line=max_line)
    split._splitter = ListSplitter(max_line)
    while not block.eof:
        got, want = block.poll(), split.poll()
        assert got == want
        if got is not None and want is not None:
            assert got.count == len(want.lines)
            assert got.lines == want.lines
    assert split.eof
    assert block.counters == split.counters
    assert block.position == split.position


# -- Batch: a value, whatever form its lines came in ----------------------------------------


def test_batch_is_a_value_in_either_form() -> None:
    pos = Position("/var/log/x", 1, 2, 12)
    listed = Batch([b"one", b"", b"three"], pos, 1, True)
    joined = Batch(LineBlock.joined(b"one\n\nthree", 3), pos, 1, True)
    assert listed == joined
    assert joined.count == 3
    assert joined.block == listed.block == b"one\n\nthree"
    assert (
        repr(joined)
        == repr(listed)
        == (f"Batch(lines=[b'one', b'', b'three'], position={pos!r}, skipped=1, rotated=True)")
    )
    assert joined != Batch([b"one", b"", b"three"], pos, 0, True)
    assert joined != Batch([b"one", b"three"], pos, 1, True)
    assert Batch(lines=[], position=pos) == Batch(LineBlock.joined(b"", 0), pos)
    assert Batch([b""], pos) != Batch([], pos)
    assert copy.copy(joined) == listed
    assert pickle.loads(pickle.dumps(joined)) == listed  # noqa: S301 - our own bytes
    match joined:
        case Batch(lines, position, skipped, rotated):
            assert (lines, position, skipped, rotated) == ([b"one", b"", b"three"], pos, 1, True)
    with pytest.raises(FrozenInstanceError):
        joined.skipped = 2
    with pytest.raises(FrozenInstanceError):
        del joined.position
    with pytest.raises(TypeError, match="unhashable"):
        hash(joined)
