"""The drill's live mode: the same events replayed, time-compressed, into real agents' log
files, with a real council on loopback, measuring end-to-end time to protection.

:func:`run_live` starts a council and one agent per member as real processes
(:class:`~shieldwall.loopback.alliance.LocalAlliance`, ``log`` dry-run enforcers), then writes
every event
into its member's log at wall time ``(event time − start) / speed``: a failure as an sshd
``Failed password`` line, a success as ``Accepted password`` (the agents run ``sshd`` and
``sshd-success``). Afterwards the enforcers' records tell, per source, when every member was
protected, and which attempts were written to a member already protected from their source
(attempts a firewall would have stopped; they are written all the same, as the brief of the
replay is the campaign itself).

Time is compressed everywhere, not only between lines: the agents' rule and the council's
treaty run the drill's durations divided by ``speed`` (:class:`LiveTiming`), so that the live
alliance sees the campaign as the simulated one does. Two floors apply: the rule counts whole
seconds (``findtime`` and ``bantime`` at least 1 s of wall time), and the alliance window is
at least :data:`MIN_WINDOW` seconds, longer than the agents' sighting batching (1 s) so that
sightings reach the council inside it. The simulated ``alliance`` it is compared with runs on
the same events with the durations the live alliance actually had (floors included).
"""

from __future__ import annotations

import bisect
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shieldwall.drill import run as run_drill
from shieldwall.drill.io import FAIL, SUCCESS, DrillEvent
from shieldwall.drill.score import percentile
from shieldwall.drill.strategies import DrillConfig
from shieldwall.loopback.alliance import CouncilWatcher, LocalAlliance, Member

__all__ = [
    "DEFAULT_MEMBERS_LIMIT",
    "MIN_WINDOW",
    "TARGET_SECONDS",
    "LiveTiming",
    "busiest",
    "line",
    "live_drill",
    "run_live",
]

TARGET_SECONDS = 60.0
"""Without ``speed``, the replay is compressed to last about this long (never slowed down)."""
DEFAULT_MEMBERS_LIMIT = 10
"""Agents are processes: by default the 10 busiest members are replayed."""
MIN_WINDOW = 5.0
"""Wall seconds: the shortest alliance (and quorum) window; agents batch sightings for 1 s."""
LEAD = 0.5
"""Wall seconds between the end of the start-up and the first line."""
QUIET = 2.5
"""After the last line: the run ends once nothing was enforced or decided for this long…"""
SETTLE_LIMIT = 30.0
"""…or after this long at most."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SAMPLE = 10


@dataclass(frozen=True, slots=True)
class LiveTiming:
    """The drill's durations as the live agents and council run them (wall seconds)."""

    speed: float
    maxretry: int
    findtime: int
    """The agents' rule counts whole seconds."""
    bantime: int
    window: float
    granularity: float
    quorum_window: float
    blast_window: float

    @classmethod
    def of(cls, config: DrillConfig, speed: float) -> LiveTiming:
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, not {speed!r}")
        window = max(MIN_WINDOW, config.alliance_window / speed)
        return cls(
            speed=speed,
            maxretry=config.maxretry,
            findtime=max(1, round(config.findtime / speed)),
            bantime=max(1, round(config.bantime / speed)),
            window=window,
            granularity=min(300.0 / speed, window),  # DrillConfig.terms: min(300 s, window)
            quorum_window=max(MIN_WINDOW, 3600.0 / speed),
            blast_window=3600.0 / speed,
        )

    def drill_config(self, config: DrillConfig) -> DrillConfig:
        """``config`` with the durations the live alliance amounts to in event time (what the
        simulation it is compared with runs)."""
        s = self.speed
        return replace(
            config,
            findtime=self.findtime * s,
            bantime=self.bantime * s,
            alliance_window=self.window * s,
        )

    def rule_toml(self) -> str:
        """The agents' failure rule: the shipped ``sshd`` with the compressed bucket."""
        return (
            'name = "sshd"\nextends = "sshd"\n'
            f"maxretry = {self.maxretry}\nfindtime = {self.findtime}\nbantime = {self.bantime}\n"
        )

    def treaty_toml(self, config: DrillConfig) -> str:
        """The council's ``[treaty]``: :meth:`DrillConfig.terms`, compressed."""
        t = config.threshold
        ban = float(self.bantime)
        return "\n".join(
            [
                "[treaty]",
                f"ban-duration = {ban!r}",
                f"max-duration = {ban!r}",
                "[treaty.alliance]",
                f"window = {self.window!r}",
                f"granularity = {self.granularity!r}",
                f"members = {t.members}",
                f"attempts = {t.attempts}",
                f"per-member = {t.per_member}",
                "max-sources = 1000000",
                "[treaty.friendly-fire]",
                f"enabled = {'true' if config.friendly_fire else 'false'}",
                "[treaty.quorum]",
                f"members = {config.quorum or 2}",
                f"window = {self.quorum_window!r}",
                "[treaty.blast-radius]",
                f"window = {self.blast_window!r}",
                "[treaty.sanctions]",
                "increment = false",
                "range = false",
                "",
            ]
        )

    def settings(self, config: DrillConfig) -> dict[str, Any]:
        """Asked (event time), run (wall) and what that amounts to (event time); ``notes``
        says where a floor made the live alliance differ from what was asked."""
        s = self.speed
        run = {"findtime": self.findtime, "bantime": self.bantime, "window": self.window}
        asked = {
            "findtime": config.findtime,
            "bantime": config.bantime,
            "window": config.alliance_window,
        }
        amounts = {k: v * s for k, v in run.items()}
        notes = [
            f"{k} {fmt_span(asked[k])} would be {fmt_span(asked[k] / s)} of wall time at "
            f"{fmt_speed(s)}; "
            f"the live alliance runs {fmt_span(v)} (= {fmt_span(amounts[k])} of campaign time)"
            for k, v in run.items()
            if not math.isclose(amounts[k], asked[k], rel_tol=0.02)
        ]
        return {
            "speed": s,
            "maxretry": self.maxretry,
            "threshold": f"{config.threshold.members}/{config.threshold.attempts}"
            f"/{config.threshold.per_member}",
            "friendly_fire": config.friendly_fire,
            "quorum": config.quorum,
            "asked": asked,
            "wall": run,
            "campaign": amounts,
            "notes": notes,
        }


