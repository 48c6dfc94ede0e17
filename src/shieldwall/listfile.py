"""Decision list files: what ``shieldwall decisions import`` reads and ``export`` writes. Pure.

Formats:

``plain``
    One address or CIDR per line. ``#`` and ``;`` start a comment (whole line or after the
    value), blank lines are skipped: Spamhaus DROP (``1.10.16.0/20 ; SBL256894``) and
    FireHOL lists load as they are.
``csv``
    A header line naming the columns: ``value`` (required), ``duration`` and ``reason``
    (optional), and the columns of ``cscli decisions import`` — ``scope`` (``ip`` or
    ``range``) and ``type`` (``ban``) — in any order. Other columns are ignored.
``json``
    An array of objects with the same keys (``duration`` as text like ``4h`` or a number of
    seconds).
``crowdsec``
    What ``cscli decisions import`` takes: its CSV or its JSON (told apart by the first
    character), with Go durations (``24h``, ``1h30m``, ``4h0m0s``).
``auto``
    JSON if the text starts with ``[``, CSV if its first line is a header (several fields,
    the first not an address), plain otherwise.

gzip is read as it is, whatever the format. Every entry is validated: a bad one becomes a
:class:`Malformed` with its line number (its item number too, for JSON) and why; the rest
load. Attacker-supplied lists cannot exhaust memory through one line: a line longer than
:data:`MAX_LINE` is malformed.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import msgspec

from shieldwall.errors import InvalidScope
from shieldwall.model import Scope, parse_scope

FORMATS = ("auto", "plain", "csv", "json", "crowdsec")
MAX_LINE = 4096
MAX_REASON = 500
MAX_DURATION = 366 * 86400.0

_GO_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns))+$")
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_SIMPLE = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?$")
_SIMPLE_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


class ListFileError(ValueError):
    """The file as a whole cannot be read (not gzip it claims to be, not UTF-8, no header)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One decision to make: ban ``scope`` for ``duration`` seconds (None: the default)."""

    line: int
    scope: Scope
    duration: float | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Malformed:
    """An entry that was skipped, and why."""

    line: int
    why: str
    item: int | None = None
    """The JSON array index (0-based), for JSON files."""

    def where(self) -> str:
        return f"line {self.line}" + ("" if self.item is None else f" (item {self.item})")


Parsed = Entry | Malformed


def parse_duration(text: str | float | int) -> float:
    """``4h``, ``30m``, ``1d``, ``90`` (seconds), or a Go duration (``1h30m``, ``4h0m0s``)
    → seconds; ValueError unless 0 < seconds ≤ 366 days."""
    if isinstance(text, bool):
        raise ValueError("a duration is text like 4h or a number of seconds")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        t = text.strip()
        m = _SIMPLE.match(t)
        if m is not None:
            seconds = float(m.group(1)) * _SIMPLE_UNITS[m.group(2) or "s"]
        elif _GO_DURATION.match(t):
            seconds = sum(float(n) * _GO_UNITS[u] for n, u in _GO_PART.findall(t))
        else:
            raise ValueError(f"{text!r} is not a duration (like 4h, 1d, 1h30m or seconds)")
    if not 0 < seconds <= MAX_DURATION:
        raise ValueError(f"duration {text!r} must be above 0 and at most 366 days")
    return seconds


def decode(data: bytes) -> str:
    """The text of a list file: gunzipped if it is gzip, UTF-8 (a BOM is dropped)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ListFileError(f"looks like gzip but cannot be read: {exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ListFileError(f"not UTF-8 text (byte {exc.start})") from exc


def detect(text: str) -> str:
    """``plain``, ``csv`` or ``json`` for ``auto``."""
    head = text.lstrip()
    if head.startswith("["):
        return "json"
    for line in head.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        fields = [f.strip().lower() for f in next(csv.reader([stripped]))]
        if len(fields) < 2:
            return "plain"
        try:  # a first field that is an address: a plain list with something after it
            parse_scope(fields[0])
        except InvalidScope:
            return "csv"  # a header (one without ``value`` is refused, saying so)
        return "plain"
    return "plain"


def parse(text: str, fmt: str = "auto") -> Iterator[Parsed]:
    """Every entry of a list file, in order, or why it is malformed."""
    if fmt not in FORMATS:
        raise ListFileError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "auto":
        fmt = detect(text)
    elif fmt == "crowdsec":
        fmt = "json" if text.lstrip().startswith("[") else "csv"
    if fmt == "plain":
        return _plain(text)
    if fmt == "csv":
        return _csv(text)
    return _json(text)


def _value(
    line: int, value: str, scope_kind: str | None = None, item: int | None = None
) -> Scope | Malformed:
    if len(value) > 100:
        return Malformed(line, "value is too long to be an address", item)
    try:
        scope = parse_scope(value)
    except InvalidScope:
        hint = ""
        if "/" in value:
            hint = " (a CIDR's host bits must be zero: 10.0.0.0/8, not 10.0.0.1/8)"
        return Malformed(line, f"{value!r} is not an IP address or CIDR{hint}", item)
    if scope_kind is not None:
        kind = scope_kind.strip().lower()
        if kind not in ("ip", "range"):
            return Malformed(line, f"scope {scope_kind!r} is not supported (ip or range)", item)
        if kind == "ip" and not scope.is_host:
            return Malformed(line, f"scope ip needs one address, got {value!r}", item)
    return scope


def _plain(text: str) -> Iterator[Parsed]:
    for number, raw in enumerate(text.splitlines(), 1):
        if len(raw) > MAX_LINE:
            yield Malformed(number, f"line longer than {MAX_LINE} characters")
            continue
        value = raw
        for mark in "#;":
            cut = value.find(mark)
            if cut >= 0:
                value = value[:cut]
        value = value.strip()
        if not value:
            continue
        if any(c.isspace() for c in value):
            yield Malformed(number, f"expected one address or CIDR, got {value[:60]!r}")
            continue
        scope = _value(number, value)
        yield scope if isinstance(scope, Malformed) else Entry(number, scope)


def _entry(line: int, row: dict[str, object], item: int | None = None) -> Parsed:
    """One CSV row or JSON object (keys lower-cased) as an entry."""
    value = row.get("value")
    if not isinstance(value, str) or not value.strip():
        return Malformed(line, "no value", item)
    kind = row.get("type")
    if kind not in (None, "") and (not isinstance(kind, str) or kind.strip().lower() != "ban"):
        return Malformed(line, f"type {kind!r} is not supported (only ban)", item)
    scope_kind = row.get("scope")
    if scope_kind is not None and not isinstance(scope_kind, str):
        return Malformed(line, "scope must be text (ip or range)", item)
    scope = _value(line, value.strip(), scope_kind or None, item)
    if isinstance(scope, Malformed):
        return scope
    duration: float | None = None
    raw = row.get("duration")
    if raw not in (None, ""):
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            return Malformed(line, "duration must be text like 4h or seconds", item)
        try:
            duration = parse_duration(raw)
        except ValueError as exc:
            return Malformed(line, str(exc), item)
    reason = row.get("reason")
    if reason is not None and not isinstance(reason, str):
        return Malformed(line, "reason must be text", item)
    text = (reason or "").strip()[:MAX_REASON]
    return Entry(line, scope, duration, text or None)


def _csv(text: str) -> Iterator[Parsed]:
    lines = text.splitlines()
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].lstrip()[0] in "#;"):
        start += 1
    if start == len(lines):
        return
    header = [h.strip().lower() for h in next(csv.reader([lines[start]]))]
    if "value" not in header:
        raise ListFileError(f"line {start + 1}: the CSV header names no 'value' column")
    for number in range(start + 2, len(lines) + 1):
        raw = lines[number - 1]
        if not raw.strip() or raw.lstrip()[0] in "#;":
            continue
        if len(raw) > MAX_LINE:
            yield Malformed(number, f"line longer than {MAX_LINE} characters")
            continue
        try:
            fields = next(csv.reader([raw]))
        except csv.Error as exc:
            yield Malformed(number, f"not CSV: {exc}")
            continue
        if len(fields) > len(header):
            yield Malformed(number, f"{len(fields)} fields, the header has {len(header)}")
            continue
        yield _entry(number, dict(zip(header, fields, strict=False)))


