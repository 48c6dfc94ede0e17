"""The detector: raw log lines in, hits and alerts out (pure; time is passed in).

``Detector.feed`` never raises on line content (DESIGN guarantee 6). Bad input is skipped or
repaired and counted in ``detector.counters``:

``line_too_long``
    the line has more than ``max_line`` bytes: skipped.
``invalid_utf8``
    decoded with U+FFFD replacements and still matched, so a stray byte cannot hide an attack.
``nul_byte``
    NUL characters are replaced by U+FFFD and the line is still matched.
``no_timestamp``
    a hit whose line has no timestamp the rule can read: the hit is dated ``now``.
``invalid_host``, ``ignored``
    from the matcher (the captured host is no IP address; an ignoreregex matched).
``bucket_evicted``
    a bucket was dropped to keep at most ``max_tracked`` per rule.

Other counters: ``lines``, ``hits``, ``alerts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from shieldwall.detect.bucket import BucketKey, BucketRow, BucketSet
from shieldwall.detect.matcher import Matcher
from shieldwall.detect.rule import Rule
from shieldwall.detect.timestamps import TimeParser
from shieldwall.errors import RuleError
from shieldwall.model import Address, Alert, Counters, Hit

__all__ = ["Detection", "Detector", "Explanation"]


@dataclass(slots=True)
class Detection:
    """What some lines produced: every hit, and the alerts of buckets that overflowed."""

    hits: list[Hit] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Explanation:
    """How one rule judged one line (for ``shieldwall rules test``).

    ``reason`` is a stable token: ``hit``, ``too-long``, ``prefilter``, ``prefix``,
    ``no-match``, ``ignored``, ``invalid-host`` (see
    :class:`~shieldwall.detect.matcher.MatchExplanation`). ``at`` is the time the hit would
    carry; ``timestamp_found`` says whether it came from the line or from ``now``.
    """

    rule: str
    reason: str
    detail: str
    pattern: int | None = None
    source: Address | None = None
    at: datetime | None = None
    timestamp_found: bool = False

    @property
    def matched(self) -> bool:
        return self.reason == "hit"


class _Unit:
    __slots__ = ("buckets", "match", "matcher", "name", "parse", "rule")

    def __init__(self, rule: Rule, tz: tzinfo, max_tracked: int, counters: Counters) -> None:
        self.rule = rule
        self.name = rule.name
        self.matcher = Matcher(rule, counters)
        self.match = self.matcher.match
        self.parse = TimeParser(rule.datepattern, tz).parse
        self.buckets = BucketSet(
            rule.maxretry, rule.findtime, max_tracked, bantime=rule.bantime, counters=counters
        )


class Detector:
    """Run lines through every rule and its buckets.

    ``tz`` is the zone of log timestamps that carry none (syslog, naive ISO 8601).
    ``max_tracked`` bounds the buckets of each rule.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        tz: tzinfo = UTC,
        max_line: int = 65536,
        max_tracked: int = 100_000,
    ) -> None:
        seen: dict[str, Rule] = {}
        for rule in rules:
            if rule.name in seen:
                raise RuleError(
                    f"{rule.origin}: name: rule {rule.name!r} is also defined in "
                    f"{seen[rule.name].origin}"
                )
            seen[rule.name] = rule
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.tz = tz
        self.max_line = max_line
        self.counters = Counters()
        self._units = tuple(_Unit(rule, tz, max_tracked, self.counters) for rule in rules)
        self._by_name = {unit.name: unit for unit in self._units}

    def _decode(self, raw: bytes, count: bool) -> str:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
            if count:
                self.counters.inc("invalid_utf8")
        if text.endswith(("\n", "\r")):
            text = text.rstrip("\r\n")
        if "\x00" in text:
            text = text.replace("\x00", "\ufffd")
            if count:
                self.counters.inc("nul_byte")
        return text

    def _feed(self, raw: bytes, now: datetime, hits: list[Hit], alerts: list[Alert]) -> None:
        """One line; the caller counts it in ``lines``."""
        if len(raw) > self.max_line:
            self.counters.inc("line_too_long")
            return
        text = self._decode(raw, True)
        for unit in self._units:
            found = unit.match(text)
            if found is None:
                continue
            at = unit.parse(text, now)
            if at is None:
                self.counters.inc("no_timestamp")
                at = now
            source = found.source
            hits.append(Hit(unit.name, source, at, found.pattern, text))
            alert = unit.buckets.add(unit.name, source, at, text)
            if alert is not None:
                alerts.append(alert)

    def _count(self, lines: int, detection: Detection) -> None:
        counters = self.counters
        counters.inc("lines", lines)
        if detection.hits:
            counters.inc("hits", len(detection.hits))
        if detection.alerts:
            counters.inc("alerts", len(detection.alerts))

    def feed(self, raw: bytes, now: datetime) -> Detection:
        """Process one raw line (without its newline). ``now`` must be timezone-aware."""
        now = _check_now(now)
        detection = Detection()
        self._feed(raw, now, detection.hits, detection.alerts)
        self._count(1, detection)
        return detection

    def feed_many(self, lines: Iterable[bytes], now: datetime) -> Detection:
        """Process many lines read at ``now``; hits and alerts in line order."""
        now = _check_now(now)
        detection = Detection()
        hits, alerts = detection.hits, detection.alerts
        feed = self._feed
        count = 0
        for raw in lines:
            count += 1
            feed(raw, now, hits, alerts)
        self._count(count, detection)
        return detection

    def explain(self, line: bytes | str, now: datetime) -> list[Explanation]:
        """How each rule judges ``line``, without touching buckets or counters."""
        now = _check_now(now)
        if isinstance(line, str):
            too_long = len(line.encode("utf-8", errors="replace")) > self.max_line
            text = line.replace("\x00", "\ufffd")
        else:
            too_long = len(line) > self.max_line
            text = self._decode(line, False)
        result = []
        for unit in self._units:
            if too_long:
                detail = f"the line is longer than max_line={self.max_line} bytes"
                result.append(Explanation(unit.name, "too-long", detail))
                continue
            why = unit.matcher.explain(text)
            at = TimeParser(unit.rule.datepattern, self.tz).parse(text, now)
            result.append(
                Explanation(
                    rule=unit.name,
                    reason=why.reason,
                    detail=why.detail,
                    pattern=why.pattern,
                    source=why.source,
                    at=at if at is not None else now,
                    timestamp_found=at is not None,
                )
            )
        return result

    def prune(self, now: datetime) -> int:
        """Drop buckets with no hit within their rule's findtime before ``now``."""
        _check_now(now)
        return sum(unit.buckets.prune(now) for unit in self._units)

    def touched(self) -> set[BucketKey]:
        """Bucket keys changed since the last call, over all rules (see ``BucketSet``)."""
        keys: set[BucketKey] = set()
        for unit in self._units:
            keys |= unit.buckets.touched()
        return keys

    def export(self, keys: Iterable[BucketKey]) -> list[BucketRow]:
        """Rows for ``keys`` (see ``BucketSet.export``); keys of unknown rules are skipped."""
        rows: list[BucketRow] = []
        for key in keys:
            unit = self._by_name.get(key[0])
            if unit is not None:
                rows.extend(unit.buckets.export([key]))
        return rows

    def restore(self, rows: Iterable[BucketRow]) -> None:
        """Load exported rows; rows of rules this detector does not run are skipped."""
        for row in rows:
            unit = self._by_name.get(row.rule)
            if unit is None:
                self.counters.inc("bucket_unknown_rule")
                continue
            unit.buckets.restore([row])

    def buckets(self, rule: str) -> BucketSet:
        """The bucket set of one rule (KeyError if the detector does not run it)."""
        return self._by_name[rule].buckets


def _check_now(now: datetime) -> datetime:
    """``now`` in UTC; a naive datetime is a programming error."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now if now.tzinfo is UTC else now.astimezone(UTC)
