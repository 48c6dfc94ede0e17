#!/usr/bin/env python3
"""Detection speed and memory: shieldwall's detector against fail2ban-regex, same file, same run.

    python bench/detect.py [--lines 1000000] [--seed 7] [--repeat 3] [--json] [--no-fail2ban]

Generates (seeded) a 1M-line sshd auth log and a 1M-line nginx access log with a realistic
mix (failures, successes, other daemons, normal web traffic, probes; tens of thousands of
distinct sources), then times on ONE core:

* shieldwall: the agent's own path — ``FileSource`` reads the file in chunks, ``Detector.
  feed_many(hits=False, tally=True)`` detects and counts hits per source, as the agent does
  for its sightings (native rules, and fail2ban's own filter files). Both take the C path
  when the extension is built (``shieldwall.detect.native``: native rules as a block scan,
  fail2ban filters with ``maxlines = 1`` through ``_native.Filter``; the worker prints which
  path ran; ``SHIELDWALL_NATIVE=0`` measures the pure-Python one);
* ``fail2ban-regex`` (Debian package ``fail2ban``) on the same file with its own filter.

It then measures memory under a flood of 1M distinct sources, and the cost of hostile input
(10 MB lines, binary garbage, invalid UTF-8), and prints lines/s and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

USERS = ["root", "admin", "oracle", "test", "ubuntu", "git", "postgres", "user", "pi", "guest"]


def _ip(rng: random.Random) -> str:
    return (
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    )


def gen_sshd(path: Path, n: int, seed: int) -> None:
    """~36 % failures (real servers under attack log more: loghub's OpenSSH_2k has 57 %)."""
    rng = random.Random(seed)
    attackers = [_ip(rng) for _ in range(20_000)]
    good = [_ip(rng) for _ in range(200)]
    t = datetime(2026, 3, 1, tzinfo=UTC)
    with path.open("w") as out:
        for _ in range(n):
            t += timedelta(milliseconds=rng.randint(0, 60))
            ts = f"{t:%b} {t.day:2d} {t:%H:%M:%S}"
            pid = rng.randint(1000, 60000)
            port = rng.randint(1024, 65535)
            a = rng.choice(attackers)
            r = rng.random()
            if r < 0.22:
                inv = "invalid user " if rng.random() < 0.5 else ""
                msg = f"sshd[{pid}]: Failed password for {inv}{rng.choice(USERS)} from {a} port {port} ssh2"
            elif r < 0.30:
                msg = f"sshd[{pid}]: Invalid user {rng.choice(USERS)} from {a} port {port}"
            elif r < 0.36:
                msg = (
                    f"sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                    f"euid=0 tty=ssh ruser= rhost={a}  user=root"
                )
            elif r < 0.46:
                msg = f"sshd[{pid}]: Received disconnect from {a} port {port}:11: Bye Bye [preauth]"
            elif r < 0.56:
                msg = f"sshd[{pid}]: Connection closed by {a} port {port} [preauth]"
            elif r < 0.62:
                msg = f"sshd[{pid}]: pam_unix(sshd:auth): check pass; user unknown"
            elif r < 0.70:
                msg = (
                    f"sshd[{pid}]: Accepted publickey for deploy from {rng.choice(good)} port "
                    f"{port} ssh2: RSA SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
                )
            elif r < 0.78:
                msg = f"sshd[{pid}]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)"
            elif r < 0.88:
                msg = f"CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
            elif r < 0.94:
                msg = f"systemd[1]: Started Session {pid} of user deploy."
            else:
                msg = (
                    f"kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:00 SRC={a} DST=10.0.0.1 LEN=40 "
                    "PROTO=TCP SPT=4444 DPT=23"
                )
            out.write(f"{ts} web1 {msg}\n")


PROBES = [
    "/wp-login.php",
    "/xmlrpc.php",
    "/phpmyadmin/index.php",
    "/.env",
    "/.git/config",
    "/cgi-bin/luci",
    "/wp-admin/setup-config.php",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/boaform/admin/formLogin",
    "/HNAP1/",
    "/manager/html",
    "/backup.sql",
]
PAGES = [
    "/",
    "/index.html",
    "/about",
    "/blog/2026/03/hello",
    "/static/app.js",
    "/static/site.css",
    "/images/logo.png",
    "/api/v1/items?page=2",
    "/favicon.ico",
    "/contact",
]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "python-requests/2.32.3",
]


