#!/usr/bin/env python3
"""The whole agent against the daemon it replaces: ``shieldwall agent`` beside
``fail2ban-server`` on the same sshd log, in the same run.

    python bench/agent.py [--lines 1000000] [--json] [--profile]

Both daemons run as a user runs them, each watching its own copy of one log file that is
appended at once (timestamps set to now, so fail2ban skips nothing as older than findtime):

* ``shieldwall agent`` — a council running on loopback (``shieldwall council``), one
  member, a ``log`` enforcer, the rule given: fail2ban's own ``sshd.conf`` (Debian's
  ``/etc/fail2ban/filter.d``) or the native ``sshd`` rule. Its CPU seconds (user + system,
  from /proc) are counted until its ``lines.read`` counter reaches the file's lines.
* ``fail2ban-server`` — Debian's fail2ban, a jail on the same filter with the ``dummy``
  action and an in-memory database (``dbfile = :memory:``). Its own CPU seconds are counted
  until its ``Total failed`` stops moving (the ban commands it forks are shown apart).

Targets: the agent ≥ 30× fail2ban-server per CPU second with ``sshd.conf``, and ≥ 500k lines
per CPU second with the native rule. ``--profile`` records the agent with py-spy and prints
where its time goes.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shieldwall.loopback.alliance import LocalAlliance

USERS = ["root", "admin", "oracle", "test", "ubuntu", "git", "postgres", "user", "pi", "guest"]
F2B_FILTER = Path("/etc/fail2ban/filter.d/sshd.conf")


def _ip(rng: random.Random) -> str:
    return (
        f"{rng.randint(11, 99)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    )


def gen_sshd(path: Path, n: int, seed: int = 7) -> int:
    """An sshd log ending now (the mix of bench/detect.py: ~36 % failures, tens of thousands
    of sources, other daemons between); returns its failure lines."""
    rng = random.Random(seed)
    attackers = [_ip(rng) for _ in range(20_000)]
    good = [_ip(rng) for _ in range(200)]
    step = timedelta(milliseconds=max(1, 300_000 // max(n, 1)))  # all within 5 minutes
    t = datetime.now(UTC).replace(tzinfo=None) - step * n
    failures = 0
    with path.open("w") as out:
        for _ in range(n):
            t += step
            ts = f"{t:%b} {t.day:2d} {t:%H:%M:%S}"
            pid = rng.randint(1000, 60000)
            port = rng.randint(1024, 65535)
            r = rng.random()
            if r < 0.22:
                user = rng.choice(USERS)
                a = rng.choice(attackers)
                out.write(
                    f"{ts} web1 sshd[{pid}]: Failed password for {user} from {a} port {port} ssh2\n"
                )
                failures += 1
            elif r < 0.36:
                a = rng.choice(attackers)
                out.write(
                    f"{ts} web1 sshd[{pid}]: Invalid user {rng.choice(USERS)} from {a} port {port}\n"
                )
                failures += 1
            elif r < 0.50:
                out.write(
                    f"{ts} web1 sshd[{pid}]: Connection closed by {rng.choice(attackers)} port {port} [preauth]\n"
                )
            elif r < 0.56:
                out.write(
                    f"{ts} web1 sshd[{pid}]: Accepted publickey for git from {rng.choice(good)} port {port} ssh2: ED25519 SHA256:x\n"
                )
            elif r < 0.80:
                out.write(
                    f"{ts} web1 CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n"
                )
            else:
                out.write(f"{ts} web1 systemd[1]: Started Session {pid} of User git.\n")
    return failures


def cpu(pid: int, children: bool = False) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks = int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


# -- shieldwall ---------------------------------------------------------------------------


def run_agent(root: Path, log: Path, lines: int, rule: str, profile: bool) -> dict[str, Any]:
    with LocalAlliance(n_members=1, root=root, poll_interval=0.05, rules=(rule,)) as alliance:
        m = alliance.members[0]
        pid = m.proc.pid  # type: ignore[union-attr]
        spy = None
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if profile and Path(exe).exists():
            spy = subprocess.Popen(
                [
                    exe,
                    "record",
                    "-p",
                    str(pid),
                    "-f",
                    "raw",
                    "-o",
                    str(root / "agent.prof"),
                    "-r",
                    "200",
                    "--nonblocking",  # never pause the agent: its CPU is what is measured
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
        before = cpu(pid)
        t0 = time.monotonic()
        with m.log.open("ab") as out, log.open("rb") as src:
            shutil.copyfileobj(src, out)
        while m.counter("lines.read") < lines:
            time.sleep(0.02)
            if time.monotonic() - t0 > 1800:
                raise RuntimeError("the agent did not read the log in time")
        used = cpu(pid) - before
        wall = time.monotonic() - t0
        hits, alerts = m.counter("hits"), m.counter("alerts")
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT only
            spy.wait(30)
    out = {
        "rule": rule,
        "cpu_s": round(used, 2),
        "wall_s": round(wall, 2),
        "lines_per_cpu_s": round(lines / used),
        "hits": hits,
        "alerts": alerts,
    }
    if spy is not None and (root / "agent.prof").exists():
        out["profile"] = summarize_profile(root / "agent.prof")
    return out


def summarize_profile(path: Path, top: int = 12) -> list[tuple[str, float]]:
    """Where the agent's time went: the share of samples under each of the busiest frames
    of shieldwall's own code (the event loop's idle wait left out)."""
    under: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if "select (selectors.py" in frames[-1]:
            continue
        total += int(n)
        for f in {f for f in frames if "shieldwall/" in f and "cli/main.py" not in f}:
            under[f.split(" (")[0] + " (" + f.split("shieldwall/")[-1]] += int(n)
    return [(name, round(100 * n / total, 1)) for name, n in under.most_common(top)]


# -- fail2ban -----------------------------------------------------------------------------


def run_fail2ban(root: Path, log: Path, filter_file: Path) -> dict[str, Any]:
    conf = root / "f2b"
    (conf / "filter.d").mkdir(parents=True)
    (conf / "action.d").mkdir()
    for name in ("common.conf", filter_file.name):
        shutil.copy(filter_file.parent / name, conf / "filter.d" / name)
    shutil.copy("/etc/fail2ban/action.d/dummy.conf", conf / "action.d" / "dummy.conf")
    watched = root / "f2b-auth.log"
    watched.touch()
    (conf / "fail2ban.conf").write_text(
        "[Definition]\nloglevel = WARNING\nlogtarget = STDERR\n"
        f"socket = {root / 'f2b.sock'}\npidfile = {root / 'f2b.pid'}\ndbfile = :memory:\n"
    )
    (conf / "jail.conf").write_text(
        "[DEFAULT]\nbackend = polling\nbanaction = dummy\n"
        f"[sshd]\nenabled = true\nfilter = {filter_file.stem}\nlogpath = {watched}\n"
        "action = dummy\nmaxretry = 5\nfindtime = 10m\nbantime = 1h\n"
    )
    with open(root / "f2b.log", "ab") as err:
        server = subprocess.Popen(
            ["fail2ban-server", "-f", "-x", "-c", str(conf), "-s", str(root / "f2b.sock"),
             "-p", str(root / "f2b.pid")],
            stdout=err, stderr=err,
        )  # fmt: skip
    try:
        client = ["fail2ban-client", "-c", str(conf), "-s", str(root / "f2b.sock")]
        deadline = time.monotonic() + 60
        while subprocess.run([*client, "ping"], capture_output=True, check=False).returncode:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(
                    f"fail2ban-server did not start: {(root / 'f2b.log').read_text()}"
                )
            time.sleep(0.2)

        def total_failed() -> int:
            out = subprocess.run(
                [*client, "status", "sshd"], capture_output=True, text=True, check=False
            )
            for ln in out.stdout.splitlines():
                if "Total failed" in ln:
                    return int(ln.rsplit(":", 1)[1])
            return -1

        time.sleep(1)
        before, children = cpu(server.pid), cpu(server.pid, children=True)
        t0 = time.monotonic()
        with watched.open("ab") as out, log.open("rb") as src:
            shutil.copyfileobj(src, out)
        last, still = -1, 0.0
        while True:
            time.sleep(1.0)
            now = total_failed()
            if now == last and now > 0:
                still += 1.0
                if still >= 5.0:  # five seconds without a new failure: every line was read
                    break
            else:
                still = 0.0
                last = now
            if time.monotonic() - t0 > 7200:
                raise RuntimeError("fail2ban did not finish in 2 h")
        used = cpu(server.pid) - before
        forked = cpu(server.pid, children=True) - children
        wall = time.monotonic() - t0 - still
        return {"cpu_s": round(used, 2), "children_cpu_s": round(forked, 2),
                "wall_s": round(wall, 1), "total_failed": last}  # fmt: skip
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--profile", action="store_true", help="py-spy summary of the agent")
    ap.add_argument("--no-fail2ban", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="shieldwall-agent-bench-"))
    try:
        log = root / "auth.log"
        failures = gen_sshd(log, args.lines)
        filter_file = F2B_FILTER if F2B_FILTER.exists() else None
        result: dict[str, Any] = {"lines": args.lines, "failures": failures}
        if filter_file is None:
            result["fail2ban"] = {
                "skipped": "no /etc/fail2ban/filter.d/sshd.conf (apt-get install fail2ban)"
            }
        else:
            result["agent_sshd.conf"] = run_agent(
                root / "a1", log, args.lines, str(filter_file), args.profile
            )
        result["agent_native"] = run_agent(root / "a2", log, args.lines, "sshd", args.profile)
        if filter_file is not None and not args.no_fail2ban and shutil.which("fail2ban-server"):
            f2b = run_fail2ban(root, log, filter_file)
            f2b["lines_per_cpu_s"] = round(args.lines / f2b["cpu_s"])
            result["fail2ban"] = f2b
    finally:
        if not os.environ.get("SHIELDWALL_KEEP"):
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"the whole agent vs fail2ban-server: {args.lines:,}-line sshd log ({failures:,} failures), "
          "appended at once, CPU seconds until every line is read")  # fmt: skip
    f2b = result.get("fail2ban", {})
    for key, title, want in (("agent_sshd.conf", "shieldwall agent, fail2ban's sshd.conf", None),
                             ("agent_native", "shieldwall agent, native sshd rule", 500_000)):  # fmt: skip
        a = result.get(key)
        if not a:
            continue
        line = f"  {title:42s} {a['lines_per_cpu_s']:>10,} lines/CPU-s  ({a['cpu_s']} CPU-s, {a['wall_s']} s wall)"
        if "lines_per_cpu_s" in f2b:
            ratio = a["lines_per_cpu_s"] / f2b["lines_per_cpu_s"]
            line += f"  ×{ratio:.1f} fail2ban-server"
            if key == "agent_sshd.conf":
                line += f"  (target ≥ ×30: {'met' if ratio >= 30 else 'NOT met'})"
        if want:
            line += f"  (target ≥ {want:,}: {'met' if a['lines_per_cpu_s'] >= want else 'NOT met'})"
        print(line)
    if "lines_per_cpu_s" in f2b:
        print(f"  {'fail2ban-server (dummy action, :memory: db)':42s} {f2b['lines_per_cpu_s']:>10,} lines/CPU-s  "
              f"({f2b['cpu_s']} CPU-s + {f2b['children_cpu_s']} in ban commands; {f2b['wall_s']} s wall; "
              f"Total failed {f2b['total_failed']:,})")  # fmt: skip
    elif f2b:
        print(f"  fail2ban-server: {f2b.get('skipped')}")
    for key in ("agent_sshd.conf", "agent_native"):
        prof = result.get(key, {}).get("profile")
        if prof:
            print(f"  where {key}'s time goes (share of busy samples under each frame):")
            for name, share in prof:
                print(f"    {share:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
