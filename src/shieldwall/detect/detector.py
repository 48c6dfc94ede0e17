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
``dns_host``, ``ambiguous_host``, ``no_address``
    from ``dialect = "fail2ban"`` rules (the host is a name, which is never resolved; the
    line also reads with another address; the failure id is no address): skipped.
``regex_timeout``
    a fail2ban filter's regex searched one line for longer than ``REGEX_TIMEOUT`` (a crafted
    line can make a backtracking regex run for minutes): the line is skipped.
``bucket_evicted``
    a bucket was dropped to keep at most ``max_tracked`` per rule.

Other counters: ``lines``, ``hits``, ``alerts``.

Rules of ``kind = "success"`` (successful logins) only count their hits: they have no
bucket and never alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import partial
from itertools import groupby
from typing import Any, Final

import msgspec

from shieldwall.detect.bucket import BucketKey, BucketRow, BucketSet
from shieldwall.detect.fail2ban.engine import Fail2banEngine
from shieldwall.detect.matcher import Matcher, MatchResult, cached_address
from shieldwall.detect.rule import Rule
from shieldwall.detect.scan import StampCache, block_scanner
from shieldwall.detect.timestamps import TimeParser
from shieldwall.errors import RuleError
from shieldwall.lines import LineBlock
from shieldwall.model import Address, Alert, Counters, Hit

__all__ = ["Detection", "Detector", "Explanation", "Tallied", "Tally", "count_hit", "tally_of"]

_ADDRESS_CACHE: Final = 1 << 16
"""Host texts whose address a rule's block scan remembers."""

_SAMPLE: Final = 1 << 16
"""Bytes of a block the C path samples to tell a selective prefilter literal (it then visits
only the lines holding it) from a common one (it scans the whole block)."""


class Tallied(msgspec.Struct, gc=False):
    """Hits of one rule from one source: how many, first and last (epoch seconds).

    A struct (the C scan makes one as cheaply as a tuple), not a frozen value: the line path
    counts into it hit by hit."""

    rule: str
    source: Address
    count: int
    first: float
    last: float

    def add(self, epoch: float) -> None:
        self.count += 1
        if epoch < self.first:
            self.first = epoch
        elif epoch > self.last:
            self.last = epoch

    def merge(self, count: int, first: float, last: float) -> None:
        """Add ``count`` hits seen between ``first`` and ``last``."""
        self.count += count
        self.first = min(self.first, first)
        self.last = max(self.last, last)


Tally = dict[tuple[str, int, int], Tallied]
"""Hits counted per (rule, source), keyed by (rule, address as int, IP version): hashing an
``ipaddress`` object runs Python code, an int does not."""


def tally_key(rule: str, source: Address) -> tuple[str, int, int]:
    return rule, source._ip, source._version  # type: ignore[union-attr]  # see BucketSet


def count_hit(tally: Tally, rule: str, source: Address, epoch: float) -> None:
    """One hit into ``tally``."""
    key = tally_key(rule, source)
    entry = tally.get(key)
    if entry is None:
        tally[key] = Tallied(rule, source, 1, epoch, epoch)
    else:
        entry.add(epoch)


def tally_of(hits: Iterable[Hit], tally: Tally | None = None) -> Tally:
    """``hits`` counted per (rule, source) into ``tally`` (a new one by default)."""
    out: Tally = {} if tally is None else tally
    for h in hits:
        count_hit(out, h.rule, h.source, h.at.timestamp())
    return out