def gen_nginx(path: Path, n: int, seed: int) -> None:
    """nginx "combined" access log: ~8 % probes answered 404, the rest normal traffic."""
    rng = random.Random(seed + 1)
    scanners = [_ip(rng) for _ in range(5_000)]
    visitors = [_ip(rng) for _ in range(50_000)]
    t = datetime(2026, 3, 1, tzinfo=UTC)
    with path.open("w") as out:
        for _ in range(n):
            t += timedelta(milliseconds=rng.randint(0, 40))
            ts = t.strftime("%d/%b/%Y:%H:%M:%S +0000")
            if rng.random() < 0.08:
                src, req, status = rng.choice(scanners), rng.choice(PROBES), 404
            else:
                src, req = rng.choice(visitors), rng.choice(PAGES)
                status = 200 if rng.random() < 0.9 else rng.choice([301, 304, 404])
            out.write(
                f'{src} - - [{ts}] "GET {req} HTTP/1.1" {status} {rng.randint(100, 90000)} '
                f'"-" "{rng.choice(AGENTS)}"\n'
            )


def gen_flood(path: Path, n: int) -> None:
    """n failed logins, each from a different address (bucket memory must stay bounded)."""
    t = datetime(2026, 3, 1, tzinfo=UTC)
    with path.open("w") as out:
        for i in range(n):
            a = f"{11 + (i >> 16) % 200}.{(i >> 8) & 255}.{i & 255}.{1 + i % 250}"
            ts = f"{t:%b} {t.day:2d} {t:%H:%M:%S}"
            out.write(
                f"{ts} web1 sshd[{i % 60000}]: Failed password for root from {a} port 22 ssh2\n"
            )
            if i % 50 == 0:
                t += timedelta(seconds=1)


def gen_hostile(path: Path) -> int:
    """10 MB lines, binary garbage and invalid UTF-8, between ordinary failures."""
    rng = random.Random(3)
    lines = 0
    with path.open("wb") as out:
        for _ in range(20):
            out.write(
                b"Mar  1 00:00:01 web1 sshd[1]: Failed password for root from 198.51.100.9 port 22 ssh2\n"
            )
            out.write(b"A" * (10 * 1024 * 1024) + b"\n")
            out.write(bytes(rng.getrandbits(8) for _ in range(4096)).replace(b"\n", b" ") + b"\n")
            out.write(
                b"Mar  1 00:00:02 web1 sshd[1]: Failed password for \xff\xfe from 198.51.100.9 port 22 ssh2\n"
            )
            lines += 4
    return lines


WORKER = r"""
import json, resource, sys, time
from datetime import datetime, UTC
from shieldwall.agent.sources.file import FileSource
from shieldwall.detect import Detector, builtin_rule
path, kind, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
if kind == "native":
    rules = [builtin_rule(n) for n in names]
else:
    from shieldwall.detect.fail2ban.rules import load_fail2ban_rule
    rules = [load_fail2ban_rule(n)[0] for n in names]
det = Detector(rules)
now = datetime(2026, 3, 20, tzinfo=UTC)
src = FileSource(path, None)
lines = skipped = alerts = 0
t0 = time.process_time(); w0 = time.perf_counter()
while True:
    b = src.poll()
    if b is None:
        break
    lines += b.count; skipped += b.skipped
    found = det.feed_many(b.line_block, now, hits=False, tally=True)  # as the agent does
    alerts += len(found.alerts)
cpu = time.process_time() - t0; wall = time.perf_counter() - w0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"lines": lines + skipped, "skipped": skipped, "hits": det.counters.get("hits"),
                  "path": "C" if any(u.c_scanner is not None or u.c_filter is not None
                                     for u in det._units) else "Python",
                  "alerts": alerts, "cpu_s": cpu, "wall_s": wall, "rss_mb": rss,
                  "counters": det.counters.values}))
"""


def best_of(repeat: int, run: Any, *args: Any) -> dict[str, Any]:
    """The fastest of ``repeat`` runs (the same treatment for shieldwall and fail2ban-regex:
    on a shared machine the slower runs measure the neighbours), with every rate kept."""
    runs = [run(*args) for _ in range(max(repeat, 1))]
    good = [r for r in runs if "lines_per_s" in r]
    if not good:
        return runs[0]
    best = max(good, key=lambda r: r["lines_per_s"])
    best["runs_lines_per_s"] = [round(r["lines_per_s"]) for r in good]
    return best


def run_shieldwall(path: Path, kind: str, rules: str) -> dict[str, Any]:
    r = subprocess.run(
        [sys.executable, "-c", WORKER, str(path), kind, rules],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr else "failed"}
    out: dict[str, Any] = json.loads(r.stdout)
    out["lines_per_s"] = out["lines"] / max(out["cpu_s"], 1e-9)
    return out


