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
events themselves. Lines longer than the detector's ``max_line`` are skipped and counted in
``skipped`` (``lines`` counts them too); hits are counted in ``rows``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from shieldwall.detect import Detector
from shieldwall.detect.rule import Rule
from shieldwall.drill.io import FAIL, SUCCESS, DrillEvent, open_bytes
from shieldwall.lines import LineSplitter

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
        splitter = LineSplitter(detector.max_line)  # too-long lines: skipped, never held
        skipped = 0
        with open_bytes(self.path) as fh:
            while chunk := fh.read(1 << 20):
                lines, too_long, _ = splitter.feed(chunk)
                skipped += too_long
                yield from self._batch(detector, lines, now, success, member)
            lines, too_long = splitter.flush()
            skipped += too_long
            yield from self._batch(detector, lines, now, success, member)
        self.counters = dict(detector.counters.values)
        self.skipped = skipped
        self.lines = self.counters.get("lines", 0) + skipped

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