def _json(text: str) -> Iterator[Parsed]:
    data = text.encode()
    try:
        items = msgspec.json.decode(data, type=list[msgspec.Raw])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ListFileError(f"not a JSON array: {exc}") from exc
    pos, line = 0, 1
    for index, raw in enumerate(items):
        piece = bytes(raw)
        found = data.find(piece, pos)
        if found >= 0:  # the item's line: count the newlines since the last one
            line += data.count(b"\n", pos, found)
            pos = found
        if len(piece) > MAX_LINE:
            yield Malformed(line, f"item longer than {MAX_LINE} bytes", index)
            continue
        try:
            obj = msgspec.json.decode(piece)
        except msgspec.DecodeError as exc:
            yield Malformed(line, f"not JSON: {exc}", index)
            continue
        if not isinstance(obj, dict):
            yield Malformed(line, "an item must be an object with a value", index)
            continue
        yield _entry(line, {str(k).lower(): v for k, v in obj.items()}, index)


# -- writing -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One active decision as ``export`` writes it."""

    scope: Scope
    expires: float
    reason: str
    origin: str
    id: str


def write(rows: Iterable[Row], fmt: str, now: float) -> Iterator[str]:
    """The export, piece by piece (an import of it makes the same decisions: ``duration`` is
    the time left, in whole seconds)."""
    if fmt == "plain":
        yield "# shieldwall decisions export\n"
        for r in rows:
            yield r.scope.text() + "\n"
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["value", "duration", "reason", "origin", "id"])
        yield out.getvalue()
        for r in rows:
            out.seek(0)
            out.truncate()
            left = max(1, int(r.expires - now + 0.999))
            writer.writerow([r.scope.text(), f"{left}s", r.reason, r.origin, r.id])
            yield out.getvalue()
    elif fmt == "json":
        first = True
        yield "["
        for r in rows:
            left = max(1, int(r.expires - now + 0.999))
            item = {
                "value": r.scope.text(),
                "scope": "ip" if r.scope.is_host else "range",
                "type": "ban",
                "duration": f"{left}s",
                "reason": r.reason,
                "origin": r.origin,
                "id": r.id,
            }
            yield ("\n" if first else ",\n") + msgspec.json.encode(item).decode()
            first = False
        yield "\n]\n"
    else:
        raise ListFileError(f"unknown export format {fmt!r} (plain, csv or json)")
