"""``shieldwall rules``: list shipped rules, test a rule against a log, import fail2ban filters."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from shieldwall.cli.table import table as _table
from shieldwall.errors import ShieldwallError

if TYPE_CHECKING:
    from shieldwall.detect import Rule

SKIP_COUNTERS: Final = (
    "line_too_long",
    "dns_host",
    "invalid_host",
    "ambiguous_host",
    "no_address",
)
"""Counters of lines a rule recognised (or could not read) but refused to attribute."""


def _fail(exc: ShieldwallError) -> click.ClickException:
    return click.ClickException(str(exc))


def _options(values: Sequence[str]) -> dict[str, str]:
    """``("mode=aggressive", "maxretry=3")`` → a dict (``--option`` values)."""
    options: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--option")
        options[key.strip()] = text.strip()
    return options


def _is_fail2ban(rule: str) -> bool:
    return rule.endswith((".conf", ".local"))


def _load(rule: str, options: dict[str, str], journal: bool) -> tuple[Rule, str]:
    """RULE (a shipped name, a native ``.toml``, or a fail2ban ``.conf``) and a title."""
    from shieldwall.detect import builtin_rule, load_rule
    from shieldwall.detect.fail2ban import load_fail2ban_rule

    if _is_fail2ban(rule):
        loaded, definition, _ = load_fail2ban_rule(rule, options, journal=journal)
        opts = ", ".join(f"{k}={v}" for k, v in sorted(definition.options.items()))
        return loaded, f"fail2ban filter {rule}" + (f" ({opts})" if opts else "")
    if options or journal:
        raise click.UsageError("--option and --journal apply to fail2ban filters (.conf) only")
    if rule.endswith(".toml") or "/" in rule:
        return load_rule(rule), f"rule file {rule}"
    return builtin_rule(rule), f"shipped rule {rule}"


def load_rule_spec(rule: str) -> Rule:
    """RULE as the CLI takes it: a shipped name, a native ``.toml`` or a fail2ban ``.conf``
    (default options)."""
    return _load(rule, {}, False)[0]


def _timezone(text: str) -> tzinfo:
    from shieldwall.detect.fail2ban.posixtz import parse_timezone

    try:
        return parse_timezone(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--timezone") from exc


def _now(text: str | None) -> datetime:
    from datetime import UTC

    if text is None:
        return datetime.now(UTC)
    try:
        now = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO 8601 time: {text!r}", param_hint="--now") from exc
    if now.tzinfo is None:
        raise click.BadParameter("give a time zone offset, e.g. +00:00", param_hint="--now")
    return now


# ------------------------------------------------------------------------------


@click.group()
def rules() -> None:
    """Detection rules: list the shipped ones, test one against a log, import fail2ban's."""


@rules.command("list")
@click.option("--json", "as_json", is_flag=True)
def rules_list(as_json: bool) -> None:
    """List shipped rules."""
    from shieldwall.detect import builtin_rule, builtin_rule_names

    items: list[dict[str, Any]] = []
    for name in builtin_rule_names():
        r = builtin_rule(name)
        items.append(
            {
                "name": r.name,
                "description": r.description,
                "patterns": len(r.failregex),
                "maxretry": r.maxretry,
                "findtime": r.findtime,
            }
        )
    if as_json:
        click.echo(json.dumps(items))
        return
    click.echo(
        _table(
            [
                [
                    i["name"],
                    str(i["patterns"]),
                    f"{i['maxretry']}/{i['findtime']:g}s",
                    i["description"],
                ]
                for i in items
            ],
            ["RULE", "PATTERNS", "BUCKET", "DESCRIPTION"],
        )
    )