@dataclass(slots=True)
class Detection:
    """What some lines produced: every hit, and the alerts of buckets that overflowed;
    with ``feed_many(tally=True)``, the hits counted per (rule, source) in ``tally``."""

    hits: list[Hit] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    tally: Tally | None = None


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
    __slots__ = (
        "addresses",
        "buckets",
        "c_path",
        "counts_only",
        "literal",
        "match",
        "matcher",
        "name",
        "parse",
        "resolve",
        "rule",
        "scanner",
        "stamp",
    )  # fmt: skip

    def __init__(
        self, rule: Rule, tz: tzinfo, max_tracked: int, counters: Counters, native: bool
    ) -> None:
        self.rule = rule
        self.name = rule.name
        # a dialect = "fail2ban" rule brings its own engine (matching, dates, multi-line state)
        engine = (
            rule.fail2ban.engine(tz, counters, native=native) if rule.fail2ban is not None else None
        )
        self.matcher: Matcher | Fail2banEngine = engine or Matcher(rule, counters)
        self.match = self.matcher.match
        self.parse = engine.parse if engine is not None else TimeParser(rule.datepattern, tz).parse
        # a distinct field's value comes from Matcher.match: such rules go line by line
        self.scanner = block_scanner(rule) if rule.distinct is None and engine is None else None
        self.stamp = StampCache(self.parse, rule.datepattern if engine is None else "fail2ban")
        self.addresses: dict[str, Address | None] = {}
        # a kind = "success" rule only counts hits (successful logins): no bucket, no alert
        self.counts_only = rule.kind == "success"
        self.buckets = BucketSet.for_rule(
            rule,
            1 if self.counts_only else max_tracked,
            counters=counters,
            native=None if native else False,
        )
        self.resolve = partial(cached_address, self.addresses, limit=_ADDRESS_CACHE)
        self.literal = rule.prefilter[0] if len(rule.prefilter) == 1 else None
        # the C scan (native.py) of ASCII blocks pours hits into C window buckets: only for
        # rules whose buckets live there (or that have none)
        self.c_path = native and (self.counts_only or self.buckets.native is not None)

    @property
    def c_scanner(self) -> Any:
        """The rule's C scanner (``_native.Scanner``), or None: the Python paths run."""
        if not self.c_path or self.scanner is None:
            return None
        return self.scanner.native

    @property
    def c_filter(self) -> Fail2banEngine | None:
        """The rule's fail2ban engine when it runs its filter in C, or None."""
        matcher = self.matcher
        if not self.c_path or not isinstance(matcher, Fail2banEngine) or matcher.native is None:
            return None
        return matcher

    def one_line(self, line: str) -> Address | None:
        """The source of ``line`` matched alone (the C scan's way out for odd lines)."""
        found = self.match(line)
        return None if found is None else found.source


