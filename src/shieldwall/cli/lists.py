"""``shieldwall decisions import`` / ``export`` and ``shieldwall unban --file``: lists of
decisions to and from the council, a chunk (thousands of decisions) per request.

Chunks are sent in order by one worker thread while the next chunk is read, so reading the
file and the council's work overlap. A chunk is one transaction at the council: if the
council stops mid-import, whole chunks only were applied, and running the same import again
extends what is there instead of duplicating it.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import click

from shieldwall.cli.operator import Operator, operator_from, operator_options
from shieldwall.config.schema import parse_duration as parse_config_duration
from shieldwall.errors import ShieldwallError
from shieldwall.listfile import FORMATS, Entry, ListFileError, Malformed, Row, decode, parse, write
from shieldwall.model import parse_scope
from shieldwall.wire.messages import MAX_BULK

CHUNK = 10_000
SHOWN = 20
"""Malformed and refused lines printed one by one before the rest are only counted."""
TIMEOUT = 300.0
"""Seconds one chunk may take at the council."""


def _read(path: str) -> tuple[str, str]:
    """The file's text and the name to show for it (``-`` is standard input)."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read: {exc.strerror or exc}") from exc
    name = "<stdin>" if path == "-" else path
    try:
        return decode(data), name
    except ListFileError as exc:
        raise click.ClickException(f"{name}: {exc}") from exc


@dataclass
class _Report:
    """What the command prints at the end (``--json``: as one object)."""

    file: str
    shown: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    chunks: int = 0
    seq: int | None = None

    def problem(self, line: int, text: str) -> None:
        if self.shown < SHOWN:
            click.echo(f"{self.file}:{line}: {text}", err=True)
        self.shown += 1

    def malformed(self, m: Malformed) -> None:
        self.counts["malformed"] += 1
        self.problem(m.line, m.why if m.item is None else f"item {m.item}: {m.why}")

    def refused_by_council(self, chunk: list[Entry], answer: dict[str, Any]) -> None:
        """Count and show what the council's answer to ``chunk`` found malformed."""
        for m in answer.get("malformed", []):
            self.counts["malformed"] += 1
            self.problem(chunk[m["index"]].line, m["error"])

    def finish(self, started: float, **counts: Any) -> dict[str, Any]:
        """Say how many lines went unshown; the summary: ``counts`` amid what every
        command reports."""
        if self.shown > SHOWN:
            click.echo(f"{self.file}: … and {self.shown - SHOWN} more lines skipped", err=True)
        return {
            "file": self.file,
            "read": self.counts["read"] + self.counts["malformed"],
            **counts,
            "malformed": self.counts["malformed"],
            "chunks": self.chunks,
            "seq": self.seq,
            "seconds": round(time.monotonic() - started, 3),
        }


def _entries(text: str, fmt: str, name: str, report: _Report) -> Iterator[Entry]:
    try:
        for item in parse(text, fmt):
            if isinstance(item, Malformed):
                report.malformed(item)
            else:
                report.counts["read"] += 1
                yield item
    except ListFileError as exc:
        raise click.ClickException(f"{name}: {exc}") from exc


def _chunks(entries: Iterable[Entry], size: int) -> Iterator[list[Entry]]:
    chunk: list[Entry] = []
    for e in entries:
        chunk.append(e)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _send_all(
    op: Operator,
    path: str,
    chunks: Iterable[list[Entry]],
    payload: Any,
    take: Any,
    report: _Report,
) -> None:
    """POST every chunk in order (one in flight while the next is read); ``take(chunk,
    answer)`` reads each answer."""
    landed = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunks") as pool:
        pending: tuple[list[Entry], Future[tuple[int, Any]]] | None = None
        try:
            for chunk in chunks:
                future = pool.submit(op.call, "POST", path, payload(chunk), timeout=TIMEOUT)
                if pending is not None:
                    landed += _land(pending, take, report)
                pending = (chunk, future)
            if pending is not None:
                landed += _land(pending, take, report)
        except click.ClickException as exc:
            raise click.ClickException(
                f"{exc.message}\n{landed} chunk(s) ({report.counts['sent']} decisions) were "
                "applied, each whole; run the same command again to finish (it extends what "
                "is there, never duplicates it)"
            ) from exc


def _land(pending: tuple[list[Entry], Future[tuple[int, Any]]], take: Any, report: _Report) -> int:
    chunk, future = pending
    status, body = future.result()
    if status != 200:
        detail = body.get("detail", body) if isinstance(body, dict) else body
        raise click.ClickException(f"the council refused a chunk ({status}): {detail}")
    take(chunk, body)
    report.chunks += 1
    report.counts["sent"] += len(chunk)
    report.seq = body.get("seq")
    return 1


