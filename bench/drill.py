#!/usr/bin/env python3
"""The drill at scale: the 9-sensor marx honeypot data (all rows, then TCP/22 only) and a
generated campaign, every strategy on the same events; prints the tables and run times.

    python bench/drill.py [--marx PATH] [--members 1000] [--events 2000000] [--seed 1] [--jobs N]
                          [--json]

marx is read where it lies (``$SHIELDWALL_CORPORA`` or ../shared/corpora); it has no licence
and is never copied. The generated campaign is written to a temporary file first (its
generation time is reported apart), then replayed from that file like any user's input.
``--jobs`` is the drill's own (strategies in that many processes, the same result).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shieldwall.cli.drill import render
from shieldwall.drill import STRATEGIES, DrillConfig, jobs_default, read_events, replay_files
from shieldwall.drill.generate import Campaign, write_csv


def _marx_default() -> Path:
    env = os.environ.get("SHIELDWALL_CORPORA")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "corpora"
    return base / "aws-honeypot-marx" / "marx.csv.gz"


def _replay(path: Path, config: DrillConfig, jobs: int, port: int | None = None) -> dict[str, Any]:
    reader = read_events(path, port=port)
    started = time.perf_counter()
    result = replay_files([reader], config, jobs=jobs).result()
    seconds = time.perf_counter() - started
    result["seconds"] = round(seconds, 2)
    result["events_per_s"] = round(result["events"] / seconds) if seconds else None
    return result


def _show(title: str, result: dict[str, Any]) -> None:
    print(f"\n## {title}")
    print(render(result))
    s = result["strategies"]
    ratio = s["alliance"]["stopped"] / max(s["alone"]["stopped"], 1)
    print(
        f"alliance stops {ratio:.2f}x what alone stops; "
        f"{result['seconds']:.1f}s, {result['events_per_s']:,} events/s"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--marx", type=Path, default=_marx_default())
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--jobs", type=int, default=jobs_default(len(STRATEGIES)))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    out: dict[str, Any] = {}
    runs: list[tuple[str, DrillConfig, int | None]] = [
        ("marx, all rows (maxretry 5 / 10m, ban 4h)", DrillConfig(), None),
        ("marx, TCP/22 only (maxretry 5 / 10m, ban 4h)", DrillConfig(), 22),
        ("marx, TCP/22 only (maxretry 3 / 10m, ban 4h)", DrillConfig(maxretry=3), 22),
    ]
    if args.marx.is_file():
        for title, config, port in runs:
            out[title] = r = _replay(args.marx, config, args.jobs, port)
            if not args.json:
                _show(title, r)
    else:
        print(f"marx not found at {args.marx}: skipped", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "campaign.csv.gz"
        campaign = Campaign(
            members=args.members, events=args.events, seed=args.seed, days=args.days
        )
        started = time.perf_counter()
        counts = write_csv(campaign, path)
        generated = time.perf_counter() - started
        title = (
            f"generated: {args.members} members, {counts['events']:,} events, seed {args.seed} "
            f"(maxretry 5 / 10m, ban 4h)"
        )
        out[title] = r = _replay(path, DrillConfig(), args.jobs)
        r["generate_seconds"] = round(generated, 2)
        r["campaign"] = counts
        if not args.json:
            print(f"\ngenerated {counts['events']:,} events in {generated:.1f}s")
            _show(title, r)
    if args.json:
        print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