def run_fail2ban(path: Path, filt: str) -> dict[str, Any]:
    exe = shutil.which("fail2ban-regex")
    if exe is None:
        return {"error": "fail2ban-regex not installed (apt-get install fail2ban)"}
    t0 = time.perf_counter()
    r = subprocess.run(
        [exe, "--print-no-missed", "--print-no-ignored", str(path), filt],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched", r.stdout)
    p = re.search(r"\[processed in ([\d.]+) sec\]", r.stdout)
    if m is None:
        return {"error": (r.stderr or r.stdout)[-300:]}
    secs = float(p.group(1)) if p else wall
    return {
        "lines": int(m.group(1)),
        "matched": int(m.group(3)),
        "seconds": secs,
        "lines_per_s": int(m.group(1)) / secs,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--flood", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-fail2ban", action="store_true")
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs per measurement; the fastest counts"
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", help="write the generated logs here and keep them")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sw-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    sshd, nginx, flood, hostile = (
        work / "auth.log",
        work / "access.log",
        work / "flood.log",
        work / "hostile.log",
    )
    gen_sshd(sshd, args.lines, args.seed)
    gen_nginx(nginx, args.lines, args.seed)
    gen_flood(flood, args.flood)
    hostile_lines = gen_hostile(hostile)
    f2b_dir = Path("/etc/fail2ban/filter.d")
    results: dict[str, Any] = {"lines": args.lines, "seed": args.seed, "runs": {}}
    plan = [
        ("sshd", sshd, "native", "sshd", f2b_dir / "sshd.conf"),
        ("sshd (fail2ban filter)", sshd, "fail2ban", str(f2b_dir / "sshd.conf"), None),
        ("nginx-botsearch", nginx, "native", "nginx-botsearch", f2b_dir / "nginx-botsearch.conf"),
        (
            "nginx-botsearch (fail2ban filter)",
            nginx,
            "fail2ban",
            str(f2b_dir / "nginx-botsearch.conf"),
            None,
        ),
    ]
    baseline: dict[Path, dict[str, Any]] = {}
    for name, path, kind, rules, f2b in plan:
        sw = best_of(args.repeat, run_shieldwall, path, kind, rules)
        row: dict[str, Any] = {"shieldwall": sw}
        if f2b is not None and not args.no_fail2ban:
            baseline[path] = best_of(args.repeat, run_fail2ban, path, str(f2b))
            row["fail2ban_regex"] = baseline[path]
        fb = baseline.get(path, {})
        if "lines_per_s" in fb and "lines_per_s" in sw:  # the same file's fail2ban-regex run
            row["ratio"] = sw["lines_per_s"] / fb["lines_per_s"]
        results["runs"][name] = row
    results["flood"] = run_shieldwall(flood, "native", "sshd")
    results["hostile"] = run_shieldwall(hostile, "native", "sshd")
    results["hostile"]["written_lines"] = hostile_lines
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results))
        return 0
    print(
        f"detection on one core, {args.lines:,} generated lines per log (seed {args.seed}), "
        f"best of {args.repeat} runs each"
    )
    for name, row in results["runs"].items():
        sw = row["shieldwall"]
        if "error" in sw:
            print(f"  {name:36s} shieldwall: not run ({sw['error']})")
            continue
        line = (
            f"  {name:36s} shieldwall {sw['lines_per_s']:>12,.0f} lines/s "
            f"({sw['hits']:,} hits, {sw['alerts']:,} alerts, RSS {sw['rss_mb']:.0f} MB, "
            f"{sw['path']} path)"
        )
        fb = row.get("fail2ban_regex")
        if fb and "lines_per_s" in fb:
            line += (
                f"\n  {'':36s} fail2ban-regex {fb['lines_per_s']:>8,.0f} lines/s "
                f"({fb['matched']:,} matched) → ratio ×{row['ratio']:.1f}"
            )
        elif fb:
            line += f"\n  {'':36s} fail2ban-regex: {fb['error']}"
        elif "ratio" in row:
            line += f"\n  {'':36s} ratio ×{row['ratio']:.1f} against the fail2ban-regex run above"
        print(line)
    for name in ("sshd", "sshd (fail2ban filter)"):
        sshd = results["runs"].get(name, {})
        if "lines_per_s" not in sshd.get("shieldwall", {}):
            continue
        rate, ratio = sshd["shieldwall"]["lines_per_s"], sshd.get("ratio")
        print(
            f"  targets (issue 3), {name}: ≥ 1,000,000 lines/s → {rate:,.0f} "
            f"({'met' if rate >= 1e6 else 'NOT met'}); ≥ 30× fail2ban-regex → "
            + (f"×{ratio:.1f} ({'met' if ratio >= 30 else 'NOT met'})" if ratio else "not measured")
        )
    fl = results["flood"]
    if "error" not in fl:
        print(
            f"  flood of {args.flood:,} distinct sources: RSS {fl['rss_mb']:.0f} MB, "
            f"{fl['lines_per_s']:,.0f} lines/s, evicted {fl['counters'].get('bucket_evicted', 0):,}"
        )
    ho = results["hostile"]
    if "error" not in ho:
        print(
            f"  hostile input ({hostile_lines} lines incl. 20 × 10 MB): {ho['cpu_s']:.2f} s CPU, "
            f"{ho['skipped']} skipped, {ho['hits']} hits, counters {ho['counters']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
