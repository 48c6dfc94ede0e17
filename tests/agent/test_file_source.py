"""FileSource: no line lost or read twice across restarts, kill -9 and rotation (guarantee 2),
bad input skipped and counted (guarantee 6). Also the stdin source and the Position format."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shieldwall.agent.sources import (
    Batch,
    FileSource,
    LineSource,
    LineSplitter,
    Position,
    StdinSource,
)
from shieldwall.agent.sources.base import EMPTY_FINGERPRINT

# -- helpers -------------------------------------------------------------------------------


class Writer:
    """A daemon writing a log with O_APPEND; keeps its descriptor across renames like one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: BinaryIO = open(path, "ab", buffering=0)  # noqa: SIM115

    def write(self, *lines: bytes) -> None:
        self.fh.write(b"".join(line + b"\n" for line in lines))

    def raw(self, data: bytes) -> None:
        self.fh.write(data)

    def reopen(self) -> None:
        """SIGHUP: close and open ``path`` again (creating it)."""
        self.fh.close()
        self.fh = open(self.path, "ab", buffering=0)  # noqa: SIM115

    def close(self) -> None:
        self.fh.close()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Writer]:
    w = Writer(tmp_path / "app.log")
    yield w
    w.close()


def drain(src: FileSource, limit: int = 100_000) -> tuple[list[bytes], list[Batch]]:
    """Poll until there is nothing new; the lines and the batches."""
    batches: list[Batch] = []
    for _ in range(limit):
        batch = src.poll()
        if batch is None:
            return [line for b in batches for line in b.lines], batches
        batches.append(batch)
    raise AssertionError("poll() never returned None")


def copytruncate(path: Path, to: Path) -> None:
    shutil.copyfile(path, to)
    os.truncate(path, 0)