def fmt_span(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    if seconds < 172800:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} d"


def line(when: float, host: str, source: str, kind: str, n: int) -> str:
    """One sshd log line (RFC 3339 stamp with microseconds, as rsyslog's high-precision
    format): ``Failed password`` for a failure, ``Accepted password`` for a success."""
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    port = 1024 + n % 60000
    if kind == SUCCESS:
        message = f"Accepted password for alice from {source} port {port} ssh2"
    else:
        message = f"Failed password for root from {source} port {port} ssh2"
    return f"{stamp}Z {host} sshd[{1000 + n % 30000}]: {message}\n"


def busiest(events: Iterable[DrillEvent], limit: int) -> tuple[list[str], Counter[str]]:
    """The ``limit`` members with the most events (ties by name), and every member's count."""
    counts = Counter(e.member for e in events)
    return sorted(counts, key=lambda m: (-counts[m], m))[:limit], counts


def _agent_names(members: Sequence[str]) -> dict[str, str]:
    """Member → agent name (the member's own when it is a valid one)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for i, m in enumerate(members, 1):
        name = m if _NAME.match(m) and m not in taken else f"member-{i}"
        while name in taken:
            name = f"{name}-x"
        out[m] = name
        taken.add(name)
    return out


# -- the enforcers' records ------------------------------------------------------------------


def _intervals(records: Iterable[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """A log enforcer's records → scope → when it was blocked, [from, until) in time order
    (an ``add`` blocks until its expiry, as an nftables set timeout would)."""
    spans: dict[str, list[list[float]]] = {}
    for rec in records:
        op = rec.get("op")
        at = float(rec.get("at", 0.0))
        if op == "add":
            lst = spans.setdefault(str(rec["scope"]), [])
            expires = float(rec["expires"])
            if lst and lst[-1][1] > at:
                lst[-1][1] = max(lst[-1][1], expires)
            else:
                lst.append([at, expires])
        elif op == "remove":
            lst = spans.get(str(rec["scope"]), [])
            if lst and lst[-1][1] > at:
                lst[-1][1] = at
        elif op == "sync":
            for lst in spans.values():
                if lst and lst[-1][1] > at:
                    lst[-1][1] = at
            for scope in rec.get("scopes", []):
                spans.setdefault(str(scope), []).append([at, math.inf])
    return {s: [(a, b) for a, b in lst if b > a] for s, lst in spans.items()}


def _covered(spans: Sequence[tuple[float, float]] | None, t: float) -> bool:
    if not spans:
        return False
    i = bisect.bisect_right(spans, (t, math.inf)) - 1
    return i >= 0 and spans[i][0] <= t < spans[i][1]


def _protected_everywhere(per_member: Sequence[Sequence[tuple[float, float]]]) -> float | None:
    """The first instant every member blocks the source at once."""
    if not per_member or not all(per_member):
        return None
    for start in sorted(a for spans in per_member for a, _ in spans):
        if all(_covered(spans, start) for spans in per_member):
            return start
    return None


# -- the run -----------------------------------------------------------------------------------


def _replay(
    events: Sequence[DrillEvent],
    logs: dict[str, tuple[Path, str]],
    start: float,
    speed: float,
    say: Callable[[str], None] | None,
) -> tuple[list[float], list[float]]:
    """Write every event into its member's log on schedule; (write times, lags) in wall
    seconds (a write time is taken once the line is flushed)."""
    handles = {m: path.open("a", encoding="utf-8") for m, (path, _) in logs.items()}
    written = [0.0] * len(events)
    lags = [0.0] * len(events)
    t0 = time.time() + LEAD
    next_say = t0 + 5.0
    try:
        for i, e in enumerate(events):
            due = t0 + (e.time - start) / speed
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            fh = handles[e.member]
            fh.write(line(time.time(), logs[e.member][1], str(e.source), e.kind, i))
            fh.flush()
            written[i] = now = time.time()
            lags[i] = max(0.0, now - due)
            if say is not None and now >= next_say:
                next_say = now + 5.0
                say(f"  {i + 1:,} of {len(events):,} events written ({now - t0:.0f} s)")
    finally:
        for fh in handles.values():
            fh.close()
    return written, lags


def _settle(members: Sequence[Member], watcher: CouncilWatcher) -> float:
    """Wait until nothing was enforced or decided for :data:`QUIET` seconds; how long."""
    began = time.monotonic()
    last: tuple[object, ...] = ()
    since = began
    while (now := time.monotonic()) - began < SETTLE_LIMIT:
        state = (
            *(m.enforce_log.stat().st_size if m.enforce_log.exists() else 0 for m in members),
            len(watcher.decided),
        )
        if state != last:
            last, since = state, now
        elif now - since >= QUIET:
            break
        time.sleep(0.1)
    return time.monotonic() - began


def _check_agents(members: Sequence[Member]) -> None:
    for m in members:
        if m.proc is not None and m.proc.poll() is not None:
            tail = (m.dir / "agent.log").read_text(errors="replace").splitlines()[-5:]
            raise RuntimeError(f"{m.name}'s agent exited: " + " | ".join(tail))


def _ms(values: Sequence[float]) -> dict[str, float | None]:
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    return {
        "p50": None if p50 is None else round(p50 * 1000, 1),
        "p99": None if p99 is None else round(p99 * 1000, 1),
    }


def run_live(
    events: Sequence[DrillEvent],
    config: DrillConfig | None = None,
    *,
    speed: float | None = None,
    root: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Replay ``events`` (time order; one agent per member in them) live and compare with the
    simulated ``alliance`` on the same events. The JSON-ready result: ``live``,
    ``simulated`` (``alliance``: the drill's keys) and ``overlap``."""
    if not events:
        raise ValueError("no events to replay")
    config = config or DrillConfig()
    start = events[0].time
    span = events[-1].time - start
    if speed is None:
        speed = max(1.0, span / TARGET_SECONDS)
    timing = LiveTiming.of(config, speed)
    counts = Counter(e.member for e in events)
    members = sorted(counts, key=lambda m: (-counts[m], m))
    names = _agent_names(members)
    alliance = LocalAlliance(
        n_members=0,
        root=root,
        treaty=timing.treaty_toml(config),
        trust="probation" if config.quorum is not None else "trusted",
    )
    booted = time.monotonic()
    try:
        if say is not None:
            say(f"▶ starting a council and {len(members)} agents on 127.0.0.1 …")
        alliance.start()
        if alliance.root is None:  # pragma: no cover - start() sets it
            raise RuntimeError("the alliance has no directory")
        rule = alliance.root / "sshd-live.toml"
        rule.write_text(timing.rule_toml())
        alliance.rules = (str(rule), "sshd-success")
        agents = {m: alliance.add_member(names[m]) for m in members}
        for a in agents.values():
            alliance.start_agent(a)
        alliance.wait_streams(len(agents), timeout=30.0 + 2.0 * len(agents))
        watcher = CouncilWatcher(alliance.url, alliance.token)
        watcher.start()
        watcher.ready.wait(5)
        startup = time.monotonic() - booted
        if say is not None:
            say(
                f"  ready in {startup:.1f} s; replaying {len(events):,} events "
                f"({fmt_span(span)} of campaign) at {fmt_speed(speed)} "
                f"(about {fmt_span(span / speed)})"
            )
        logs = {m: (a.log, a.name) for m, a in agents.items()}
        written, lags = _replay(events, logs, start, speed, say)
        settle = _settle(list(agents.values()), watcher)
        _check_agents(list(agents.values()))
        spans = {m: _intervals(a.applied()) for m, a in agents.items()}
        council = dict(watcher.decided)
        counters = {
            k: v
            for k, v in sorted(alliance.stats().items())
            if k.startswith(("treaty.decided.", "treaty.refused.", "treaty.sightings.", "reports."))
        }
    finally:
        alliance.stop()

    first: dict[str, float] = {}
    legit: set[str] = set()
    attempts = logins = landed_after = logins_blocked = 0
    for e, w in zip(events, written, strict=True):
        source = str(e.source)
        if e.legit:
            legit.add(source)
        blocked = _covered(spans[e.member].get(source), w)
        if e.kind == FAIL:
            attempts += 1
            first.setdefault(source, w)
            landed_after += blocked
        else:
            logins += 1
            logins_blocked += blocked
    decided = {s for by_scope in spans.values() for s in by_scope}
    ttp: list[float] = []
    for source, at in first.items():
        everywhere = _protected_everywhere([spans[m].get(source, []) for m in members])
        if everywhere is not None:
            ttp.append(max(0.0, everywhere - at))
    decision = [council[s] - at for s, at in first.items() if s in council]

    board = run_drill(events, timing.drill_config(config), ("alliance",))
    sim = board.result()["strategies"]["alliance"]
    sim_ttp = sim["time_to_protection_ms"]
    sim["time_to_protection_wall_ms"] = {
        k: None if v is None else round(v / speed, 1) for k, v in sim_ttp.items()
    }
    sim_decided = {str(a) for a in board.strategies[0].decided}
    both = decided & sim_decided
    return {
        "live": {
            "members": len(members),
            "member_names": members,
            "events_written": len(events),
            "attempts_written": attempts,
            "logins_written": logins,
            "seconds": round(written[-1] - written[0], 3),
            "startup_seconds": round(startup, 3),
            "settle_seconds": round(settle, 3),
            "speed": speed,
            "campaign_seconds": span,
            "sources": len(first),
            "legit_sources": len(legit),
            "sources_decided": len(decided),
            "council_decisions": len(council),
            "council_counters": counters,
            "sources_protected_everywhere": len(ttp),
            "time_to_protection_ms": _ms(ttp),
            "council_decision_ms": _ms(decision),
            "landed_after_protection": landed_after,
            "logins_blocked": logins_blocked,
            "false_bans": len(decided & legit),
            "writer_lag_ms": {
                "p99": round((percentile(lags, 0.99) or 0.0) * 1000, 1),
                "max": round(max(lags) * 1000, 1),
            },
            "settings": timing.settings(config),
        },
        "simulated": {"alliance": sim},
        "overlap": {
            "both": len(both),
            "live_only": len(decided - sim_decided),
            "simulated_only": len(sim_decided - decided),
            "live_only_sample": sorted(decided - sim_decided)[:_SAMPLE],
            "simulated_only_sample": sorted(sim_decided - decided)[:_SAMPLE],
        },
    }


def live_drill(
    make_events: Callable[[], Iterable[DrillEvent]],
    config: DrillConfig | None = None,
    *,
    speed: float | None = None,
    members_limit: int = DEFAULT_MEMBERS_LIMIT,
    root: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """:func:`run_live` on the ``members_limit`` busiest members' events. ``make_events``
    gives the events in time order; it is read twice (counting, then keeping)."""
    if members_limit < 1:
        raise ValueError("members_limit must be at least 1")
    chosen, counts = busiest(make_events(), members_limit)
    keep = set(chosen)
    events = [e for e in make_events() if e.member in keep]
    result = run_live(events, config, speed=speed, root=root, say=say)
    result["live"].update(
        members_total=len(counts),
        members_limit=members_limit,
        events_total=sum(counts.values()),
    )
    return result


# -- output ----------------------------------------------------------------------------------


def fmt_speed(speed: float) -> str:
    return f"{speed:,.0f}×" if speed >= 10 else f"{speed:.3g}×"
