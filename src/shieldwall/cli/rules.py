"""``shieldwall rules``: list shipped rules, test a rule against a log."""

from __future__ import annotations

import json
from typing import Any

import click

from shieldwall.cli.table import table as _table
from shieldwall.errors import ShieldwallError


def _fail(exc: ShieldwallError) -> click.ClickException:
    return click.ClickException(str(exc))


# ------------------------------------------------------------------------------


@click.group()
def rules() -> None:
    """Detection rules: list the shipped ones, test one against a log."""


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
@click.option("--timezone", default="UTC", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def rules_test(rule: str, logfile: str, timezone: str, as_json: bool) -> None:
    """Run RULE (shipped name or .toml path) over LOGFILE; show every hit."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from shieldwall.agent.run import load_rules
    from shieldwall.detect import Detector

    try:
        rule_objs = load_rules([rule], "command line")
    except ShieldwallError as exc:
        raise _fail(exc) from exc
    det = Detector(rule_objs, tz=ZoneInfo(timezone))
    now = datetime.now(UTC)
    hits: list[dict[str, Any]] = []
    n = 0
    with open(logfile, "rb") as f:
        for n, raw in enumerate(f, 1):
            for hit in det.feed(raw.rstrip(b"\r\n"), now).hits:
                hits.append(
                    {
                        "line": n,
                        "source": str(hit.source),
                        "time": hit.at.isoformat(),
                        "rule": hit.rule,
                        "pattern": hit.pattern,
                    }
                )
    skipped = sum(v for k, v in det.counters.values.items() if k == "line_too_long")
    if as_json:
        click.echo(json.dumps({"lines": n, "skipped": skipped, "hits": hits}))
        return
    for h in hits:
        click.echo(f"line {h['line']}: {h['source']} at {h['time']} ({h['rule']} #{h['pattern']})")
    click.echo(f"{n} lines, {len(hits)} hits, {n - len(hits)} missed, {skipped} skipped")