def ident(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


# -- appending -----------------------------------------------------------------------------


def test_reads_complete_lines_and_holds_a_partial_one(log: Writer) -> None:
    log.write(b"one", b"two")
    log.raw(b"thr")
    with FileSource(log.path) as src:
        batch = src.poll()
        assert batch is not None
        assert batch.lines == [b"one", b"two"]
        assert batch.position.offset == len(b"one\ntwo\n")
        assert batch.skipped == 0
        assert not batch.rotated
        assert src.poll() is None
        log.raw(b"ee")
        assert src.poll() is None
        log.raw(b"\nfour\n")
        assert drain(src)[0] == [b"three", b"four"]
        assert src.counters.get("lines") == 4


def test_empty_lines_are_lines(log: Writer) -> None:
    log.raw(b"\n\nx\n\n")
    with FileSource(log.path) as src:
        assert drain(src)[0] == [b"", b"", b"x", b""]


def test_binary_garbage_and_invalid_utf8_pass_through(log: Writer) -> None:
    garbage = [
        bytes(b for b in range(256) if b != 0x0A),
        b"\xff\xfe\x00\x00",
        b"\xc3\x28 invalid utf-8 \xed\xa0\x80",
        b"crlf\r",
        b"\x00",
    ]
    log.write(*garbage)
    with FileSource(log.path) as src:
        assert drain(src)[0] == garbage


def test_poll_is_bounded_by_chunk(log: Writer) -> None:
    lines = [b"%05d" % i for i in range(1000)]
    log.write(*lines)
    with FileSource(log.path, chunk=600) as src:
        first = src.poll()
        assert first is not None
        assert 0 < len(first.lines) <= 100
        got, batches = drain(src)
        assert first.lines + got == lines
        assert len(batches) >= 9


# -- rename rotation ---------------------------------------------------------------------


def test_rename_rotation_keeps_lines_written_to_the_old_file_after_the_rename(
    log: Writer,
) -> None:
    log.write(b"a1")
    with FileSource(log.path) as src:
        assert drain(src)[0] == [b"a1"]
        old = ident(log.path)
        os.rename(log.path, log.path.with_name("app.log.1"))
        log.write(b"a2", b"a3")  # the daemon has not reopened yet
        log.raw(b"a4-never-ends")
        log.reopen()
        log.write(b"b1")
        got, batches = drain(src)
        assert got == [b"a2", b"a3", b"a4-never-ends", b"b1"]
        assert batches[0].rotated
        assert (batches[-1].position.dev, batches[-1].position.inode) == ident(log.path)
        assert (batches[-1].position.dev, batches[-1].position.inode) != old
        assert src.counters.get("rotations") == 1


def test_rename_rotation_finishes_the_old_file_even_if_it_grows_at_the_last_moment(
    log: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon writes to the old file between our last read and our look at ``path``."""
    log.write(b"a1")
    with FileSource(log.path) as src:
        assert drain(src)[0] == [b"a1"]
        os.rename(log.path, log.path.with_name("app.log.1"))
        log.write(b"a2")
        old_fh = log.fh
        log.fh = open(log.path, "ab", buffering=0)  # noqa: SIM115
        log.write(b"b1")
        real_stat = os.stat
        late = [b"a3-late\n"]

        def stat_and_write(path: str, *args: Any, **kwargs: Any) -> os.stat_result:
            if late and path == str(log.path):
                old_fh.write(late.pop())
            return real_stat(path, *args, **kwargs)

        monkeypatch.setattr(os, "stat", stat_and_write)
        try:
            assert drain(src)[0] == [b"a2", b"a3-late", b"b1"]
        finally:
            monkeypatch.undo()
            old_fh.close()


def test_rename_rotation_waits_while_the_new_file_does_not_exist(log: Writer) -> None:
    log.write(b"a1")
    with FileSource(log.path) as src:
        assert drain(src)[0] == [b"a1"]
        os.rename(log.path, log.path.with_name("app.log.1"))
        assert src.poll() is None
        log.write(b"a2")
        assert drain(src)[0] == [b"a2"]
        assert not src.missing
        log.reopen()
        log.write(b"b1")
        assert drain(src)[0] == [b"b1"]


def test_rename_rotation_with_delete(log: Writer) -> None:
    log.write(b"a1")
    with FileSource(log.path) as src:
        assert drain(src)[0] == [b"a1"]
        log.write(b"a2")
        os.unlink(log.path)
        log.reopen()
        log.write(b"b1")
        assert drain(src)[0] == [b"a2", b"b1"]


def test_two_rotations_with_a_poll_between(log: Writer) -> None:
    log.write(b"a")
    with FileSource(log.path) as src:
        assert drain(src)[0] == [b"a"]
        for gen in (b"b", b"c"):
            log.write(gen + b"-old")
            one = log.path.with_name("app.log.1")
            if one.exists():
                os.rename(one, log.path.with_name("app.log.2"))
            os.rename(log.path, one)
            log.reopen()
            log.write(gen + b"-new")
            assert drain(src)[0] == [gen + b"-old", gen + b"-new"]
        assert src.counters.get("rotations") == 2


# -- copytruncate --------------------------------------------------------------------------


def test_copytruncate_then_shorter_content(log: Writer) -> None:
    log.write(b"line-1 long enough", b"line-2 long enough")
    with FileSource(log.path) as src:
        assert len(drain(src)[0]) == 2
        copytruncate(log.path, log.path.with_name("app.log.1"))
        log.write(b"x")
        got, batches = drain(src)
        assert got == [b"x"]
        assert batches[0].rotated
        assert src.counters.get("truncations") == 1


def test_copytruncate_then_longer_content_is_caught_by_the_fingerprint(log: Writer) -> None:
    log.write(b"2024-01-01 a")
    with FileSource(log.path) as src:
        assert drain(src)[0] == [b"2024-01-01 a"]
        copytruncate(log.path, log.path.with_name("app.log.1"))
        new = [b"2024-01-02 b", b"2024-01-02 c", b"2024-01-02 d"]
        log.write(*new)  # now longer than what we had read
        assert drain(src)[0] == new


def test_copytruncate_recovers_unread_lines_from_the_copy(log: Writer) -> None:
    log.write(b"2024-01-01 a")
    with FileSource(log.path) as src:
        assert drain(src)[0] == [b"2024-01-01 a"]
        log.write(b"2024-01-01 b", b"2024-01-01 c")  # not read before the copy
        copytruncate(log.path, log.path.with_name("app.log.1"))
        log.write(b"2024-01-02 d")
        assert drain(src)[0] == [b"2024-01-01 b", b"2024-01-01 c", b"2024-01-02 d"]
        assert src.counters.get("copies_followed") == 1


def test_copytruncate_without_a_copy_reads_from_zero(log: Writer) -> None:
    log.write(b"2024-01-01 a")
    with FileSource(log.path) as src:
        assert drain(src)[0] == [b"2024-01-01 a"]
        log.write(b"2024-01-01 lost")  # copied, then the copy was compressed: lost
        os.truncate(log.path, 0)
        log.path.with_name("app.log.1.gz").write_bytes(b"\x1f\x8b 2024-01-01 a\n")
        log.write(b"2024-01-02 d")
        assert drain(src)[0] == [b"2024-01-02 d"]


# -- restart -------------------------------------------------------------------------------


def test_resume_exactly_after_the_last_batch_and_replay_from_an_older_one(log: Writer) -> None:
    log.write(b"l1", b"l2")
    src = FileSource(log.path)
    first = src.poll()
    assert first is not None
    assert first.lines == [b"l1", b"l2"]
    log.write(b"l3", b"l4")
    second = src.poll()
    assert second is not None
    assert second.lines == [b"l3", b"l4"]
    log.raw(b"l5-partial")
    assert src.poll() is None
    del src  # kill -9: no close, nothing flushed anywhere

    stored = json.loads(json.dumps(second.position.to_dict()))
    with FileSource(log.path, Position.from_dict(stored)) as again:
        assert again.position == second.position
        assert again.poll() is None
        log.raw(b"\nl6\n")
        assert drain(again)[0] == [b"l5-partial", b"l6"]

    with FileSource(log.path, first.position) as older:  # an older stored position replays
        assert drain(older)[0] == [b"l3", b"l4", b"l5-partial", b"l6"]


@pytest.mark.parametrize("rotated_name", ["app.log-20240102", "archived"])
def test_resume_after_rotation_while_down_finds_the_old_file_by_inode(
    log: Writer, rotated_name: str
) -> None:
    log.write(b"a1")
    with FileSource(log.path) as src:
        pos = drain(src)[1][-1].position
    log.write(b"a2", b"a3")  # written while we were down
    os.rename(log.path, log.path.with_name(rotated_name))
    log.reopen()
    log.write(b"b1")
    log.path.with_name("app.log.2.gz").write_bytes(b"\x1f\x8b garbage")
    with FileSource(log.path, pos) as src:
        got, batches = drain(src)
        assert got == [b"a2", b"a3", b"b1"]
        assert batches[-1].rotated
        assert (batches[-1].position.dev, batches[-1].position.inode) == ident(log.path)


def test_resume_after_rotation_while_down_with_the_new_file_not_there_yet(log: Writer) -> None:
    log.write(b"a1")
    with FileSource(log.path) as src:
        pos = drain(src)[1][-1].position
    os.rename(log.path, log.path.with_name("app.log.1"))
    log.write(b"a2")
    with FileSource(log.path, pos) as src:
        assert drain(src)[0] == [b"a2"]
        assert src.missing
        log.reopen()
        log.write(b"b1")
        assert drain(src)[0] == [b"b1"]


def test_resume_when_the_old_file_is_gone_reads_the_new_one_and_counts(log: Writer) -> None:
    log.write(b"a1")
    with FileSource(log.path) as src:
        pos = drain(src)[1][-1].position
    os.rename(log.path, log.path.with_name("app.log.1"))
    log.reopen()
    os.unlink(log.path.with_name("app.log.1"))
    log.write(b"b1")
    with FileSource(log.path, pos) as src:
        assert drain(src)[0] == [b"b1"]
        assert src.counters.get("lost_generations") == 1


def test_resume_after_copytruncate_while_down(log: Writer) -> None:
    log.write(b"2024-01-01 a")
    with FileSource(log.path) as src:
        pos = drain(src)[1][-1].position
    log.write(b"2024-01-01 b")
    copytruncate(log.path, log.path.with_name("app.log.1"))
    log.write(b"2024-01-02 c")
    with FileSource(log.path, pos) as src:
        assert drain(src)[0] == [b"2024-01-01 b", b"2024-01-02 c"]


def test_resume_on_a_shorter_file_without_copy_reads_from_zero(log: Writer) -> None:
    log.write(b"2024-01-01 a", b"2024-01-01 b")
    with FileSource(log.path) as src:
        pos = drain(src)[1][-1].position
    os.truncate(log.path, 0)
    log.write(b"c")
    with FileSource(log.path, pos) as src:
        assert drain(src)[0] == [b"c"]
        assert src.counters.get("truncations") == 1


def test_resume_rejects_a_same_inode_file_with_other_content(log: Writer) -> None:
    """An inode number reused by a new file, or a file rewritten in place past our offset."""
    log.write(b"new content, longer than the old offset")
    dev, inode = ident(log.path)
    stale = Position(str(log.path), dev, inode, 4, "0" * 64)
    with FileSource(log.path, stale) as src:
        assert drain(src)[0] == [b"new content, longer than the old offset"]


def test_position_must_be_for_this_path(log: Writer, tmp_path: Path) -> None:
    other = Position(str(tmp_path / "other.log"), 1, 2, 0)
    with pytest.raises(ValueError, match=r"other\.log"):
        FileSource(log.path, other)


# -- bad input -----------------------------------------------------------------------------


def test_huge_line_is_skipped_counted_and_never_held(log: Writer) -> None:
    log.write(b"before")
    for _ in range(10):
        log.raw(b"x" * (1 << 20))
    log.raw(b"\nafter\n")
    with FileSource(log.path) as src:
        tracemalloc.start()
        try:
            got, batches = drain(src)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert got == [b"before", b"after"]
        assert sum(b.skipped for b in batches) == 1
        assert src.counters.get("skipped") == 1
        assert peak < 4 << 20  # chunk is 1 MiB; the line is 10 MiB
        assert batches[-1].position.offset == log.path.stat().st_size


def test_huge_line_still_being_written(log: Writer) -> None:
    with FileSource(log.path, max_line=8, chunk=5) as src:
        log.raw(b"ok\n0123456789abc")
        assert drain(src)[0] == [b"ok"]
        log.raw(b"def")
        assert drain(src)[0] == []
        log.raw(b"ghi\n12345678\n123456789\nend\n")
        got, batches = drain(src)
        assert got == [b"12345678", b"end"]
        assert sum(b.skipped for b in batches) == 2


def test_splitter_limits() -> None:
    sp = LineSplitter(3)
    assert sp.feed(b"abc\nabcd\nab") == ([b"abc"], 1, 9)
    assert sp.feed(b"c") == ([], 0, 0)
    assert sp.pending == 3
    assert sp.feed(b"d") == ([], 0, 0)
    assert sp.discarding
    assert sp.feed(b"e\nx") == ([], 1, 2)
    assert sp.flush() == ([b"x"], 0)
    with pytest.raises(ValueError, match="max_line"):
        LineSplitter(0)


# -- missing files, from_end, errors ------------------------------------------------------


def test_missing_file_is_waited_for_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "later.log"
    with FileSource(path, from_end=True) as src:
        assert src.poll() is None
        assert src.poll() is None
        assert src.missing
        assert src.counters.get("missing") == 1
        assert src.position is None
        w = Writer(path)
        try:
            w.write(b"first")  # appeared after we started: read from its start
            assert drain(src)[0] == [b"first"]
            assert not src.missing
        finally:
            w.close()


def test_from_end_starts_at_the_last_complete_line(log: Writer) -> None:
    log.write(b"old1", b"old2")
    log.raw(b"par")
    with FileSource(log.path, from_end=True) as src:
        assert src.poll() is not None  # opened: the position is known
        assert drain(src)[0] == []
        log.raw(b"tial\n")
        log.write(b"new")
        assert drain(src)[0] == [b"partial", b"new"]


def test_a_directory_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "dir.log").mkdir()
    with FileSource(tmp_path / "dir.log") as src:
        assert src.poll() is None
        assert src.counters.get("errors") == 1
        assert src.last_error is not None
        assert "not a regular file" in src.last_error


def test_closed_source_refuses_to_poll(log: Writer) -> None:
    src = FileSource(log.path)
    src.close()
    src.close()
    with pytest.raises(ValueError, match="closed"):
        src.poll()


async def test_batches_async(log: Writer) -> None:
    src: LineSource = FileSource(log.path)
    log.write(b"a", b"b")
    agen = src.batches(poll_interval=0.001)
    try:
        first = await asyncio.wait_for(anext(agen), 5)
        assert first.lines == [b"a", b"b"]
        log.write(b"c")
        second = await asyncio.wait_for(anext(agen), 5)
        assert second.lines == [b"c"]
    finally:
        await agen.aclose()
        src.close()


# -- Position ------------------------------------------------------------------------------


def test_position_round_trips_through_json() -> None:
    pos = Position("/var/log/auth.log", 2049, 131, 4096, "ab" * 32)
    assert Position.from_dict(json.loads(json.dumps(pos.to_dict()))) == pos


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "x",
        {},
        {"path": "/a", "dev": 1, "inode": 2, "offset": 3},
        {"path": "/a", "dev": 1, "inode": 2, "offset": 3, "fingerprint": "0" * 64, "x": 1},
        {"path": "", "dev": 1, "inode": 2, "offset": 3, "fingerprint": "0" * 64},
        {"path": 5, "dev": 1, "inode": 2, "offset": 3, "fingerprint": "0" * 64},
        {"path": "/a", "dev": "1", "inode": 2, "offset": 3, "fingerprint": "0" * 64},
        {"path": "/a", "dev": 1, "inode": True, "offset": 3, "fingerprint": "0" * 64},
        {"path": "/a", "dev": 1, "inode": 2, "offset": -3, "fingerprint": "0" * 64},
        {"path": "/a", "dev": 1, "inode": 2, "offset": 3.0, "fingerprint": "0" * 64},
        {"path": "/a", "dev": 1, "inode": 2, "offset": 3, "fingerprint": "0" * 63},
        {"path": "/a", "dev": 1, "inode": 2, "offset": 3, "fingerprint": "G" * 64},
        {"path": "/a", "dev": 1, "inode": 2, "offset": 3, "fingerprint": None},
        {"path": "/a\x00", "dev": 1, "inode": 2, "offset": 3, "fingerprint": "0" * 64},
    ],
)
def test_position_from_dict_rejects_malformed_input(data: object) -> None:
    with pytest.raises(ValueError, match="position"):
        Position.from_dict(data)


# -- stdin ---------------------------------------------------------------------------------


def test_stdin_source_counts_lines_and_ends_with_the_last_partial_line() -> None:
    stream = io.BytesIO(b"a\n\xff\xfe\n" + b"y" * 100 + b"\nlast")
    src = StdinSource(stream, max_line=10, chunk=4)
    got: list[bytes] = []
    skipped = 0
    while not src.eof:
        batch = src.poll()
        if batch is not None:
            got.extend(batch.lines)
            skipped += batch.skipped
    assert got == [b"a", b"\xff\xfe", b"last"]
    assert skipped == 1
    assert src.position == Position("-", 0, 0, 4, EMPTY_FINGERPRINT)
    assert src.poll() is None


async def test_stdin_source_batches_from_a_pipe() -> None:
    r, w = os.pipe()
    with open(r, "rb") as reader:
        src = StdinSource(reader)
        agen = src.batches()
        try:
            os.write(w, b"one\ntw")
            first = await asyncio.wait_for(anext(agen), 5)
            assert first.lines == [b"one"]
            os.write(w, b"o\n")
            second = await asyncio.wait_for(anext(agen), 5)
            assert second.lines == [b"two"]
            os.write(w, b"three")
            os.close(w)
            w = -1
            third = await asyncio.wait_for(anext(agen), 5)
            assert third.lines == [b"three"]
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(anext(agen), 5)
            assert src.eof
            assert src.position.offset == 3
        finally:
            await agen.aclose()
            if w >= 0:
                os.close(w)


def test_both_sources_implement_the_port(log: Writer) -> None:
    sources: list[LineSource] = [FileSource(log.path), StdinSource(io.BytesIO(b"x\n"))]
    for src in sources:
        batch = src.poll()
        assert batch is not None
        assert src.position == batch.position
        src.close()
        with pytest.raises(ValueError, match="closed"):
            src.poll()


# -- property: no loss, no duplicate ------------------------------------------------------

payloads = st.lists(st.binary(max_size=24), min_size=1, max_size=4)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), payloads),
        st.tuples(st.just("poll"), st.none()),
        st.tuples(st.just("drain"), st.none()),
        st.tuples(st.just("rotate"), st.booleans()),  # True: the new file is created at once
        st.tuples(st.just("reopen"), st.none()),
        st.tuples(st.just("copytruncate"), st.booleans()),  # True: drained just before
        st.tuples(st.just("restart"), st.none()),
    ),
    max_size=30,
)


class Harness:
    """A log with a daemon writing it, logrotate acting on it and an agent tailing it."""

    def __init__(self, directory: Path, chunk: int) -> None:
        self.path = directory / "app.log"
        self.chunk = chunk
        self.writer = Writer(self.path)
        self.seq = 0
        self.written: list[bytes] = []
        self.got: list[bytes] = []
        self.src = FileSource(self.path, None, chunk=chunk)
        self.poll()
        self.stored = self.src.position  # what the agent persisted
        self.pending = False  # a rotation the source has perhaps not followed yet

    def append(self, items: list[bytes]) -> None:
        for p in items:
            self.seq += 1
            line = b"%06d " % self.seq + p.replace(b"\n", b"")
            self.writer.write(line)
            self.written.append(line)

    def poll(self) -> None:
        batch = self.src.poll()
        if batch is not None:
            self.got.extend(batch.lines)
            self.stored = batch.position

    def drain(self) -> None:
        lines, batches = drain(self.src)
        self.got.extend(lines)
        if batches:
            self.stored = batches[-1].position
        self.pending = False

    def reopen(self) -> None:
        """The daemon got its SIGHUP: it creates ``path`` again if it was rotated away."""
        if not self.path.exists():
            self.writer.reopen()
            self.pending = True

    def ensure_current(self) -> None:
        """The supported pace: at most one new generation that the source has not followed
        yet (several between two polls are not supported, see the module docstring)."""
        self.reopen()
        if self.pending:
            self.drain()

    def shift(self) -> Path:
        """logrotate: app.log.N -> app.log.N+1; return the name for the newest generation."""
        n = 1
        while self.path.with_name(f"app.log.{n}").exists():
            n += 1
        for i in range(n - 1, 0, -1):
            os.rename(self.path.with_name(f"app.log.{i}"), self.path.with_name(f"app.log.{i + 1}"))
        return self.path.with_name("app.log.1")

    def rotate(self, create: bool) -> None:
        self.ensure_current()
        os.rename(self.path, self.shift())
        if create:
            self.writer.reopen()
        self.pending = True

    def copytruncate(self, drained: bool) -> None:
        self.ensure_current()
        pos = self.src.position
        if drained or pos is None or pos.offset == 0 or (pos.dev, pos.inode) != ident(self.path):
            self.drain()
        copytruncate(self.path, self.shift())
        self.pending = True

    def restart(self) -> None:
        self.src.close()  # as good as kill -9: closing persists nothing
        self.src = FileSource(self.path, self.stored, chunk=self.chunk)

    def close(self) -> None:
        self.src.close()
        self.writer.close()


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops=operations, chunk=st.sampled_from([16, 100, 1 << 20]))
@example(  # copytruncate with unread lines: recovered from the copy
    ops=[("append", [b"a"]), ("poll", None), ("append", [b"b"]), ("copytruncate", False)],
    chunk=1 << 20,
)
@example(  # rotation while down, the old file at offset 0 found by inode
    ops=[("rotate", False), ("append", [b"a"]), ("restart", None), ("reopen", None)],
    chunk=16,
)
def test_every_line_exactly_once(ops: list[tuple[str, object]], chunk: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        h = Harness(Path(d), chunk)
        try:
            for name, arg in ops:
                if name == "append":
                    assert isinstance(arg, list)
                    h.append(arg)
                elif name == "poll":
                    h.poll()
                elif name == "drain":
                    h.drain()
                elif name == "rotate":
                    h.rotate(bool(arg))
                elif name == "reopen":
                    h.reopen()
                elif name == "copytruncate":
                    h.copytruncate(bool(arg))
                elif name == "restart":
                    h.restart()
            h.drain()
            assert h.got == h.written
        finally:
            h.close()
