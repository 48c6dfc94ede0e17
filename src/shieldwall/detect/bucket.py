"""Buckets on event time: count hits per (rule, source) and raise an alert on overflow.

Two kinds (a rule's ``bucket``):

``window`` (fail2ban)
    A bucket holds the times of the recent hits of one source for one rule. A hit older than
    ``findtime`` before the newest hit of the bucket falls out; when ``maxretry`` hits remain,
    the bucket overflows: :meth:`BucketSet.add` returns an :class:`~shieldwall.model.Alert`
    and the bucket is emptied.
``leaky`` (CrowdSec)
    Each hit adds one to the bucket's level, which leaks continuously at one per
    ``leakspeed`` seconds (never below zero). A hit that finds the level above
    ``capacity - 1`` overflows the bucket, so ``capacity + 1`` hits in a burst raise an
    alert, as CrowdSec's ``GetEventsCount() == capacity + 1``. A bucket that has leaked empty
    is gone. With ``distinct`` a hit whose value (a captured field, e.g. the user name) was
    already poured into the bucket is ignored (counter ``bucket_repeat``).

Either kind may have a ``blackhole``: after an alert, the next overflow of that (rule, source)
within that many seconds raises nothing (counter ``bucket_blackholed``), as CrowdSec does.

Times come from the log lines (event time), so replays and drills behave like production;
hits may arrive out of order (a late hit in a leaky bucket counts, but leaks nothing).

Memory is bounded: beyond ``max_tracked`` buckets the least recently touched one is evicted
(counter ``bucket_evicted``); a bucket keeps at most ``maxretry`` hits (``capacity + 1``) and
``4 * (capacity + 1)`` distinct values (as 64-bit digests). ``touched``/``export``/``restore``
let an adapter persist buckets across restarts without the core doing I/O.

Window sets without a blackhole keep their buckets in C when the extension is built
(:mod:`shieldwall.detect.native`): the same state, the same answers, and the detector's C scan
pours hits into them directly.
"""

from __future__ import annotations

import hashlib
import math
from bisect import insort
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeGuard

from shieldwall.detect import native as c_path
from shieldwall.errors import InvalidScope
from shieldwall.model import Address, Alert, Counters, parse_address
from shieldwall.net import host

if TYPE_CHECKING:
    from shieldwall.detect.rule import Rule

__all__ = ["EVIDENCE_CHARS", "BucketKey", "BucketRow", "BucketSet"]

EVIDENCE_CHARS: Final = 1000
"""Evidence lines are cut to this many characters."""

BucketKey: TypeAlias = tuple[str, Address]
"""``(rule name, source)``."""


_EPSILON: Final = 1e-9
"""Slack for float leaks: a level that leaked to within this of a bound is at the bound."""


