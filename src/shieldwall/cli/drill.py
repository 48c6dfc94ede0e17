"""``shieldwall drill``: replay attack events across members and compare strategies."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from shieldwall.cli.table import table
from shieldwall.drill import STRATEGIES, DrillConfig, DrillEvent, merge, read_events, reorder
from shieldwall.drill import run as run_drill
from shieldwall.treaty import Threshold
from shieldwall.treaty.terms import parse_duration

__all__ = ["drill"]


def _seconds(value: str, name: str) -> float:
    try:
        return parse_duration(value, name)
    except ValueError as exc:
        raise click.BadParameter(str(exc).replace("treaty.", ""), param_hint=name) from exc


def _threshold(text: str, name: str = "--threshold") -> Threshold:
    parts = text.split("/")
    try:
        if not 2 <= len(parts) <= 3:
            raise ValueError(text)
        numbers = [int(p) for p in parts]
        t = Threshold(
            members=numbers[0],
            attempts=numbers[1],
            per_member=numbers[2] if len(numbers) > 2 else 1,
        )
        t.check("alliance")
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r}: expected MEMBERS/ATTEMPTS[/PER-MEMBER], e.g. 5/20 ({exc})",
            param_hint=name,
        ) from exc
    return t


def _variant(text: str, base: DrillConfig) -> tuple[str, DrillConfig]:
    """``NAME:threshold=3/6,quorum=2,duration=1d,window=2h`` → an alliance variant."""
    name, sep, rest = text.partition(":")
    name = name.strip()
    if not sep or not name:
        raise click.BadParameter(f"{text!r}: expected NAME:key=value,…", param_hint="--treaty")
    config = base
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().replace("_", "-")
        if not eq:
            raise click.BadParameter(f"{item!r}: expected key=value", param_hint="--treaty")
        try:
            if key == "threshold":
                config = replace(config, threshold=_threshold(value, "--treaty"))
            elif key == "quorum":
                config = replace(config, quorum=int(value))
            elif key in ("duration", "bantime"):
                config = replace(config, bantime=_seconds(value, "--treaty"))
            elif key == "window":
                config = replace(config, alliance_window=_seconds(value, "--treaty"))
            elif key == "friendly-fire":
                config = replace(config, friendly_fire=value.lower() in ("1", "true", "on", "yes"))
            else:
                raise click.BadParameter(
                    f"unknown key {key!r} (threshold, quorum, duration, window, friendly-fire)",
                    param_hint="--treaty",
                )
        except ValueError as exc:
            raise click.BadParameter(f"{item!r}: {exc}", param_hint="--treaty") from exc
    return name, config


def _progress(events: Iterable[DrillEvent], every: int = 50_000) -> Iterator[DrillEvent]:
    """Counts events on stderr while they pass (only on a terminal)."""
    start = time.monotonic()
    n = 0
    for e in events:
        n += 1
        if n % every == 0:
            rate = n / max(time.monotonic() - start, 1e-9)
            click.echo(f"\r{n:,} events  {rate:,.0f}/s", err=True, nl=False)
        yield e
    click.echo(f"\r{n:,} events  done{' ' * 20}", err=True)


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    seconds = value / 1000
    if seconds < 120:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def render(result: dict[str, Any]) -> str:
    """The readable table of a drill's result."""
    rows = []
    for name, s in result["strategies"].items():
        ttp = s["time_to_protection_ms"]
        rows.append(
            [
                name,
                f"{s['attempts']:,}",
                f"{s['landed']:,}",
                f"{s['stopped']:,}",
                f"{100 * s['stopped_share']:.2f}%",
                f"{s['sources_decided']:,}",
                _ms(ttp["p50"]),
                _ms(ttp["p99"]),
                f"{s['false_bans']:,}",
            ]
        )
    head = (
        f"{result['events']:,} events, {result['members']} members, "
        f"{result['sources']:,} sources ({result['legit_sources']:,} legitimate)"
    )
    body = table(
        rows,
        [
            "strategy",
            "attempts",
            "landed",
            "stopped",
            "stopped %",
            "decided",
            "ttp p50",
            "ttp p99",
            "false bans",
        ],
    )
    return f"{head}\n{body}"


