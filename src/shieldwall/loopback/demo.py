"""``shieldwall demo``: a council and N members on loopback, an attack on member 1, every
member blocking it, with timings."""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from shieldwall.loopback.alliance import ATTACKER, CouncilWatcher, LocalAlliance


def run_demo(n_members: int = 5, *, live: bool = True, keep: bool = False) -> dict[str, Any]:
    def say(text: str) -> None:
        if live:
            print(text, flush=True)

    if keep:
        os.environ["SHIELDWALL_KEEP"] = "1"
    alliance = LocalAlliance(n_members=n_members)
    t_start = time.time()
    try:
        say(f"▶ starting a council and {n_members} member agents on 127.0.0.1 …")
        alliance.start()
        say(f"  council {alliance.url}, data in {alliance.root}")
        say(
            f"  {n_members} members enrolled with Ed25519 keys, all following the decision "
            f"stream ({time.time() - t_start:.1f}s)"
        )
        watcher = CouncilWatcher(alliance.url, alliance.token)
        watcher.start()
        watcher.ready.wait(5)
        first = alliance.members[0]
        say(f"\n▶ {ATTACKER} attacks {first.name} over ssh; its auth.log says:")
        t0 = alliance.attack(first, ATTACKER, 5, gap=0.3, echo=lambda s: say(f"    {s}"))
        applied = alliance.wait_applied(ATTACKER, alliance.members)
        council_at = watcher.decided.get(ATTACKER)
        say("")
        events = []
        if first.name in applied:
            events.append(
                (applied[first.name], f"{first.name} detected it and banned {ATTACKER} locally")
            )
        if council_at is not None:
            events.append(
                (council_at, "council verified the signed report and decided: ban alliance-wide")
            )
        for m in alliance.members[1:]:
            if m.name in applied:
                events.append((applied[m.name], f"{m.name} applied the ban"))
        for at, text in sorted(events):
            say(f"  +{(at - t0) * 1000:7.1f} ms  {text}")
        others = [(applied[m.name] - t0) * 1000 for m in alliance.members[1:] if m.name in applied]
        blocked_everywhere = len(applied) == n_members
        missing = [m.name for m in alliance.members if m.name not in applied]
        summary: dict[str, Any] = {
            "members": n_members,
            "source": ATTACKER,
            "blocked_everywhere": blocked_everywhere,
            "local_ban_ms": round((applied[first.name] - t0) * 1000, 1)
            if first.name in applied
            else None,
            "council_decision_ms": round((council_at - t0) * 1000, 1) if council_at else None,
            "propagation_ms": {
                "p50": round(statistics.median(others), 1) if others else None,
                "max": round(max(others), 1) if others else None,
            },
            "missing": missing,
            "run_seconds": round(time.time() - t_start, 1),
        }
        if blocked_everywhere:
            say(
                f"\n✔ {ATTACKER} is blocked by all {n_members} members: p50 "
                f"{summary['propagation_ms']['p50']} ms, max {summary['propagation_ms']['max']} "
                "ms after the last failed login was written."
            )
        else:
            say(f"\n✘ not blocked everywhere; missing: {', '.join(missing)}")
        return summary
    finally:
        alliance.stop()
        if keep:
            say(f"(kept {alliance.root})")
