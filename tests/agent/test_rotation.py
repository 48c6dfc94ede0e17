"""No line lost on rotation: after a rename the old file is read until it has been quiet for
the grace period (the daemon writes to it until its HUP), and every generation rotated while
the agent was down is read, oldest first."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shieldwall.agent.sources import FileSource
from tests.agent.test_file_source import Writer, drain


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Writer]:
    w = Writer(tmp_path / "auth.log")
    yield w
    w.close()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def lines(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(n)]


def test_a_renamed_file_is_read_until_it_has_been_quiet_for_the_grace_period(
    tmp_path: Path, log: Writer
) -> None:
    clock = Clock()
    log.write(*lines("a", 100))
    with FileSource(log.path, rotate_grace=3.0, clock=clock) as src:
        assert len(drain(src)[0]) == 100
        os.rename(log.path, log.path.with_name("auth.log.1"))
        (tmp_path / "auth.log").touch()  # logrotate's create: the new file, still empty
        log.write(*lines("b", 50))  # the daemon has not had its HUP: it writes the old file
        assert drain(src)[0] == lines("b", 50)
        clock.t += 0.5
        log.write(*lines("c", 20))  # still the old file, after we reached its end
        assert drain(src)[0] == lines("c", 20)
        clock.t += 0.5
        old = log.fh
        log.fh = open(log.path, "ab", buffering=0)  # noqa: SIM115 - the HUP
        log.write(*lines("d", 30))
        assert drain(src)[0] == []  # the old file is quiet for 0.5 s only: not yet
        clock.t += 1.0
        assert drain(src)[0] == lines("d", 30)  # the writer moved on: the new file
        assert src.counters.get("rotations") == 1
        old.close()


def test_a_quiet_old_file_is_left_after_the_grace_even_if_the_new_one_is_empty(
    tmp_path: Path, log: Writer
) -> None:
    clock = Clock()
    log.write(b"a")
    with FileSource(log.path, rotate_grace=3.0, clock=clock) as src:
        assert drain(src)[0] == [b"a"]
        os.rename(log.path, log.path.with_name("auth.log.1"))
        log.reopen()
        assert drain(src)[0] == []
        clock.t += 2.0
        assert drain(src)[0] == []
        clock.t += 1.5
        drain(src)
        log.write(b"b")
        assert drain(src)[0] == [b"b"]
        assert src.counters.get("rotations") == 1


def test_every_generation_rotated_while_down_is_read_oldest_first(
    tmp_path: Path, log: Writer
) -> None:
    log.write(*lines("a", 100))
    with FileSource(log.path) as src:
        assert len(drain(src)[0]) == 100
        saved = src.position
    # the agent is down: the daemon writes on, and logrotate runs twice
    log.write(*lines("b", 40))  # into what becomes auth.log.2
    os.rename(log.path, tmp_path / "auth.log.1")
    log.reopen()
    log.write(*lines("c", 50))  # what becomes auth.log.1
    os.rename(tmp_path / "auth.log.1", tmp_path / "auth.log.2")
    os.rename(log.path, tmp_path / "auth.log.1")
    log.reopen()
    log.write(*lines("d", 30))
    (tmp_path / "other.log").write_bytes(b"not ours\n")  # another log in the folder
    with FileSource(log.path, saved) as src:
        got = drain(src)[0]
    assert got == lines("b", 40) + lines("c", 50) + lines("d", 30)


def test_a_compressed_generation_is_skipped_and_counted(tmp_path: Path, log: Writer) -> None:
    log.write(*lines("a", 10))
    with FileSource(log.path) as src:
        drain(src)
        saved = src.position
    log.write(*lines("b", 5))
    os.rename(log.path, tmp_path / "auth.log.1")
    log.reopen()
    log.write(*lines("c", 5))
    # second rotation with delaycompress off: .1 → .2.gz, the live file → .1
    data = (tmp_path / "auth.log.1").read_bytes()
    with gzip.open(tmp_path / "auth.log.2.gz", "wb") as gz:
        gz.write(data)
    os.unlink(tmp_path / "auth.log.1")
    os.rename(log.path, tmp_path / "auth.log.1")
    log.reopen()
    log.write(*lines("d", 5))
    with FileSource(log.path, saved) as src:
        got = drain(src)[0]
        # the file we held went into the .gz: not read, counted (its unread rest is lost)
        assert src.counters.get("generations_compressed") == 1
    assert got == lines("c", 5) + lines("d", 5)
