"""Drill inputs: event CSVs and the marx honeypot CSV, read as streams (bounded memory).

Two formats, told apart by the header:

events
    ``time,member,source[,kind][,rule][,legit]`` — ``time`` is ISO 8601 (a naive time is
    UTC) or epoch seconds; ``kind`` is ``fail`` (default) or ``success``; ``legit`` (0/1) is
    ground truth, used for scoring only.
marx
    ``datetime,host,src,proto,type,spt,dpt`` — the AWS honeypot data set: ``src`` is an
    IPv4 address as an unsigned 32-bit integer, ``host`` the sensor (one member per sensor),
    ``datetime`` UTC. Each row is one failed attempt for rule ``drill``; ``port`` keeps
    only rows with that ``dpt`` (``proto`` TCP).

A ``.gz`` file is read as it is. Malformed rows are skipped and counted, never fatal.

:meth:`Reader.tuples` is the fast path the drill replays: plain :data:`Row` tuples, with the
per-value parsing (addresses, members, kinds) done once per distinct text; iterating a
:class:`Reader` gives the same events as :class:`DrillEvent` objects.
"""

from __future__ import annotations

import csv
import gzip
import io
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import BinaryIO, TextIO, TypeAlias, TypeVar

from shieldwall.errors import InvalidScope
from shieldwall.model import Address, parse_address

__all__ = [
    "FAIL",
    "SUCCESS",
    "DrillEvent",
    "Key",
    "Reader",
    "Row",
    "address_of",
    "event_of",
    "open_bytes",
    "open_text",
    "parse_time",
    "read_events",
    "row_of",
    "source_key",
]

FAIL = "fail"
SUCCESS = "success"
DEFAULT_RULE = "drill"

_EVENT_FIELDS = frozenset({"time", "member", "source", "kind", "rule", "legit"})
_MARX_FIELDS = ("datetime", "host", "src")
_CACHE_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class DrillEvent:
    """One attempt (``kind`` fail) or login (``kind`` success) by ``source`` at ``member``."""

    time: float
    """Epoch seconds (event time)."""
    member: str
    source: Address
    kind: str = FAIL
    rule: str = DEFAULT_RULE
    legit: bool = False


Key: TypeAlias = int | ipaddress.IPv6Address
"""A source as a dict key: an IPv4 address is its integer (hashed in C, unlike an
``IPv4Address``); an IPv6 address is itself (an int never equals one, so keys never collide)."""

Row: TypeAlias = tuple[float, str, Key, bool, str, Address, bool]
"""One event as the drill replays it: ``(time, member, key, fail, rule, source, legit)``;
``fail`` is ``kind == "fail"``, ``key`` is :func:`source_key` of ``source``."""


def source_key(source: Address) -> Key:
    """``source`` as a :data:`Key`."""
    if isinstance(source, ipaddress.IPv4Address):
        return source._ip  # type: ignore[attr-defined,no-any-return]  # stdlib slot
    return source


def address_of(key: Key) -> Address:
    """The address of a :data:`Key`."""
    return ipaddress.IPv4Address(key) if isinstance(key, int) else key


def row_of(e: DrillEvent) -> Row:
    """``e`` as a :data:`Row`."""
    return (e.time, e.member, source_key(e.source), e.kind == FAIL, e.rule, e.source, e.legit)


def event_of(row: Row) -> DrillEvent:
    """A :data:`Row` read from a file as the :class:`DrillEvent` it stands for."""
    t, member, _, fail, rule, source, legit = row
    return DrillEvent(t, member, source, FAIL if fail else SUCCESS, rule, legit)