def _duration(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_config_duration(value, "", "--duration")
    except ShieldwallError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="plain (one address or CIDR per line), csv (a header with value), json, "
    "crowdsec (what cscli decisions import takes), auto (told from the content).",
)
@click.option("--duration", help="For entries without one (default: the treaty's), e.g. 1d.")
@click.option("--reason", help="For entries without one (default: 'import FILE').")
@click.option(
    "--chunk",
    type=click.IntRange(1, MAX_BULK),
    default=CHUNK,
    show_default=True,
    help="Decisions per request (each is one transaction at the council).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@operator_options
def decisions_import(
    file: str,
    fmt: str,
    duration: str | None,
    reason: str | None,
    chunk: int,
    as_json: bool,
    **conn: Any,
) -> None:
    """Ban every address and network of FILE (or - for standard input) alliance-wide.

    Spamhaus DROP, FireHOL and other plain lists load as they are, and so do CSV, JSON and
    cscli's import files; gzip is read as it is. A bad line is reported with its number and
    skipped, targets the treaty protects are refused with their reason, and importing the
    same list again extends the decisions instead of duplicating them.
    """
    seconds = _duration(duration)
    op = operator_from(**conn)
    started = time.monotonic()
    text, name = _read(file)
    report = _Report(name)
    default_reason = reason or f"import {Path(name).name}"
    source = Path(name).name

    def payload(chunk: list[Entry]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "decisions": [
                {
                    "scope": e.scope.text(),
                    **({"duration": e.duration} if e.duration is not None else {}),
                    **({"reason": e.reason} if e.reason is not None else {}),
                }
                for e in chunk
            ],
            "reason": default_reason,
            "source": source,
        }
        if seconds is not None:
            body["duration"] = seconds
        return body

    def take(chunk: list[Entry], answer: dict[str, Any]) -> None:
        for key in ("added", "extended", "unchanged"):
            report.counts[key] += int(answer.get(key, 0))
        for r in answer.get("refused", []):
            report.refused[r["reason"]] += 1
            entry = chunk[r["index"]]
            report.problem(entry.line, f"{r['scope']} refused ({r['reason']})")
        report.refused_by_council(chunk, answer)

    entries = _entries(text, fmt, name, report)
    _send_all(op, "/v1/decisions/import", _chunks(entries, chunk), payload, take, report)
    summary = report.finish(
        started,
        added=report.counts["added"],
        extended=report.counts["extended"],
        unchanged=report.counts["unchanged"],
        refused=dict(report.refused),
    )
    if as_json:
        click.echo(json.dumps(summary))
        return
    refused = sum(report.refused.values())
    why = ", ".join(f"{n} {r}" for r, n in report.refused.most_common())
    click.echo(
        f"{name}: {summary['added']} added, {summary['extended']} extended, "
        f"{summary['unchanged']} unchanged, {refused} refused{f' ({why})' if why else ''}, "
        f"{summary['malformed']} malformed — {report.chunks} chunk(s) in "
        f"{summary['seconds']:.1f}s"
    )


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["plain", "csv", "json"]),
    default="plain",
    show_default=True,
)
@click.option("--out", type=click.Path(dir_okay=False, allow_dash=True), default="-")
@operator_options
def decisions_export(fmt: str, out: str, **conn: Any) -> None:
    """Write every active decision (plain, csv or json; an import of it makes them again)."""
    op = operator_from(**conn)
    now = time.time()

    def rows() -> Iterator[Row]:
        params: dict[str, Any] = {"limit": 10_000}
        while True:
            status, body = op.call("GET", "/v1/decisions", params=params, timeout=TIMEOUT)
            if status != 200:
                raise click.ClickException(f"refused ({status}): {body}")
            for d in body["decisions"]:
                yield Row(
                    parse_scope(d["scope"]),
                    _epoch(d["expires"]),
                    d["reason"],
                    d["origin"],
                    d["id"],
                )
            if body.get("next") is None:
                return
            params["after"] = body["next"]

    stream: TextIO
    if out == "-":
        stream = sys.stdout
        for piece in write(rows(), fmt, now):
            stream.write(piece)
        return
    try:
        with open(out, "w", encoding="utf-8") as stream:
            for piece in write(rows(), fmt, now):
                stream.write(piece)
    except OSError as exc:
        raise click.ClickException(f"{out}: cannot write: {exc.strerror or exc}") from exc


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def unban_file(file: str, fmt: str, as_json: bool, conn: dict[str, Any]) -> None:
    """``shieldwall unban --file``: revoke every decision on each scope of FILE."""
    op = operator_from(**conn)
    started = time.monotonic()
    text, name = _read(file)
    report = _Report(name)

    def payload(chunk: list[Entry]) -> dict[str, Any]:
        return {"scopes": [e.scope.text() for e in chunk], "source": Path(name).name}

    def take(chunk: list[Entry], answer: dict[str, Any]) -> None:
        report.counts["revoked"] += int(answer.get("revoked", 0))
        report.counts["missing"] += int(answer.get("missing", 0))
        report.refused_by_council(chunk, answer)

    entries = _entries(text, fmt, name, report)
    _send_all(op, "/v1/decisions/revoke/bulk", _chunks(entries, CHUNK), payload, take, report)
    summary = report.finish(
        started, revoked=report.counts["revoked"], without_decision=report.counts["missing"]
    )
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(
        f"{name}: {summary['revoked']} decision(s) revoked, {summary['without_decision']} "
        f"scope(s) had none, {summary['malformed']} malformed"
    )


__all__ = ["decisions_export", "decisions_import", "operator_options", "unban_file"]
