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
"""

from __future__ import annotations

import csv
import gzip
import io
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from shieldwall.errors import InvalidScope
from shieldwall.model import Address, parse_address

__all__ = ["FAIL", "SUCCESS", "DrillEvent", "Reader", "open_text", "read_events"]

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
    _addresses: dict[str, Address] = field(default_factory=dict)

    def __iter__(self) -> Iterator[DrillEvent]:
        with open_text(self.path) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return
            names = [h.strip().lower() for h in header]
            if all(n in names for n in _MARX_FIELDS):
                self.fmt = "marx"
                yield from self._marx(reader, names)
            elif {"time", "member", "source"} <= set(names):
                self.fmt = "events"
                yield from self._events(reader, names)
            else:
                raise ValueError(
                    f"{self.path}: unknown header {header!r}: expected time,member,source"
                    "[,kind,rule,legit] or marx's datetime,host,src,…"
                )

    def _address(self, text: str) -> Address:
        cache = self._addresses
        addr = cache.get(text)
        if addr is None:
            addr = ipaddress.IPv4Address(int(text)) if text.isdigit() else parse_address(text)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[text] = addr
        return addr

    def _marx(self, reader: Iterator[list[str]], names: list[str]) -> Iterator[DrillEvent]:
        i_time, i_host, i_src = (names.index(n) for n in _MARX_FIELDS)
        i_proto = names.index("proto") if "proto" in names else None
        i_dpt = names.index("dpt") if "dpt" in names else None
        port = str(self.port) if self.port is not None else None
        if port is not None and i_dpt is None:
            raise ValueError(f"{self.path}: --port needs a dpt column")
        rule = self.rule
        last_text = ""
        last_time = 0.0
        for row in reader:
            self.rows += 1
            try:
                if (
                    port is not None
                    and i_dpt is not None
                    and (row[i_dpt] != port or (i_proto is not None and row[i_proto] != "TCP"))
                ):
                    continue
                text = row[i_time]
                if text != last_text:
                    last_time = _parse_time(text)
                    last_text = text
                yield DrillEvent(last_time, row[i_host], self._address(row[i_src]), FAIL, rule)
            except (IndexError, ValueError, InvalidScope):
                self.skipped += 1

    def _events(self, reader: Iterator[list[str]], names: list[str]) -> Iterator[DrillEvent]:
        idx = {n: names.index(n) for n in _EVENT_FIELDS if n in names}
        i_time, i_member, i_source = idx["time"], idx["member"], idx["source"]
        i_kind, i_rule, i_legit = idx.get("kind"), idx.get("rule"), idx.get("legit")
        default_rule = self.rule
        for row in reader:
            self.rows += 1
            try:
                kind = row[i_kind].strip().lower() if i_kind is not None else ""
                if kind in ("", FAIL, "failure"):
                    kind = FAIL
                elif kind != SUCCESS:
                    raise ValueError(kind)
                rule = (row[i_rule].strip() if i_rule is not None else "") or default_rule
                legit = row[i_legit].strip() in ("1", "true") if i_legit is not None else False
                member = row[i_member].strip()
                if not member:
                    raise ValueError("no member")
                yield DrillEvent(
                    _parse_time(row[i_time]),
                    member,
                    self._address(row[i_source].strip()),
                    kind,
                    rule,
                    legit,
                )
            except (IndexError, ValueError, InvalidScope):
                self.skipped += 1


def _parse_time(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def open_text(path: Path) -> TextIO:
    """``path`` as text; gzip when it starts with gzip's magic bytes."""
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(
            gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline=""
        )
    return path.open(encoding="utf-8", errors="replace", newline="")


def read_events(path: str | Path, *, port: int | None = None) -> Reader:
    """A re-iterable stream of the events of ``path`` (either format)."""
    return Reader(Path(path), port=port)
