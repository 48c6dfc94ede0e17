"""``shieldwall drill``: replay attack events across members and compare strategies."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from shieldwall.cli.table import table
from shieldwall.drill import STRATEGIES, DrillConfig, jobs_default, read_events, replay_files
from shieldwall.errors import ShieldwallError
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


def _progress(every: int = 50_000) -> Callable[[int], None]:
    """Counts events on stderr while they are replayed (only on a terminal): call it with
    the number replayed so far."""
    start = time.monotonic()
    shown = 0

    def show(n: int) -> None:
        nonlocal shown
        if n - shown >= every:
            shown = n
            rate = n / max(time.monotonic() - start, 1e-9)
            click.echo(f"\r{n:,} events  {rate:,.0f}/s", err=True, nl=False)

    return show


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


def _log_readers(logs: tuple[str, ...], names: tuple[str, ...]) -> list[Any]:
    """One :class:`~shieldwall.drill.logs.LogReader` per ``--log``."""
    if not logs:
        if names:
            raise click.UsageError("--rule applies to --log inputs")
        return []
    from shieldwall.cli.rules import load_rule_spec
    from shieldwall.drill.logs import LogReader, parse_log_spec
    from shieldwall.errors import ShieldwallError

    try:
        rules = [load_rule_spec(n) for n in names or ("sshd", "sshd-success")]
    except ShieldwallError as exc:
        raise click.UsageError(str(exc)) from exc
    readers: list[Any] = []
    for spec in logs:
        try:
            member, path = parse_log_spec(spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--log") from exc
        if not path.is_file():
            raise click.BadParameter(f"{path}: no such file", param_hint="--log")
        readers.append(LogReader(path, member, rules))
    return readers


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
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--log",
    "logs",
    multiple=True,
    metavar="MEMBER=PATH",
    help="A member's log file (plain or gzip), read through --rule's detector: each hit is "
    "an event (repeatable; a bare PATH names the member after the file or its folder).",
)
@click.option(
    "--rule",
    "log_rules",
    multiple=True,
    metavar="RULE",
    help="--log: a shipped rule, a rule .toml or a fail2ban .conf (repeatable; default: "
    "sshd and sshd-success).",
)
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
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes: strategies replay in parallel, each process reading the input "
    "(same result) [default: min(CPUs, strategies)].",
)
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), help="Write PNG plots here.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--live",
    is_flag=True,
    help="Replay into real agents' logs with a real council on 127.0.0.1 and measure "
    "end-to-end time to protection (docs/drill.md, Live mode).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="--live: time compression (default: the campaign lasts about 60 s).",
)
@click.option(
    "--members-limit",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="--live: agents started, one per member (the busiest members).",
)
def run_cmd(
    paths: tuple[str, ...],
    logs: tuple[str, ...],
    log_rules: tuple[str, ...],
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
    jobs: int | None,
    plot_dir: str | None,
    as_json: bool,
    live: bool,
    speed: float | None,
    members_limit: int,
) -> None:
    """Replay event CSVs (time,member,source[,kind,rule,legit]) or the marx honeypot CSV
    (datetime,host,src,…), gzip or not, merged by event time, through every strategy."""
    if plot_dir is not None:
        from shieldwall.drill.plot import check_available

        try:
            check_available()
        except ShieldwallError as exc:
            raise click.UsageError(str(exc)) from exc
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
    readers: list[Any] = [read_events(p, port=port) for p in paths]
    readers += _log_readers(logs, log_rules)
    if not readers:
        raise click.UsageError("give event files (PATHS) or members' logs (--log MEMBER=PATH)")
    slack_s = _seconds(slack, "--slack")
    if live:
        from shieldwall.cli.live_drill import live_command

        if plot_dir is not None or variants or strategies:
            raise click.UsageError("--live compares with the alliance strategy only")
        live_command(readers, slack_s, config, speed, members_limit, as_json)
        return
    names = strategies or STRATEGIES
    progress = _progress() if sys.stderr.isatty() and not as_json else None
    started = time.monotonic()
    try:
        board = replay_files(
            readers,
            config,
            names,
            extra,
            slack=slack_s,
            jobs=jobs or jobs_default(len(names) + len(extra)),
            progress=progress,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if progress is not None:
        click.echo(f"\r{board.events:,} events  done{' ' * 20}", err=True)
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
@click.option(
    "--start",
    default=None,
    help="First actor's start, ISO 8601 (naive = UTC) or epoch seconds [default: 2023-11-14].",
)
@click.option(
    "--member-names",
    default=None,
    metavar="A,B,C",
    help="Members' names (sets --members); e.g. the sensors of a real data set, to mix with it.",
)
@click.option(
    "--only",
    "kinds",
    multiple=True,
    type=click.Choice(["botnet", "slow", "scanner", "nat"]),
    help="Generate only these actors (repeatable); --only nat writes benign traffic.",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="CSV (.gz: gzip).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def generate_cmd(
    members: int,
    n_events: int,
    seed: int,
    days: float,
    start: str | None,
    member_names: str | None,
    kinds: tuple[str, ...],
    out: str,
    as_json: bool,
) -> None:
    """Write a seeded campaign with ground truth: botnets sweeping members, low-and-slow
    brute force below local thresholds, scanners, and legitimate NAT users with typos and
    successful logins."""
    from shieldwall.drill.generate import Campaign, write_csv
    from shieldwall.drill.io import parse_time

    try:
        extra: dict[str, Any] = {}
        if start is not None:
            extra["start"] = parse_time(start)
        if member_names is not None:
            extra["names"] = tuple(n.strip() for n in member_names.split(",") if n.strip())
        if kinds:
            extra["kinds"] = kinds
        campaign = Campaign(members=members, events=n_events, seed=seed, days=days, **extra)
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
            f"from {counts['sources']:,} sources at {campaign.members} members to {out}"
        )