@dataclass(frozen=True, slots=True)
class BucketRow:
    """One bucket as plain values, for a store.

    ``timestamps`` are epoch seconds, oldest first; ``evidence`` holds the matching lines in
    the same order. Leaky buckets add their ``level`` (at the newest hit), ``count`` (hits
    poured since the bucket was created) and ``distinct`` (digests of the values poured).
    ``blackhole_until`` (epoch seconds) outlives the bucket. A row with no timestamps and no
    blackhole means the bucket no longer exists (:attr:`empty`: delete the stored row).
    """

    rule: str
    source: str
    timestamps: list[float]
    evidence: list[str]
    level: float | None = None
    count: int = 0
    distinct: list[str] = field(default_factory=list)
    blackhole_until: float | None = None

    @property
    def empty(self) -> bool:
        return not self.timestamps and self.blackhole_until is None

    def to_data(self) -> dict[str, Any] | None:
        """The row's state as a JSON-ready mapping, or None if the row is :attr:`empty`."""
        if self.empty:
            return None
        data: dict[str, Any] = {"timestamps": self.timestamps, "evidence": self.evidence}
        if self.level is not None:
            data["level"] = self.level
        if self.count:
            data["count"] = self.count
        if self.distinct:
            data["distinct"] = self.distinct
        if self.blackhole_until is not None:
            data["blackhole_until"] = self.blackhole_until
        return data

    @classmethod
    def from_data(cls, rule: str, source: str, data: object) -> BucketRow:
        """A row from :meth:`to_data`'s mapping (or an older one with only timestamps and
        evidence). Missing or mistyped parts are dropped; :meth:`BucketSet.restore` checks
        the values."""
        mapping: Mapping[str, object] = data if isinstance(data, Mapping) else {}
        get = mapping.get
        times, evidence, distinct = get("timestamps"), get("evidence"), get("distinct")
        level, count, until = get("level"), get("count"), get("blackhole_until")
        return cls(
            rule=rule,
            source=source,
            timestamps=[float(t) for t in times if _number(t)] if isinstance(times, list) else [],
            evidence=[str(e) for e in evidence] if isinstance(evidence, list) else [],
            level=float(level) if _number(level) else None,
            count=count if isinstance(count, int) and not isinstance(count, bool) else 0,
            distinct=[d for d in distinct if isinstance(d, str)]
            if isinstance(distinct, list)
            else [],
            blackhole_until=float(until) if _number(until) else None,
        )


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Bucket:
    __slots__ = ("count", "hits", "level", "seen", "source")

    def __init__(self, source: Address) -> None:
        self.source = source
        self.hits: list[tuple[float, str]] = []  # (epoch seconds, evidence line), sorted
        self.level = 0.0  # leaky: the level at the newest hit's time
        self.count = 0  # leaky: hits poured since the bucket was created
        self.seen: dict[str, None] | None = None  # distinct: value digests, oldest first


def _digest(value: str) -> str:
    """A stable 64-bit digest of a distinct value: bounded memory, and no attacker text kept."""
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


_IKey: TypeAlias = tuple[str, int, int]
"""Internal key ``(rule, address as int, IP version)``: hashing an ``ipaddress`` object runs
Python code (``hash(hex(int(ip)))``) on every dict lookup, an int tuple hashes in C."""