class _DrillGroup(click.Group):
    """``shieldwall drill FILE…`` runs the drill; ``shieldwall drill generate`` writes a
    campaign."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DrillGroup)
def drill() -> None:
    """Replay real multi-host attack events and measure what the alliance saves.

    `shieldwall drill FILE…` is `shieldwall drill run FILE…`. See docs/drill.md.
    """


@drill.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--port", type=int, default=None, help="marx input: only TCP rows to this port.")
@click.option("--maxretry", default=5, show_default=True, help="Local rule: hits that ban.")
@click.option("--findtime", default="10m", show_default=True, help="Local rule: window.")
@click.option(
    "--bantime",
    "--duration",
    "bantime",
    default="4h",
    show_default=True,
    help="Local bans and shared decisions last this long.",
)
@click.option(
    "--threshold",
    default="5/20/1",
    show_default=True,
    help="Treaty alliance-wide threshold MEMBERS/ATTEMPTS[/PER-MEMBER] within --window.",
)
@click.option("--window", default="1h", show_default=True, help="Treaty alliance window.")
@click.option("--quorum", type=int, default=None, help="Members on probation; alerts need k.")
@click.option("--no-friendly-fire", is_flag=True, help="Successful logins do not veto sums.")
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    type=click.Choice(STRATEGIES),
    help="Strategies to run (repeatable; default: all).",
)
@click.option(
    "--treaty",
    "variants",
    multiple=True,
    metavar="NAME:KEY=VALUE,…",
    help="An extra alliance strategy with its own treaty settings: threshold=M/A[/P], "
    "quorum=K, duration=1d, window=2h, friendly-fire=off (repeatable).",
)
@click.option("--poll", default="10s", show_default=True, help="poll-10s: bouncer delay.")
@click.option("--sync", "sync_every", default="1h", show_default=True, help="sync-1h: period.")
@click.option("--reporters", default=3, show_default=True, help="sync-1h: members to share.")
@click.option(
    "--slack",
    default="1h",
    show_default=True,
    help="Events out of order by up to this much are put back in order.",
)
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), help="Write PNG plots here.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def run_cmd(
    paths: tuple[str, ...],
    port: int | None,
    maxretry: int,
    findtime: str,
    bantime: str,
    threshold: str,
    window: str,
    quorum: int | None,
    no_friendly_fire: bool,
    strategies: tuple[str, ...],
    variants: tuple[str, ...],
    poll: str,
    sync_every: str,
    reporters: int,
    slack: str,
    plot_dir: str | None,
    as_json: bool,
) -> None:
    """Replay event CSVs (time,member,source[,kind,rule,legit]) or the marx honeypot CSV
    (datetime,host,src,…), gzip or not, merged by event time, through every strategy."""
    if plot_dir is not None:
        from shieldwall.drill.plot import check_available

        check_available()
    try:
        config = DrillConfig(
            maxretry=maxretry,
            findtime=_seconds(findtime, "--findtime"),
            bantime=_seconds(bantime, "--bantime"),
            threshold=_threshold(threshold),
            alliance_window=_seconds(window, "--window"),
            quorum=quorum,
            friendly_fire=not no_friendly_fire,
            poll=0.0 if poll in ("0", "0s") else _seconds(poll, "--poll"),
            sync=_seconds(sync_every, "--sync"),
            reporters=reporters,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    extra = dict(_variant(v, config) for v in variants)
    readers = [read_events(p, port=port) for p in paths]
    slack_s = _seconds(slack, "--slack")
    streams = [reorder(r, slack_s) for r in readers]
    events: Iterable[DrillEvent] = streams[0] if len(streams) == 1 else merge(*streams)
    if sys.stderr.isatty() and not as_json:
        events = _progress(events)
    started = time.monotonic()
    try:
        board = run_drill(events, config, strategies or STRATEGIES, extra)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    result = board.result()
    result["seconds"] = round(time.monotonic() - started, 3)
    result["inputs"] = [
        {"path": str(r.path), "format": r.fmt, "rows": r.rows, "skipped": r.skipped}
        for r in readers
    ]
    result["settings"] = {
        "maxretry": config.maxretry,
        "findtime": config.findtime,
        "bantime": config.bantime,
        "threshold": threshold,
        "window": config.alliance_window,
        "quorum": config.quorum,
        "port": port,
    }
    if plot_dir is not None:
        from shieldwall.drill.plot import plot

        result["plots"] = [str(p) for p in plot(board, Path(plot_dir))]
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
        return
    click.echo(render(result))
    skipped = sum(r.skipped for r in readers)
    click.echo(
        f"replayed in {result['seconds']:.1f}s" + (f"; {skipped} rows skipped" if skipped else "")
    )
    for p in result.get("plots", []):
        click.echo(f"plot: {p}")


@drill.command("generate")
@click.option("--members", default=100, show_default=True, help="Members in the alliance.")
@click.option("--events", "n_events", default=100_000, show_default=True, help="Events to write.")
@click.option("--seed", default=1, show_default=True, help="Same seed, same file.")
@click.option("--days", default=7.0, show_default=True, help="Span of the campaign.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="CSV (.gz: gzip).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def generate_cmd(
    members: int, n_events: int, seed: int, days: float, out: str, as_json: bool
) -> None:
    """Write a seeded campaign with ground truth: botnets sweeping members, low-and-slow
    brute force below local thresholds, scanners, and legitimate NAT users with typos and
    successful logins."""
    from shieldwall.drill.generate import Campaign, write_csv

    try:
        campaign = Campaign(members=members, events=n_events, seed=seed, days=days)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    started = time.monotonic()
    counts = write_csv(campaign, Path(out))
    summary = {"out": out, "seconds": round(time.monotonic() - started, 3), **counts}
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        click.echo(
            f"wrote {counts['events']:,} events ({counts['legit_events']:,} legitimate) "
            f"from {counts['sources']:,} sources at {members} members to {out}"
        )