@dataclass(slots=True)
class Reader:
    """Streams the events of one file; ``skipped`` counts malformed rows, ``fmt`` is the
    format found (``events`` or ``marx``) once reading has started."""

    path: Path
    port: int | None = None
    rule: str = DEFAULT_RULE
    skipped: int = 0
    rows: int = 0
    fmt: str = ""
    _addresses: dict[str, tuple[Address, Key]] = field(default_factory=dict)

    def __iter__(self) -> Iterator[DrillEvent]:
        return map(event_of, self.tuples())

    def tuples(self) -> Iterator[Row]:
        """The events of the file as :data:`Row` tuples (the drill's fast path)."""
        with open_text(self.path) as fh:
            lines = iter(fh)
            header = next(csv.reader(lines), None)
            if header is None:
                return
            names = [h.strip().lower() for h in header]
            if all(n in names for n in _MARX_FIELDS):
                self.fmt = "marx"
                yield from self._marx(_records(lines), names)
            elif {"time", "member", "source"} <= set(names):
                self.fmt = "events"
                yield from self._events(lines, names)
            else:
                raise ValueError(
                    f"{self.path}: unknown header {header!r}: expected time,member,source"
                    "[,kind,rule,legit] or marx's datetime,host,src,…"
                )

    def _address(self, text: str, strip: bool) -> tuple[Address, Key]:
        """An address (an integer, as marx writes them, or IP text) and its key, cached by
        ``text`` as read (``strip``: leading and trailing spaces do not count)."""
        cache = self._addresses
        found = cache.get(text)
        if found is None:
            plain = text.strip() if strip else text
            addr = ipaddress.IPv4Address(int(plain)) if plain.isdigit() else parse_address(plain)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            found = cache[text] = (addr, source_key(addr))
        return found

    def _marx(self, reader: Iterator[list[str]], names: list[str]) -> Iterator[Row]:
        i_time, i_host, i_src = (names.index(n) for n in _MARX_FIELDS)
        i_proto = names.index("proto") if "proto" in names else None
        i_dpt = names.index("dpt") if "dpt" in names else None
        port = str(self.port) if self.port is not None else None
        if port is not None and i_dpt is None:
            raise ValueError(f"{self.path}: --port needs a dpt column")
        rule = self.rule
        last_text = ""
        last_time = 0.0
        addresses = self._addresses
        address = self._address
        rows = 0
        try:
            for row in reader:
                rows += 1
                try:
                    if (
                        port is not None
                        and i_dpt is not None
                        and (row[i_dpt] != port or (i_proto is not None and row[i_proto] != "TCP"))
                    ):
                        continue
                    text = row[i_time]
                    if text != last_text:
                        last_time = parse_time(text)
                        last_text = text
                    host = row[i_host]
                    src = row[i_src]
                    addr, key = addresses.get(src) or address(src, False)
                    yield (last_time, host, key, True, rule, addr, False)
                except (IndexError, ValueError, InvalidScope):
                    self.skipped += 1
        finally:
            self.rows += rows

    def _events(self, lines: Iterator[str], names: list[str]) -> Iterator[Row]:
        idx = {n: names.index(n) for n in _EVENT_FIELDS if n in names}
        i_time, i_member, i_source = idx["time"], idx["member"], idx["source"]
        i_kind, i_rule, i_legit = idx.get("kind"), idx.get("rule"), idx.get("legit")
        default_rule = self.rule
        # each column's few distinct texts are parsed once: text -> value
        kinds: dict[str, bool] = {}
        rules: dict[str, str] = {}
        legits: dict[str, bool] = {}
        members: dict[str, str] = {}
        tails: dict[str, tuple[bool, str, bool]] = {}
        addresses = self._addresses
        address = self._address

        def member_of(text: str) -> str:
            member = text.strip()
            if not member:
                raise ValueError("no member")
            return _cache(members, text, member)

        def event(row: list[str]) -> Row:
            """One record; IndexError, ValueError or InvalidScope when it is malformed."""
            text = row[i_kind] if i_kind is not None else ""
            fail = kinds.get(text)
            if fail is None:
                fail = _cache(kinds, text, _fail(text))
            text = row[i_rule] if i_rule is not None else ""
            rule = rules.get(text)
            if rule is None:
                rule = _cache(rules, text, text.strip() or default_rule)
            text = row[i_legit] if i_legit is not None else ""
            legit = legits.get(text)
            if legit is None:
                legit = _cache(legits, text, text.strip() in ("1", "true"))
            text = row[i_member]
            member = members.get(text) or member_of(text)
            text = row[i_time]
            try:
                t = float(text)  # float() ignores surrounding whitespace as strip() does
            except ValueError:
                t = parse_time(text)
            text = row[i_source]
            addr, key = addresses.get(text) or address(text, True)
            return (t, member, key, fail, rule, addr, legit)

        def tail(text: str) -> tuple[bool, str, bool]:
            """The standard layout's ``kind,rule,legit[,…]`` (with the line's end), as
            :func:`event` reads them."""
            row = ["", "", "", *text.rstrip("\r\n").split(",")]
            fail = _fail(row[3])
            rule, legit = row[4].strip() or default_rule, row[5].strip() in ("1", "true")
            return _cache(tails, text, (fail, rule, legit))

        rows = 0
        try:
            if names[:6] != ["time", "member", "source", "kind", "rule", "legit"]:
                for row in _records(lines):
                    rows += 1
                    try:
                        yield event(row)
                    except (IndexError, ValueError, InvalidScope):
                        self.skipped += 1
                return
            # the standard layout (as ``generate`` writes it): time, member and source, then
            # the rest of the line as one text, parsed once per distinct text
            limit = csv.field_size_limit()
            for line in lines:
                parts = line.split(",", 3)
                if len(parts) != 4 or '"' in line or "\0" in line or len(line) > limit:
                    record = _record(line, lines, limit)
                    if record is None:
                        continue
                    rows += 1
                    try:
                        yield event(record)
                    except (IndexError, ValueError, InvalidScope):
                        self.skipped += 1
                    continue
                rows += 1
                try:
                    text = parts[3]
                    fail, rule, legit = tails.get(text) or tail(text)
                    text = parts[1]
                    member = members.get(text) or member_of(text)
                    text = parts[0]
                    try:
                        t = float(text)
                    except ValueError:
                        t = parse_time(text)
                    text = parts[2]
                    addr, key = addresses.get(text) or address(text, True)
                    yield (t, member, key, fail, rule, addr, legit)
                except (IndexError, ValueError, InvalidScope):
                    self.skipped += 1
        finally:
            self.rows += rows


