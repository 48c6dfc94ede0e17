#!/usr/bin/env python3
"""Propagation: from the failed-login line appended at member A to the ban applied at every
other member. Starts a real council and N real agents on this machine (loopback, dry-run
``log`` enforcers; ``--enforcer nftables`` when root and you want the kernel in the loop).

    python bench/propagation.py --members 50 [--attacks 5] [--json]

For the peers, the same path is bounded by their polling intervals, not measured here:
CrowdSec bouncers poll the local API every 10 s (expected +5 s, worst +10 s after the
decision exists), DenyHosts sync runs hourly. Those lines are printed as *modelled*.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from shieldwall.loopback.alliance import LocalAlliance, percentile


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--attacks", type=int, default=5, help="distinct attackers, one after another")
    ap.add_argument(
        "--poll-interval", type=float, default=0.02, help="agents' log poll interval in seconds"
    )
    ap.add_argument("--enforcer", choices=["log", "nftables"], default="log")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    t_start = time.time()
    samples: list[float] = []
    local: list[float] = []
    missing = 0
    with LocalAlliance(
        n_members=args.members, poll_interval=args.poll_interval, enforcer=args.enforcer
    ) as alliance:
        startup = time.time() - t_start
        a = alliance.members[0]
        others = alliance.members[1:]
        for i in range(args.attacks):
            source = f"203.0.113.{100 + i}"
            t0 = alliance.attack(a, source, 5)
            applied = alliance.wait_applied(source, alliance.members, timeout=20)
            missing += len(alliance.members) - len(applied)
            if a.name in applied:
                local.append((applied[a.name] - t0) * 1000)
            samples += [(applied[m.name] - t0) * 1000 for m in others if m.name in applied]
            time.sleep(0.2)
    out = {
        "members": args.members,
        "attacks": args.attacks,
        "samples": len(samples),
        "missing": missing,
        "p50": round(percentile(samples, 50), 1),
        "p99": round(percentile(samples, 99), 1),
        "max": round(max(samples), 1) if samples else None,
        "local_ban_p50": round(percentile(local, 50), 1),
        "startup_s": round(startup, 1),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"shieldwall propagation, {args.members} members on this machine "
            f"({args.attacks} attacks, {len(samples)} member-applications, "
            f"{missing} missing; startup {startup:.1f}s)"
        )
        print(
            f"  log line at A → ban applied at each other member: "
            f"p50 {out['p50']} ms   p99 {out['p99']} ms   max {out['max']} ms"
        )
        print(f"  log line at A → local ban at A: p50 {out['local_ban_p50']} ms")
        p99 = out["p99"]
        assert isinstance(p99, float)
        print("  peers (modelled from their documented intervals, not measured here):")
        print(
            f"    CrowdSec bouncer poll 10 s: mean ≥ 5000 ms, worst ≥ 10000 ms "
            f"(× {10000 / max(p99, 0.1):.0f} our p99)"
        )
        print(
            f"    DenyHosts sync hourly:      mean ≥ 1800000 ms "
            f"(× {1800000 / max(p99, 0.1):.0f} our p99)"
        )
        print("    fail2ban: other hosts never block (each defends alone)")
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