class Detector:
    """Run lines through every rule and its buckets.

    ``tz`` is the zone of log timestamps that carry none (syslog, naive ISO 8601).
    ``max_tracked`` bounds the buckets of each rule. ``native=False`` keeps every rule on the
    pure-Python path even when the C extension is built (:mod:`shieldwall.detect.native`;
    the results are the same).
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        tz: tzinfo = UTC,
        max_line: int = 65536,
        max_tracked: int = 100_000,
        *,
        native: bool = True,
        live: bool = False,
    ) -> None:
        """``live``: lines are read as they are written (the agent), so a hit older than its
        rule's findtime at ``now`` is history — counted in ``stale``, never put in a bucket,
        never an alert (a first start on a log of two days raises nothing). Off for tools
        that replay a log as of its own time (``rules test``, the drill)."""
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
        self._units = tuple(_Unit(rule, tz, max_tracked, self.counters, native) for rule in rules)
        self._engines = tuple(
            u.matcher for u in self._units if isinstance(u.matcher, Fail2banEngine)
        )
        self._by_name = {unit.name: unit for unit in self._units}
        self._live = live

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
            if unit.counts_only:
                continue
            alert = unit.buckets.add(unit.name, source, at, text, found.distinct)
            if alert is not None:
                alerts.append(alert)

    def _count(self, lines: int, detection: Detection) -> None:
        counters = self.counters
        counters.inc("lines", lines)
        if detection.hits:
            counters.inc("hits", len(detection.hits))
        if detection.alerts:
            counters.inc("alerts", len(detection.alerts))

    def _clock(self, now: datetime) -> None:
        if self._engines:
            epoch = now.timestamp()
            for engine in self._engines:
                engine.at(epoch)
        if self._live:
            epoch = now.timestamp()
            for unit in self._units:
                unit.buckets.set_floor(epoch - unit.buckets.findtime)

    def feed(self, raw: bytes, now: datetime) -> Detection:
        """Process one raw line (without its newline). ``now`` must be timezone-aware."""
        now = _check_now(now)
        self._clock(now)
        detection = Detection()
        self._feed(raw, now, detection.hits, detection.alerts)
        self._count(1, detection)
        return detection

    def feed_many(
        self, lines: Iterable[bytes], now: datetime, *, hits: bool = True, tally: bool = False
    ) -> Detection:
        """Process many lines read at ``now``; hits and alerts in line order.

        Blocks of clean lines (valid UTF-8, no NUL or CR, none too long) are matched by
        block (:mod:`shieldwall.detect.scan`), with the same result as line by line. A
        :class:`~shieldwall.model.LineBlock` (a log source's ``Batch.line_block``) is
        scanned as the block it holds: its lines are split only for the paths that need
        them, never joined again.
        ``hits=False`` leaves ``Detection.hits`` empty (they are still counted): the cheap
        form for callers that only need alerts. ``tally=True`` fills ``Detection.tally``
        (hits per rule and source, first and last time): what the agent reports, without a
        :class:`Hit` per line.
        """
        now = _check_now(now)
        self._clock(now)
        if isinstance(lines, LineBlock):
            batch = lines
        else:
            batch = LineBlock(lines if isinstance(lines, list) else list(lines))
        detection = Detection(tally={} if tally else None)
        block = self._block(batch)
        if block is not None:
            found = self._feed_block(*block, batch, now, detection, hits)
            self.counters.inc("lines", batch.count)
            if found:
                self.counters.inc("hits", found)
            if detection.alerts:
                self.counters.inc("alerts", len(detection.alerts))
            return detection
        hit_list, alerts = detection.hits, detection.alerts
        feed = self._feed
        for raw in batch.lines:
            feed(raw, now, hit_list, alerts)
        self._count(batch.count, detection)
        if detection.tally is not None:
            tally_of(hit_list, detection.tally)
        if not hits:
            detection.hits = []
        return detection

    def _block(self, batch: LineBlock) -> tuple[bytes, str | None] | None:
        """The batch as one block (leading newline) of valid UTF-8, and its text if it is not
        all ASCII (decoding checked it); None if the batch needs the line path."""
        if batch.count < 2 or not batch.fits(self.max_line):
            return None
        data = b"\n" + batch.block
        if b"\x00" in data or b"\r" in data:
            return None
        if data.isascii():
            return data, None
        try:
            return data, data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def _feed_block(
        self,
        data: bytes,
        text: str | None,
        batch: LineBlock,
        now: datetime,
        detection: Detection,
        want: bool,
    ) -> int:
        """Match a block (``text``: its decoded form, None if it is ASCII) through every rule;
        returns the number of hits."""
        ordered: list[tuple[int, int, Hit]] | None = [] if want else None
        total = 0
        # what the C scan may take: the whole block, or its runs of ASCII lines
        runs: list[tuple[bytes, bool, int]] | None = None
        if not want:
            runs = [(data, True, batch.count)] if text is None else _ascii_runs(batch.lines)
        block = text or ""  # the text, made for the first rule that needs it
        for order, unit in enumerate(self._units):
            engine = unit.c_filter if runs is not None else None
            if runs is not None and (engine is not None or unit.c_scanner is not None):
                for run, ascii_run, count in runs:  # in line order: buckets see hits in order
                    if ascii_run and engine is not None:
                        total += self._filter_run(unit, engine, run, now, detection)
                    elif ascii_run:
                        total += self._native_run(unit, run, now, detection)
                    else:
                        text = run.decode("utf-8")
                        total += self._python_unit(unit, order, text, count, now, detection, None)
                continue
            if not block:
                block = data.decode("utf-8")
            total += self._python_unit(unit, order, block, batch.count, now, detection, ordered)
        if ordered is not None:
            ordered.sort(key=_by_line)
            detection.hits = [hit for _, _, hit in ordered]
        return total

    def _python_unit(
        self,
        unit: _Unit,
        order: int,
        block: str,
        lines: int,
        now: datetime,
        detection: Detection,
        ordered: list[tuple[int, int, Hit]] | None,
    ) -> int:
        """One rule over a text block of ``lines`` lines, in Python; returns its hits."""
        literal = unit.literal
        if literal is not None:
            seen = block.count(literal)
            if not seen:
                return 0
            if seen * 4 < lines:  # a selective prefilter: visit only the lines holding it
                return self._literal_lines(unit, order, literal, block, now, detection, ordered)
        if unit.scanner is None:
            return self._lines_of_block(unit, order, block, now, detection, ordered)
        return self._scan_block(unit, order, block, now, detection, ordered)

    def _native_run(self, unit: _Unit, data: bytes, now: datetime, detection: Detection) -> int:
        """One rule over an ASCII block, in C; returns its hits."""
        selective = False
        literal = unit.literal
        if literal is not None:  # how often the literal occurs, from a sample
            needle = literal.encode("utf-8")
            sample = data[:_SAMPLE]
            seen = sample.count(needle)
            if not seen and needle not in data:
                return 0
            selective = seen * 4 < sample.count(b"\n")
        return self._native_block(unit, data, selective, now, detection)

    def _native_block(
        self, unit: _Unit, data: bytes, selective: bool, now: datetime, detection: Detection
    ) -> int:
        """The C scan of one rule over an ASCII block (:mod:`shieldwall.detect.native`); a
        selective prefilter literal makes it visit only the lines that hold it."""
        buckets = unit.buckets
        ignore = unit.rule.compiled.ignore
        found, ignored, invalid, undated, alerts = unit.c_scanner.scan(
            data,
            selective,
            None if unit.counts_only else buckets.native,
            unit.name,
            detection.tally,
            Tallied,
            unit.addresses,
            unit.resolve,
            unit.stamp,
            now,
            now.timestamp(),
            None if ignore is None else ignore.search,
            unit.one_line,
        )
        counters = self.counters
        for name, value in (("ignored", ignored), ("invalid_host", invalid)):
            if value:
                counters.inc(name, value)
        return self._native_done(unit, found, undated, alerts, detection)

    def _filter_run(
        self,
        unit: _Unit,
        engine: Fail2banEngine,
        data: bytes,
        now: datetime,
        detection: Detection,
    ) -> int:
        """A fail2ban rule over an ASCII block, in C (the engine's filter); returns its hits."""
        found, undated, alerts = engine.scan(
            data,
            None if unit.counts_only else unit.buckets.native,
            unit.name,
            detection.tally,
            Tallied,
            unit.addresses,
            unit.resolve,
            now,
        )
        return self._native_done(unit, found, undated, alerts, detection)

    def _native_done(
        self, unit: _Unit, found: int, undated: int, alerts: list[Any], detection: Detection
    ) -> int:
        """After a C run: hits without a time counted, the C buckets synced, their alerts."""
        if undated:
            self.counters.inc("no_timestamp", undated)
        buckets = unit.buckets
        buckets.sync()
        detection.alerts.extend(buckets.native_alert(unit.name, raw) for raw in alerts)
        return int(found)

    def _scan_block(
        self,
        unit: _Unit,
        order: int,
        block: str,
        now: datetime,
        detection: Detection,
        ordered: list[tuple[int, int, Hit]] | None,
    ) -> int:
        """The hot loop: one regex search per hit, nothing per non-matching line."""
        scanner = unit.scanner
        if scanner is None:  # pragma: no cover - the caller checked
            return self._lines_of_block(unit, order, block, now, detection, ordered)
        search = scanner.regex.search
        slots = scanner.slots
        find = block.find
        counters = self.counters
        alerts = detection.alerts
        name = unit.name
        hit = None if unit.counts_only else unit.buckets.hit
        stamp = unit.stamp
        addresses = unit.addresses
        ignore = unit.rule.compiled.ignore
        literals = unit.rule.prefilter
        single = literals[0] if len(literals) == 1 else None
        tally = detection.tally
        now_key = now
        total = seen = line_no = pos = 0
        while (found := search(block, pos)) is not None:
            start = found.start() + 1
            end = find("\n", start)
            if end < 0:
                end = len(block)
            pos = end
            line = block[start:end]
            if single is not None:
                if single not in line:
                    continue  # the per-line prefilter would have refused this line
            elif literals and not any(lit in line for lit in literals):
                continue
            if found.end() > end:  # the match ran past its line: match the line alone
                one = unit.match(line)
                if one is None:
                    continue
                source, index = one.source, one.pattern
            else:
                index, host_group = slots[found.lastindex or 0]
                if ignore is not None and ignore.search(line) is not None:
                    counters.inc("ignored")
                    continue
                host = found.group(host_group)
                cached = addresses.get(host)
                if cached is None:
                    cached = cached_address(addresses, host, _ADDRESS_CACHE)
                    if cached is None:
                        counters.inc("invalid_host")
                        continue
                source = cached
            if line[:16] == stamp.key and stamp.now is now_key:
                epoch = stamp.epoch_value
            else:
                epoch = stamp.epoch(line, now)
            if epoch is None:
                counters.inc("no_timestamp")
                epoch = now.timestamp()
            total += 1
            if ordered is not None:
                line_no += block.count("\n", seen, start)
                seen = start
                at = stamp.get(line, now) or now
                ordered.append((line_no, order, Hit(name, source, at, index, line)))
            if tally is not None:  # count_hit, inlined in the hot loop
                key = (name, source._ip, source._version)  # type: ignore[union-attr]
                entry = tally.get(key)
                if entry is None:
                    tally[key] = Tallied(name, source, 1, epoch, epoch)
                else:
                    entry.add(epoch)
            if hit is None:
                continue
            alert = hit(name, source, epoch, line)
            if alert is not None:
                alerts.append(alert)
        return total

    def _literal_lines(
        self,
        unit: _Unit,
        order: int,
        literal: str,
        block: str,
        now: datetime,
        detection: Detection,
        ordered: list[tuple[int, int, Hit]] | None,
    ) -> int:
        """Rules with a selective prefilter literal: match only the lines that hold it."""
        find, rfind = block.find, block.rfind
        total = seen = line_no = 0
        pos = find(literal)
        while pos >= 0:
            start = rfind("\n", 0, pos) + 1
            end = find("\n", pos)
            if end < 0:
                end = len(block)
            pos = find(literal, end)
            line = block[start:end]
            one = unit.match(line)
            if one is None:
                continue
            total += 1
            if ordered is not None:
                line_no += block.count("\n", seen, start)
                seen = start
            self._record(unit, order, line, one, line_no, now, detection, ordered)
        return total

    def _lines_of_block(
        self,
        unit: _Unit,
        order: int,
        block: str,
        now: datetime,
        detection: Detection,
        ordered: list[tuple[int, int, Hit]] | None,
    ) -> int:
        """Rules that cannot be scanned by block: their lines one by one."""
        total = 0
        for line_no, line in enumerate(block[1:].split("\n"), 1):
            one = unit.match(line)
            if one is None:
                continue
            total += 1
            self._record(unit, order, line, one, line_no, now, detection, ordered)
        return total

    def _record(
        self,
        unit: _Unit,
        order: int,
        line: str,
        one: MatchResult,
        line_no: int,
        now: datetime,
        detection: Detection,
        ordered: list[tuple[int, int, Hit]] | None,
    ) -> None:
        """One hit found by a per-line match inside a block: time, hit, bucket."""
        at = unit.stamp.get(line, now)
        if at is None:
            self.counters.inc("no_timestamp")
            at = now
        if ordered is not None:
            ordered.append((line_no, order, Hit(unit.name, one.source, at, one.pattern, line)))
        epoch = at.timestamp()
        if detection.tally is not None:
            count_hit(detection.tally, unit.name, one.source, epoch)
        if unit.counts_only:
            return
        alert = unit.buckets.hit(unit.name, one.source, epoch, line, one.distinct)
        if alert is not None:
            detection.alerts.append(alert)

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
            at = unit.parse(text, now)
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

    def take_rows(self) -> list[list[Any]]:
        """The buckets changed since the last call, as ``[rule, source text, data or None]``
        (:meth:`BucketSet.take_rows`), over all rules: what the agent commits with a batch."""
        rows: list[list[Any]] = []
        for unit in self._units:
            rows += unit.buckets.take_rows()
        return rows

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


def _by_line(item: tuple[int, int, Hit]) -> tuple[int, int]:
    return item[0], item[1]


def _ascii_runs(batch: list[bytes]) -> list[tuple[bytes, bool, int]]:
    """The lines of ``batch`` (not all ASCII) as runs of consecutive lines, in order:
    ``(block with a leading newline, all ASCII, lines)``. The C scan takes the ASCII runs, so
    one line with a non-ASCII byte (an attacker can send one) moves only itself to the Python
    path."""
    return [
        (b"\n" + b"\n".join(group), ascii_run, len(group))
        for ascii_run, group in ((key, list(run)) for key, run in groupby(batch, bytes.isascii))
    ]