def _records(lines: Iterator[str]) -> Iterator[list[str]]:
    """``csv.reader(lines)``'s records (see :func:`_record`)."""
    limit = csv.field_size_limit()
    for line in lines:
        record = _record(line, lines, limit)
        if record is not None:
            yield record


def _record(line: str, lines: Iterator[str], limit: int) -> list[str] | None:
    """The record that starts with ``line``, as ``csv.reader`` reads it, faster: a line
    without a quote (nearly all of them) is split at its commas, which gives the same fields;
    any other line goes through ``csv.reader``, which reads on in ``lines`` as far as its
    record goes (and raises as it does on a NUL or a field over ``limit``)."""
    if '"' in line or "\0" in line or len(line) > limit:
        return next(csv.reader(chain((line,), lines)), None)
    text = line.rstrip("\r\n")
    return text.split(",") if text else []


_T = TypeVar("_T")


def _cache(cache: dict[str, _T], text: str, value: _T) -> _T:
    """Remember ``value`` for ``text`` (a bounded cache: it starts again when full)."""
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[text] = value
    return value


def _fail(text: str) -> bool:
    """True for a failed attempt; ValueError for a kind that is neither."""
    kind = text.strip().lower()
    if kind in ("", FAIL, "failure"):
        return True
    if kind != SUCCESS:
        raise ValueError(kind)
    return False


def parse_time(text: str) -> float:
    """ISO 8601 (naive = UTC; ``Z`` accepted) or epoch seconds; ValueError otherwise."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def open_bytes(path: Path) -> BinaryIO:
    """``path``'s bytes; gunzipped when it starts with gzip's magic bytes."""
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile reads bytes
    return path.open("rb")


def open_text(path: Path) -> TextIO:
    """``path`` as text (UTF-8, bad bytes replaced); gzip when it starts with gzip's magic."""
    return io.TextIOWrapper(open_bytes(path), encoding="utf-8", errors="replace", newline="")


def read_events(path: str | Path, *, port: int | None = None) -> Reader:
    """A re-iterable stream of the events of ``path`` (either format)."""
    return Reader(Path(path), port=port)