@rules.command("test")
@click.argument("rule")
@click.argument("logfile", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="fail2ban filter or jail option, e.g. mode=aggressive (repeatable; .conf only)",
)
@click.option(
    "--timezone",
    default="UTC",
    show_default=True,
    help="zone of timestamps without one: UTC, +02:00, Europe/Paris or a POSIX TZ string",
)
@click.option("--now", "now_text", metavar="ISO8601", help="reading time (default: now)")
@click.option("--journal", is_flag=True, help="lines come from the journal: no date in them")
@click.option("--missed", is_flag=True, help="also list the lines that did not match")
@click.option("--json", "as_json", is_flag=True)
def rules_test(
    rule: str,
    logfile: str,
    options: tuple[str, ...],
    timezone: str,
    now_text: str | None,
    journal: bool,
    missed: bool,
    as_json: bool,
) -> None:
    """Run RULE over LOGFILE and show every hit (like fail2ban-regex).

    RULE is a shipped rule name, a native .toml file, or a fail2ban filter .conf (its
    includes and .local files are read beside it). Each hit gives the line number, the
    source, the time and which failregex matched.
    """
    from shieldwall.detect import Detector

    try:
        loaded, title = _load(rule, _options(options), journal)
    except ShieldwallError as exc:
        raise _fail(exc) from exc
    det = Detector([loaded], tz=_timezone(timezone))
    now = _now(now_text)
    hits: list[dict[str, Any]] = []
    per_pattern: dict[int, int] = {}
    missed_lines: list[tuple[int, str]] = []
    skipped = ignored = n = 0
    counters = det.counters
    with open(logfile, "rb") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip(b"\r\n")
            before = {k: counters.get(k) for k in (*SKIP_COUNTERS, "ignored")}
            found = det.feed(line, now).hits
            for hit in found:
                per_pattern[hit.pattern] = per_pattern.get(hit.pattern, 0) + 1
                hits.append(
                    {
                        "line": n,
                        "source": str(hit.source),
                        "time": hit.at.isoformat(),
                        "rule": hit.rule,
                        "pattern": hit.pattern,
                    }
                )
            if found:
                continue
            if any(counters.get(k) > before[k] for k in SKIP_COUNTERS):
                skipped += 1
            elif counters.get("ignored") > before["ignored"]:
                ignored += 1
            elif line.strip():
                missed_lines.append((n, line.decode("utf-8", errors="replace")))
    if as_json:
        click.echo(json.dumps({"lines": n, "skipped": skipped, "hits": hits}))
        return
    click.echo(f"{title}: {loaded.name}")
    for h in hits:
        click.echo(f"line {h['line']}: {h['source']} at {h['time']} ({h['rule']} #{h['pattern']})")
    if per_pattern:
        click.echo("failregex hits:")
        for index, count in sorted(per_pattern.items()):
            click.echo(f"  #{index} {count:5}  {loaded.failregex[index]}")
    reasons = ", ".join(f"{k} {counters.get(k)}" for k in SKIP_COUNTERS if counters.get(k))
    matched = len({h["line"] for h in hits})
    click.echo(
        f"{n} lines, {matched} matched, {len(missed_lines)} missed, {ignored} ignored, "
        f"{skipped} skipped" + (f" ({reasons})" if reasons else "")
    )
    if missed:
        for number, text in missed_lines:
            click.echo(f"missed line {number}: {text}")


@rules.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="filter option (mode=aggressive, logtype=journal…) or jail option "
    "(maxretry, findtime, bantime, ignoreip…); repeatable",
)
@click.option("--name", help="rule name (default: the filter's file name)")
@click.option("--journal", is_flag=True, help="for journal input: no date in the lines")
@click.option("--out", type=click.Path(dir_okay=False), help="write here (default: stdout)")
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
def rules_import(
    path: str,
    options: tuple[str, ...],
    name: str | None,
    journal: bool,
    out: str | None,
    force: bool,
) -> None:
    """Convert a fail2ban filter (filter.d/NAME.conf) into a shieldwall rule file.

    The filter is read unmodified (includes, .local files, interpolation, the chosen mode);
    the rule keeps fail2ban's matching semantics (dialect = "fail2ban"). What a rule file
    cannot express is printed as notes on stderr and kept as comments in the file.
    """
    from shieldwall.detect.fail2ban import load_fail2ban_rule
    from shieldwall.detect.fail2ban.export import rule_toml

    try:
        rule, definition, jail = load_fail2ban_rule(
            path, _options(options), name=name, journal=journal
        )
        text, notes = rule_toml(rule, definition, jail)
    except ShieldwallError as exc:
        raise _fail(exc) from exc
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if out is None:
        sys.stdout.write(text)
        return
    target = Path(out)
    if target.exists() and not force:
        raise click.ClickException(f"{out} exists (use --force to overwrite)")
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}: rule {rule.name!r}, {len(rule.failregex)} failregex", err=True)
