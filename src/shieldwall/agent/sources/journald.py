"""The systemd journal as a log source, through ``journalctl -f -o json``.

Each entry becomes one line in the shape the rules read from syslog files::

    2026-03-01T00:00:05.000000+00:00 web1 sshd[4242]: Failed password for root from …

(``__REALTIME_TIMESTAMP`` in UTC, ``_HOSTNAME``, ``SYSLOG_IDENTIFIER`` (or ``_COMM``),
``_PID``, ``MESSAGE``), so one rule serves a file and the journal alike. Newlines and
carriage returns inside ``MESSAGE`` are written as ``\\n`` / ``\\r``: a message may never
forge a second line. A ``MESSAGE`` that is not UTF-8 arrives as a list of byte values and
is passed on as those bytes.

The position is the journal cursor of the last entry handed out: the agent stores it with
the batch's effects, and a new source started from it runs ``journalctl --after-cursor``,
so no entry is lost or read twice across restarts. ``matches`` are journalctl match
arguments (a filter's ``journalmatch``: ``_SYSTEMD_UNIT=sshd.service + _COMM=sshd``).
Entries that are not valid JSON are skipped and counted (``bad_entries``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shieldwall.lines import LineSplitter
from shieldwall.model import Counters

__all__ = ["JournalBatch", "JournalPosition", "JournalSource", "format_entry"]


@dataclass(frozen=True, slots=True)
class JournalPosition:
    cursor: str

    def to_dict(self) -> dict[str, str]:
        return {"cursor": self.cursor}

    @classmethod
    def from_dict(cls, data: object) -> JournalPosition:
        if not isinstance(data, dict) or set(data) != {"cursor"}:
            raise ValueError("a journal position is {'cursor': str}")
        cursor = data["cursor"]
        if not isinstance(cursor, str) or not cursor or "\n" in cursor:
            raise ValueError("a journal cursor is a non-empty one-line string")
        return cls(cursor)


@dataclass(frozen=True, slots=True)
class JournalBatch:
    lines: list[bytes]
    position: JournalPosition
    skipped: int = 0


def _text(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", errors="surrogateescape")
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value)
    return b"" if value is None else str(value).encode()


def format_entry(entry: dict[str, Any]) -> bytes:
    """One journal entry (``journalctl -o json``) as a syslog-shaped line."""
    try:
        micros = int(entry.get("__REALTIME_TIMESTAMP", "0"))
        stamp = datetime.fromtimestamp(micros / 1e6, UTC).isoformat(timespec="microseconds")
    except (TypeError, ValueError, OverflowError, OSError):
        stamp = "1970-01-01T00:00:00.000000+00:00"
    host = _text(entry.get("_HOSTNAME", "-")).replace(b" ", b"_") or b"-"
    ident = _text(entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM") or "-").replace(b" ", b"_")
    pid = _text(entry.get("_PID") or entry.get("SYSLOG_PID") or "")
    tag = ident + (b"[" + pid + b"]" if pid.isdigit() else b"")
    message = _text(entry.get("MESSAGE", "")).replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    return stamp.encode() + b" " + host + b" " + tag + b": " + message


@dataclass
class JournalSource:
    """Follow the journal; ``batches()`` yields what ``journalctl`` writes."""

    matches: Sequence[str] = ()
    start: JournalPosition | None = None
    directory: str | None = None  # read journal files from here (tests, containers)
    from_end: bool = False
    journalctl: str = "journalctl"
    max_line: int = 65536
    counters: Counters = field(default_factory=Counters)
    last_error: str | None = None
    _proc: asyncio.subprocess.Process | None = None

    def argv(self) -> list[str]:
        exe = shutil.which(self.journalctl) or self.journalctl
        argv = [exe, "--follow", "--output=json", "--no-pager", "--quiet"]
        if self.directory:
            argv.append(f"--directory={self.directory}")
        if self.start is not None:
            argv.append(f"--after-cursor={self.start.cursor}")
        elif self.from_end:
            argv.append("--lines=0")
        else:
            argv.append("--no-tail")
        return argv + [m for m in self.matches if m]

    async def batches(self, poll_interval: float = 0.05) -> AsyncGenerator[JournalBatch, None]:
        """Batches until the source is closed; restarts ``journalctl`` if it exits."""
        position = self.start
        while True:
            self.start = position
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    *self.argv(),
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            except OSError as exc:
                self.counters.inc("errors")
                self.last_error = f"cannot run journalctl: {exc}"
                await asyncio.sleep(max(poll_interval, 1.0))
                continue
            if self._proc.stdout is None:  # pragma: no cover - PIPE was asked for
                raise RuntimeError("journalctl has no stdout")
            stdout = self._proc.stdout
            # JSON entries carry metadata around MESSAGE: allow them 4x the line limit
            splitter = LineSplitter(self.max_line * 4)
            try:
                while data := await stdout.read(1 << 20):
                    entries, skipped, _ = splitter.feed(data)
                    lines: list[bytes] = []
                    for raw in entries:
                        item = self._parse(raw)
                        if item is None or len(item[0]) > self.max_line:
                            skipped += 1
                            continue
                        lines.append(item[0])
                        position = JournalPosition(item[1])
                    if position is not None and (lines or skipped):
                        self.counters.inc("lines", len(lines))
                        if skipped:
                            self.counters.inc("bad_entries", skipped)
                        yield JournalBatch(lines, position, skipped)
            finally:
                await self._stop()
            self.counters.inc("restarts")
            await asyncio.sleep(max(poll_interval, 0.5))

    def _parse(self, raw: bytes) -> tuple[bytes, str] | None:
        try:
            entry = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(entry, dict) or not isinstance(entry.get("__CURSOR"), str):
            return None
        return format_entry(entry), entry["__CURSOR"]

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)

    def close(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.terminate()
