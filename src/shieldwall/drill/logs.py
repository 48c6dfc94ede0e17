"""Members' log files as drill events: each line runs through the real detector.

``LogReader(path, member, rules)`` reads one member's log (plain or gzip), feeds it in
batches through a :class:`~shieldwall.detect.Detector` with the given rules — the same code
the agent runs — and yields one :class:`~shieldwall.drill.io.DrillEvent` per hit, in line
order: ``kind`` is ``success`` for a ``kind = "success"`` rule (a successful login, e.g. the
shipped ``sshd-success``) and ``fail`` otherwise; ``rule`` is the rule's name; ``legit`` is
never set (a log carries no ground truth).

Log lines without a year (syslog) take it from ``now``, the file's modification time unless
given: the newest line of a log was written at about its mtime, so a year-less stamp is read
as fail2ban reads it, the latest such date not after ``now``. The detector's own alerts are
not used: the drill's strategies run the local rule (``--maxretry``/``--findtime``) on the
events themselves. Lines the detector skips (too long; see ``Detector.counters``) are counted
in ``skipped``; hits are counted in ``rows``.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import BinaryIO

from shieldwall.detect import Detector
from shieldwall.detect.rule import Rule
from shieldwall.drill.io import FAIL, SUCCESS, DrillEvent

__all__ = ["LogReader", "parse_log_spec"]

_BATCH = 8192


def parse_log_spec(text: str) -> tuple[str, Path]:
    """``MEMBER=PATH`` → (member, path); a bare PATH names the member after its file's stem
    (``web1.log`` → ``web1``; ``auth.log`` in ``web1/`` → ``web1``)."""
    member, sep, path = text.partition("=")
    if not sep:
        p = Path(text)
        stem = p.name.split(".")[0]
        if stem in ("auth", "secure", "access", "error", "syslog", "messages") and p.parent.name:
            stem = p.parent.name
        return stem, p
    member = member.strip()
    if not member or not path:
        raise ValueError(f"{text!r}: expected MEMBER=PATH")
    return member, Path(path)


def _open(path: Path) -> BinaryIO:
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


@dataclass(slots=True)
class LogReader:
    """The hits of one member's log file as drill events (re-iterable)."""

    path: Path
    member: str
    rules: Sequence[Rule]
    tz: tzinfo = UTC
    now: datetime | None = None
    fmt: str = "log"
    rows: int = 0
    skipped: int = 0
    lines: int = 0
    counters: dict[str, int] = field(default_factory=dict)

    def __iter__(self) -> Iterator[DrillEvent]:
        success = {r.name for r in self.rules if r.kind == "success"}
        detector = Detector(self.rules, tz=self.tz)
        now = self.now or datetime.fromtimestamp(self.path.stat().st_mtime, UTC)
        member = self.member
        with _open(self.path) as fh:
            rest = b""
            while True:
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                data = rest + chunk
                cut = data.rfind(b"\n")
                if cut < 0:
                    rest = data
                    continue
                rest = data[cut + 1 :]
                yield from self._batch(detector, data[:cut].split(b"\n"), now, success, member)
            if rest:
                yield from self._batch(detector, [rest], now, success, member)
        self.counters = dict(detector.counters.values)
        self.lines = self.counters.get("lines", 0)
        self.skipped = self.counters.get("line_too_long", 0)

    def _batch(
        self,
        detector: Detector,
        lines: list[bytes],
        now: datetime,
        success: set[str],
        member: str,
    ) -> Iterator[DrillEvent]:
        for start in range(0, len(lines), _BATCH):
            found = detector.feed_many(lines[start : start + _BATCH], now)
            for hit in found.hits:
                self.rows += 1
                kind = SUCCESS if hit.rule in success else FAIL
                yield DrillEvent(hit.at.timestamp(), member, hit.source, kind, hit.rule)
