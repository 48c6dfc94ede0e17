"""The journal source against real journal files (written by systemd-journal-remote) read by
the real journalctl; the entry format and its escaping as pure functions."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shieldwall.agent.sources.journald import (
    JournalBatch,
    JournalPosition,
    JournalSource,
    format_entry,
)
from shieldwall.detect import Detector, builtin_rule
from tests.conftest import skip_or_fail

REMOTE = "/lib/systemd/systemd-journal-remote"
T0 = 1772323205  # 2026-03-01T00:00:05Z


def test_format_entry_is_a_syslog_shaped_line() -> None:
    line = format_entry(
        {
            "__REALTIME_TIMESTAMP": f"{T0}000000",
            "_HOSTNAME": "web1",
            "SYSLOG_IDENTIFIER": "sshd",
            "_PID": "42",
            "MESSAGE": "hello",
        }
    )
    assert line == b"2026-03-01T00:00:05.000000+00:00 web1 sshd[42]: hello"


def test_a_message_can_never_forge_a_second_line() -> None:
    line = format_entry({"MESSAGE": "x\nMar  1 00:00:01 h sshd[1]: forged\r", "_COMM": "sshd"})
    assert b"\n" not in line
    assert b"\r" not in line
    assert line.endswith(b": x\\nMar  1 00:00:01 h sshd[1]: forged\\r")


def test_binary_messages_and_missing_fields() -> None:
    line = format_entry({"MESSAGE": [0xFF, 0x41], "__REALTIME_TIMESTAMP": "junk"})
    assert line == b"1970-01-01T00:00:00.000000+00:00 - -: \xffA"


@pytest.mark.parametrize(
    "bad", [None, {}, {"cursor": ""}, {"cursor": 3}, {"cursor": "a\nb"}, {"cursor": "c", "x": 1}]
)
def test_positions_reject_malformed_state(bad: object) -> None:
    with pytest.raises(ValueError, match="journal"):
        JournalPosition.from_dict(bad)


def _export(entries: list[tuple[int, str, str]]) -> bytes:
    out = b""
    for i, (t, unit, message) in enumerate(entries):
        out += (
            f"__REALTIME_TIMESTAMP={t * 1_000_000}\n"
            f"__MONOTONIC_TIMESTAMP={(t - T0 + 1) * 1_000_000 + i}\n"
            f"_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=web1\n"
            f"SYSLOG_IDENTIFIER=sshd\n_PID=4242\n_SYSTEMD_UNIT={unit}\n"
            f"MESSAGE={message}\n\n"
        ).encode()
    return out


def _write_journal(path: Path, entries: list[tuple[int, str, str]]) -> None:
    subprocess.run(
        [REMOTE, f"--output={path}", "-"],
        input=_export(entries),
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture
def journal_tools() -> None:
    if shutil.which("journalctl") is None or not Path(REMOTE).exists():
        skip_or_fail(
            "needs journalctl and systemd-journal-remote (apt-get install systemd-journal-remote)"
        )


async def _take(source: JournalSource, n: int, timeout: float = 15) -> list[JournalBatch]:
    got: list[JournalBatch] = []

    async def run() -> None:
        async with contextlib.aclosing(source.batches(0.05)) as batches:
            async for batch in batches:
                got.append(batch)
                if sum(len(b.lines) for b in got) >= n:
                    return

    await asyncio.wait_for(run(), timeout)
    return got


@pytest.mark.usefixtures("journal_tools")
async def test_follows_the_journal_and_resumes_from_its_cursor(tmp_path: Path) -> None:
    fail = "Failed password for root from {} port 22 ssh2"
    _write_journal(
        tmp_path / "one.journal",
        [
            (T0, "ssh.service", fail.format("203.0.113.1")),
            (T0 + 1, "cron.service", "session opened"),  # another unit: filtered out
            (T0 + 2, "ssh.service", fail.format("203.0.113.2")),
            (T0 + 3, "ssh.service", "Accepted publickey for bob from 198.51.100.1 port 22 ssh2"),
        ],
    )
    source = JournalSource(matches=["_SYSTEMD_UNIT=ssh.service"], directory=str(tmp_path))
    batches = await _take(source, 3)
    lines = [line for b in batches for line in b.lines]
    assert lines == [
        b"2026-03-01T00:00:05.000000+00:00 web1 sshd[4242]: " + fail.format("203.0.113.1").encode(),
        b"2026-03-01T00:00:07.000000+00:00 web1 sshd[4242]: " + fail.format("203.0.113.2").encode(),
        b"2026-03-01T00:00:08.000000+00:00 web1 sshd[4242]: Accepted publickey for bob from "
        b"198.51.100.1 port 22 ssh2",
    ]
    hits = Detector([builtin_rule("sshd")]).feed_many(lines, datetime.now(UTC)).hits
    assert [(str(h.source), h.at.isoformat()) for h in hits] == [
        ("203.0.113.1", "2026-03-01T00:00:05+00:00"),
        ("203.0.113.2", "2026-03-01T00:00:07+00:00"),
    ]
    cursor = batches[-1].position

    # a restart from the stored cursor reads only what came after it
    _write_journal(tmp_path / "two.journal", [(T0 + 10, "ssh.service", fail.format("203.0.113.3"))])
    again = JournalSource(
        matches=["_SYSTEMD_UNIT=ssh.service"], start=cursor, directory=str(tmp_path)
    )
    later = await _take(again, 1)
    assert [line for b in later for line in b.lines] == [
        b"2026-03-01T00:00:15.000000+00:00 web1 sshd[4242]: " + fail.format("203.0.113.3").encode()
    ]
    assert later[-1].position != cursor


@pytest.mark.usefixtures("journal_tools")
async def test_a_missing_journalctl_is_counted_not_fatal(tmp_path: Path) -> None:
    source = JournalSource(journalctl=str(tmp_path / "no-such-journalctl"))
    with pytest.raises(TimeoutError):
        await _take(source, 1, timeout=1.5)
    assert source.counters.get("errors") >= 1
    assert "cannot run journalctl" in (source.last_error or "")
