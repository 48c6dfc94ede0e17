"""``shieldwall drill run … --live``: the live drill (:mod:`shieldwall.loopback.live_drill`)
read, run and printed."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

import click

from shieldwall.cli.table import table
from shieldwall.drill.io import DrillEvent
from shieldwall.drill.replay import merge, reorder
from shieldwall.drill.strategies import DrillConfig
from shieldwall.loopback.live_drill import fmt_span, fmt_speed, live_drill


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value < 10_000 else fmt_span(value / 1000)


def render_live(result: dict[str, Any]) -> str:
    """The readable report of a live drill."""
    live = result["live"]
    sim = result["simulated"]["alliance"]
    ov = result["overlap"]
    st = live["settings"]
    total = live.get("members_total", live["members"])
    limit = live.get("members_limit")
    who = (
        f"the {live['members']} busiest of {total} members (--members-limit {limit})"
        if total > live["members"]
        else f"{live['members']} members"
    )
    dropped = live.get("events_total", live["events_written"]) - live["events_written"]
    head = [
        f"live drill: a council and one agent per member on 127.0.0.1 — {who}",
        f"{live['events_written']:,} events written in {live['seconds']:.1f} s "
        f"({fmt_span(live['campaign_seconds'])} of campaign at {fmt_speed(live['speed'])})"
        + (f"; {dropped:,} event(s) at other members not replayed" if dropped else ""),
        f"agents: sshd maxretry {st['maxretry']} within {fmt_span(st['wall']['findtime'])}, "
        f"bans {fmt_span(st['wall']['bantime'])}; council: alliance window "
        f"{fmt_span(st['wall']['window'])}, threshold {st['threshold']} (wall time)",
        *(f"note: {n}" for n in st["notes"]),
    ]
    sim_wall = sim["time_to_protection_wall_ms"]
    sim_ttp = sim["time_to_protection_ms"]
    live_ttp = live["time_to_protection_ms"]
    speed = fmt_speed(live["speed"])
    rows = [
        ["attempts written", f"{live['attempts_written']:,}", f"{sim['attempts']:,}"],
        [
            "landed after protection",
            f"{live['landed_after_protection']:,}",
            f"{sim['stopped']:,} stopped",
        ],
        ["sources decided", f"{live['sources_decided']:,}", f"{sim['sources_decided']:,}"],
        ["protected everywhere", f"{live['sources_protected_everywhere']:,}", ""],
        *(
            [
                f"ttp {q}",
                _fmt_ms(live_ttp[q]),
                f"{_fmt_ms(sim_wall[q])} ({_fmt_ms(sim_ttp[q])} of campaign ÷ {speed})"
                if sim_ttp[q] is not None
                else "-",
            ]
            for q in ("p50", "p99")
        ),
        ["false bans", f"{live['false_bans']:,}", f"{sim['false_bans']:,}"],
    ]
    body = table(rows, ["", "live", "simulated alliance"])
    council = live["council_decision_ms"]
    tail = [
        f"time to protection: from a source's first attempt written anywhere to the first "
        f"moment every member's enforcer blocks it; council decision p50 "
        f"{_fmt_ms(council['p50'])}, p99 {_fmt_ms(council['p99'])}",
        f"decided: {ov['both']:,} by both, {ov['live_only']:,} only live, "
        f"{ov['simulated_only']:,} only simulated"
        + (f" (only live: {', '.join(ov['live_only_sample'])})" if ov["live_only"] else "")
        + (
            f" (only simulated: {', '.join(ov['simulated_only_sample'])})"
            if ov["simulated_only"]
            else ""
        ),
        f"writer lag p99 {live['writer_lag_ms']['p99']} ms, max {live['writer_lag_ms']['max']} "
        f"ms; start-up {live['startup_seconds']:.1f} s",
    ]
    return "\n".join([*head, body, *tail])


def live_command(
    readers: Sequence[Any],
    slack: float,
    config: DrillConfig,
    speed: float | None,
    members_limit: int,
    as_json: bool,
) -> None:
    """``shieldwall drill run FILE… --live``: read, replay live, print. ``readers`` are
    re-iterable streams of events in time order with ``path``, ``fmt``, ``rows`` and
    ``skipped`` (:class:`~shieldwall.drill.io.Reader` and the like)."""

    passes = 0

    def make_events() -> Iterable[DrillEvent]:
        nonlocal passes
        passes += 1
        # read twice (counting members, then replaying): the first pass reads copies, so
        # that ``readers`` count the rows of one pass
        rs = readers if passes > 1 else [copy.copy(r) for r in readers]
        streams = [reorder(r, slack) for r in rs]
        return streams[0] if len(streams) == 1 else merge(*streams)

    def say(text: str) -> None:
        click.echo(text, err=True)

    started = time.monotonic()
    try:
        result = live_drill(
            make_events,
            config,
            speed=speed,
            members_limit=members_limit,
            say=None if as_json else say,
        )
    except (RuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    result["seconds"] = round(time.monotonic() - started, 3)
    result["inputs"] = [
        {"path": str(r.path), "format": r.fmt, "rows": r.rows, "skipped": r.skipped}
        for r in readers
    ]
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        click.echo(render_live(result))