def _ikey(rule: str, source: Address) -> _IKey:
    return (rule, source._ip, source._version)  # type: ignore[union-attr]  # stdlib slots


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class BucketSet:
    """The buckets of one rule (keys still carry the rule name, so rows are self-describing).

    ``BucketSet(maxretry, findtime)`` is a window set, :meth:`leaky` a leaky one and
    :meth:`for_rule` the one a rule asks for. ``max_tracked`` bounds the number of buckets;
    ``bantime`` is copied into alerts; ``blackhole`` (seconds) silences a source's overflows
    for that long after its alert.

    In a leaky set ``maxretry`` is ``capacity + 1`` (a burst that overflows) and ``findtime``
    is ``(capacity + 1) * leakspeed`` (the longest a bucket can live without a hit).

    ``native`` (window sets): ``None`` keeps the buckets in C when the extension is built and
    there is no blackhole, ``False`` keeps them in Python, ``True`` requires C (ValueError
    otherwise). Either way the answers are the same (``tests/detect/test_native.py``).
    """

    __slots__ = (
        "_blackholes",
        "_buckets",
        "_counters",
        "_native",
        "_seen_limit",
        "_touched",
        "_tracking",
        "bantime",
        "blackhole",
        "capacity",
        "distinct",
        "findtime",
        "floor",
        "leakspeed",
        "max_tracked",
        "maxretry",
    )

    def __init__(
        self,
        maxretry: int,
        findtime_seconds: float,
        max_tracked: int = 100_000,
        *,
        bantime: float | None = None,
        counters: Counters | None = None,
        blackhole: float | None = None,
        native: bool | None = None,
    ) -> None:
        if maxretry < 1:
            raise ValueError("maxretry must be at least 1")
        if not findtime_seconds > 0:
            raise ValueError("findtime must be positive")
        if max_tracked < 1:
            raise ValueError("max_tracked must be at least 1")
        if blackhole is not None and not blackhole > 0:
            raise ValueError("blackhole must be positive")
        self.maxretry = maxretry
        self.findtime = float(findtime_seconds)
        self.max_tracked = max_tracked
        self.bantime = bantime
        self.blackhole = blackhole
        self.capacity: int | None = None
        self.leakspeed: float | None = None
        self.distinct = False
        self.floor = -math.inf
        """Hits before this epoch are history (:meth:`set_floor`): counted, not bucketed."""
        self._seen_limit = 0
        self._counters = counters if counters is not None else Counters()
        self._buckets: OrderedDict[_IKey, _Bucket] = OrderedDict()
        self._blackholes: dict[_IKey, tuple[float, Address]] = {}  # until, source
        self._touched: dict[_IKey, Address] = {}
        self._tracking = False
        # window buckets in C (None: here): by default when built and no blackhole is asked
        module = c_path.NATIVE
        if native and (module is None or blackhole is not None):
            raise ValueError("native window buckets need the C extension and no blackhole")
        use_native = blackhole is None and native is not False
        self._native: Any = (
            module.Windows(maxretry, self.findtime, max_tracked, EVIDENCE_CHARS)
            if use_native and module is not None
            else None
        )

    @classmethod
    def leaky(
        cls,
        capacity: int,
        leakspeed: float,
        max_tracked: int = 100_000,
        *,
        distinct: bool = False,
        blackhole: float | None = None,
        bantime: float | None = None,
        counters: Counters | None = None,
    ) -> BucketSet:
        """A set of CrowdSec leaky buckets: ``capacity`` hits fit, one leaks per ``leakspeed``
        seconds; with ``distinct`` only values new to a bucket count (see :meth:`hit`)."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if not leakspeed > 0:
            raise ValueError("leakspeed must be positive")
        buckets = cls(
            capacity + 1,
            (capacity + 1) * leakspeed,
            max_tracked,
            bantime=bantime,
            counters=counters,
            blackhole=blackhole,
            native=False,
        )
        buckets.capacity = capacity
        buckets.leakspeed = float(leakspeed)
        buckets.distinct = distinct
        buckets._seen_limit = 4 * (capacity + 1)
        return buckets

    @classmethod
    def for_rule(
        cls,
        rule: Rule,
        max_tracked: int = 100_000,
        *,
        counters: Counters | None = None,
        native: bool | None = None,
    ) -> BucketSet:
        """The bucket set ``rule`` describes (its ``bucket`` kind and settings); ``native``
        as in the constructor (window sets only)."""
        if rule.bucket == "leaky":
            if rule.capacity is None or rule.leakspeed is None:  # Rule checks this already
                raise ValueError(f"rule {rule.name!r}: a leaky bucket needs capacity, leakspeed")
            return cls.leaky(
                rule.capacity,
                rule.leakspeed,
                max_tracked,
                distinct=rule.distinct is not None,
                blackhole=rule.blackhole,
                bantime=rule.bantime,
                counters=counters,
            )
        return cls(
            rule.maxretry,
            rule.findtime,
            max_tracked,
            bantime=rule.bantime,
            counters=counters,
            blackhole=rule.blackhole,
            native=native,
        )

    def __len__(self) -> int:
        return len(self._native if self._native is not None else self._buckets)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        rule, source = key
        if not isinstance(rule, str):
            return False
        if self._native is not None:
            return self._native.get(rule, source) is not None
        return _ikey(rule, source) in self._buckets

    @property
    def counters(self) -> Counters:
        return self._counters

    @property
    def native(self) -> Any:
        """The C store of this set's window buckets (``_native.Windows``), or None."""
        return self._native

    def native_alert(
        self, rule: str, raw: tuple[Address, tuple[float, ...], tuple[str, ...], int]
    ) -> Alert:
        """The alert of the C store's ``(source, times, lines, count)``."""
        source, times, lines, count = raw
        return self._alert_of(rule, source, times[0], times[-1], count, lines)

    def sync(self) -> None:
        """Move the C store's counts (evictions, touched overflow, history) into
        ``counters``."""
        if self._native is not None:
            evicted, overflow, stale = self._native.take_counts()
            if evicted:
                self._counters.inc("bucket_evicted", evicted)
            if overflow:
                self._counters.inc("bucket_touched_overflow", overflow)
            if stale:
                self._counters.inc("stale", stale)

    def set_floor(self, epoch: float) -> None:
        """From now on a hit before ``epoch`` is history: counted in ``stale`` and never
        put in a bucket (a log read long after it was written raises no alert)."""
        self.floor = epoch
        if self._native is not None:
            self._native.set_floor(epoch)

    def _touch(self, key: _IKey, source: Address) -> None:
        if self._tracking:
            touched = self._touched
            touched[key] = source
            if len(touched) > 4 * self.max_tracked:
                # Nobody is collecting: stop before this grows without bound. The next
                # touched() returns every live key (a full resync of live buckets).
                touched.clear()
                self._tracking = False
                self._counters.inc("bucket_touched_overflow")

    def add(
        self, rule: str, source: Address, at: datetime, line: str, distinct: str | None = None
    ) -> Alert | None:
        """Record one hit at ``at`` (aware); return an alert if the bucket overflows.

        ``distinct`` is the hit's value of the rule's distinct field (:attr:`MatchResult.
        distinct <shieldwall.detect.matcher.MatchResult.distinct>`); it only matters in a set
        made with ``distinct=True``, where ``None`` counts as ``""``.
        """
        return self.hit(rule, source, at.timestamp(), line, distinct)

    def hit(
        self, rule: str, source: Address, epoch: float, line: str, distinct: str | None = None
    ) -> Alert | None:
        """:meth:`add` with the time as epoch seconds (the detector's fast path)."""
        if epoch < self.floor:
            self._counters.inc("stale")
            return None
        if self._native is not None:
            raw = self._native.hit(rule, source, epoch, line)
            self.sync()
            return None if raw is None else self.native_alert(rule, raw)
        key = (rule, source._ip, source._version)  # type: ignore[union-attr]  # see _ikey
        if len(line) > EVIDENCE_CHARS:
            line = line[:EVIDENCE_CHARS]
        leakspeed = self.leakspeed
        if leakspeed is not None:
            return self._pour(key, rule, source, epoch, line, distinct, leakspeed)
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            if self.maxretry == 1:
                self._touch(key, source)
                return self._overflow(key, rule, source, [(epoch, line)], epoch, 1)
            bucket = _Bucket(source)
            buckets[key] = bucket
            if len(buckets) > self.max_tracked:
                evicted, gone = buckets.popitem(last=False)
                self._counters.inc("bucket_evicted")
                self._touch(evicted, gone.source)
        else:
            buckets.move_to_end(key)
        hits = bucket.hits
        if not hits or epoch >= hits[-1][0]:
            hits.append((epoch, line))
        else:
            insort(hits, (epoch, line), key=_first)
        cutoff = hits[-1][0] - self.findtime
        if hits[0][0] < cutoff:
            keep = 0
            while hits[keep][0] < cutoff:
                keep += 1
            del hits[:keep]
        self._touch(key, source)
        if len(hits) >= self.maxretry:
            del buckets[key]
            return self._overflow(key, rule, source, hits, hits[-1][0], len(hits))
        return None

    def _pour(
        self,
        key: _IKey,
        rule: str,
        source: Address,
        epoch: float,
        line: str,
        distinct: str | None,
        leakspeed: float,
    ) -> Alert | None:
        """One hit into a leaky bucket (see the module docstring)."""
        capacity = self.maxretry - 1
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is not None:
            newest = bucket.hits[-1][0]
            if epoch > newest and bucket.level - (epoch - newest) / leakspeed <= _EPSILON:
                del buckets[key]  # it leaked empty before this hit: a new bucket starts
                bucket = None
        digest = None
        if self.distinct:
            digest = _digest(distinct or "")
            if bucket is not None and bucket.seen is not None and digest in bucket.seen:
                self._counters.inc("bucket_repeat")
                return None
        if bucket is None:
            bucket = _Bucket(source)
            if self.distinct:
                bucket.seen = {}
            buckets[key] = bucket
            if len(buckets) > self.max_tracked:
                evicted, gone = buckets.popitem(last=False)
                self._counters.inc("bucket_evicted")
                self._touch(evicted, gone.source)
        else:
            buckets.move_to_end(key)
        hits = bucket.hits
        if hits and epoch > hits[-1][0]:
            bucket.level = max(0.0, bucket.level - (epoch - hits[-1][0]) / leakspeed)
        if not hits or epoch >= hits[-1][0]:
            hits.append((epoch, line))
        else:
            insort(hits, (epoch, line), key=_first)
        bucket.count += 1
        seen = bucket.seen
        if digest is not None and seen is not None:
            seen[digest] = None
            if len(seen) > self._seen_limit:
                del seen[next(iter(seen))]
        self._touch(key, source)
        if bucket.level + 1.0 > capacity + _EPSILON:
            del buckets[key]
            return self._overflow(key, rule, source, hits, epoch, bucket.count)
        # within _EPSILON of full counts as not full: never let rounding carry it above
        bucket.level = min(bucket.level + 1.0, float(capacity))
        if len(hits) > capacity:
            del hits[: len(hits) - capacity]
        return None

    def _overflow(
        self,
        key: _IKey,
        rule: str,
        source: Address,
        hits: list[tuple[float, str]],
        epoch: float,
        count: int,
    ) -> Alert | None:
        """The alert of a bucket that overflowed at ``epoch``, unless it is blackholed."""
        if self.blackhole is not None:
            blackholes = self._blackholes
            held = blackholes.pop(key, None)
            if held is not None and held[0] > epoch:
                blackholes[key] = held
                self._counters.inc("bucket_blackholed")
                return None
            blackholes[key] = (epoch + self.blackhole, source)
            if len(blackholes) > self.max_tracked:
                evicted = next(iter(blackholes))
                _, gone = blackholes.pop(evicted)
                self._counters.inc("bucket_evicted")
                self._touch(evicted, gone)
        return self._alert(rule, source, hits, count)

    def _alert(
        self, rule: str, source: Address, hits: list[tuple[float, str]], count: int
    ) -> Alert:
        evidence = hits[-self.maxretry :]
        lines = tuple(line for _, line in evidence)
        return self._alert_of(rule, source, evidence[0][0], evidence[-1][0], count, lines)

    def _alert_of(
        self,
        rule: str,
        source: Address,
        first: float,
        last: float,
        count: int,
        lines: tuple[str, ...],
    ) -> Alert:
        return Alert(
            rule=rule,
            source=source,
            first=_when(first),
            last=_when(last),
            count=count,
            evidence=lines,
            bantime=self.bantime,
        )

    def prune(self, now: datetime) -> int:
        """Drop buckets with nothing left at ``now``, and ended blackholes; return how many
        buckets went. A window bucket goes when its newest hit is older than
        ``now - findtime``, a leaky one when it has leaked empty."""
        epoch = now.timestamp()
        leakspeed = self.leakspeed
        if self._native is not None:
            dropped: int = self._native.prune(epoch - self.findtime)
            self.sync()
            return dropped
        if leakspeed is None:
            cutoff = epoch - self.findtime
            stale = [key for key, bucket in self._buckets.items() if bucket.hits[-1][0] < cutoff]
        else:
            stale = [
                key
                for key, bucket in self._buckets.items()
                if bucket.level - (epoch - bucket.hits[-1][0]) / leakspeed <= _EPSILON
            ]
        for key in stale:
            gone = self._buckets.pop(key)
            self._touch(key, gone.source)
        ended = [key for key, (until, _) in self._blackholes.items() if until <= epoch]
        for key in ended:
            _, source = self._blackholes.pop(key)
            self._touch(key, source)
        return len(stale)

    def touched(self) -> set[BucketKey]:
        """Keys created, changed, emptied or evicted since the last call (then forgotten).

        Tracking starts with the first call, which returns every live key; until then nothing
        is recorded, so a detector without persistence keeps no such set.
        """
        if self._native is not None:
            keys: set[BucketKey] = set(self._native.touched())
            self.sync()
            return keys
        if not self._tracking:
            self._tracking = True
            self._touched = {}
            live = {(key[0], bucket.source) for key, bucket in self._buckets.items()}
            return live | {(key[0], source) for key, (_, source) in self._blackholes.items()}
        touched, self._touched = self._touched, {}
        return {(key[0], source) for key, source in touched.items()}

    def take_rows(self) -> list[list[Any]]:
        """What :meth:`touched` names, exported at once: ``[rule, source text, data]`` each
        (``data`` as :meth:`BucketRow.to_data` gives it, None for a bucket that is gone) —
        in one C call for a native set, so a batch that touched thousands of buckets costs
        no Python loop over them."""
        if self._native is not None:
            rows: list[list[Any]] = self._native.take_rows()
            self.sync()
            return rows
        return [[row.rule, row.source, row.to_data()] for row in self.export(self.touched())]

    def export(self, keys: Iterable[BucketKey]) -> list[BucketRow]:
        """Rows for ``keys``; a key without a bucket or blackhole gives an :attr:`empty
        <BucketRow.empty>` row (deleted)."""
        rows = []
        leaky = self.leakspeed is not None
        for rule, source in keys:
            if self._native is not None:
                held_hits = self._native.get(rule, source)
                times, lines = held_hits if held_hits is not None else ([], [])
                rows.append(
                    BucketRow(
                        rule=rule, source=host(source).text(), timestamps=times, evidence=lines
                    )
                )
                continue
            key = _ikey(rule, source)
            bucket = self._buckets.get(key)
            held = self._blackholes.get(key)
            hits = bucket.hits if bucket is not None else []
            rows.append(
                BucketRow(
                    rule=rule,
                    source=host(source).text(),
                    timestamps=[epoch for epoch, _ in hits],
                    evidence=[line for _, line in hits],
                    level=bucket.level if bucket is not None and leaky else None,
                    count=bucket.count if bucket is not None and leaky else 0,
                    distinct=list(bucket.seen) if bucket is not None and bucket.seen else [],
                    blackhole_until=held[0] if held is not None else None,
                )
            )
        return rows

    def restore(self, rows: Iterable[BucketRow]) -> None:
        """Load rows from :meth:`export`. Bad rows are skipped and counted (``bucket_bad_row``).

        At most ``maxretry - 1`` hits are kept per bucket (the newest), so restoring never
        raises an alert by itself; a leaky level is kept between 0 and ``capacity`` (a row
        without one gets its number of hits). Restored buckets do not count as touched.
        """
        for row in rows:
            try:
                source = parse_address(row.source)
            except InvalidScope:
                self._counters.inc("bucket_bad_row")
                continue
            times = [float(t) for t in row.timestamps]
            numbers = [*times, *(v for v in (row.level, row.blackhole_until) if v is not None)]
            if not all(math.isfinite(t) for t in numbers):
                self._counters.inc("bucket_bad_row")
                continue
            if self._native is not None:
                kept = _newest(times, row.evidence, self.maxretry - 1)
                if kept:
                    self._native.put(row.rule, source, [t for t, _ in kept], [e for _, e in kept])
                else:
                    self._native.drop(row.rule, source)
                self.sync()
                continue
            key = _ikey(row.rule, source)
            if row.blackhole_until is not None and self.blackhole is not None:
                self._blackholes[key] = (row.blackhole_until, source)
            else:
                self._blackholes.pop(key, None)
            hits = _newest(times, row.evidence, self.maxretry - 1)
            if not hits:
                self._buckets.pop(key, None)
                continue
            bucket = _Bucket(source)
            bucket.hits = hits
            if self.capacity is not None:
                level = float(len(hits)) if row.level is None else row.level
                bucket.level = min(max(level, 0.0), float(self.capacity))
                bucket.count = max(row.count, len(hits))
            if self.distinct:
                bucket.seen = dict.fromkeys(row.distinct[-self._seen_limit :])
            self._buckets[key] = bucket
            self._buckets.move_to_end(key)
            if len(self._buckets) > self.max_tracked:
                self._buckets.popitem(last=False)
                self._counters.inc("bucket_evicted")


def _first(hit: tuple[float, str]) -> float:
    return hit[0]


def _newest(times: list[float], evidence: list[str], keep: int) -> list[tuple[float, str]]:
    """A restored row's hits: paired with their lines from the newest end (a line missing is
    ""), cut to ``EVIDENCE_CHARS``, sorted, the newest ``keep``."""
    count = len(times)
    lines = [str(line)[:EVIDENCE_CHARS] for line in evidence][-count:] if count else []
    lines = [""] * (count - len(lines)) + lines
    hits = sorted(zip(times, lines, strict=True))
    return hits[-keep:] if keep else []
