#!/usr/bin/env python3
"""The alliance at volume: what users run, at the sizes real alliances see.

    python bench/volume.py [--json] [--only import,big,reports,flow,agent,nft] [--members 10]

Every figure is measured on the path a user runs — ``shieldwall council``, ``shieldwall
agent`` and ``shieldwall decisions import`` as processes on this machine, a load process
sending signed reports over HTTP — and printed beside its target:

import   100k addresses imported with ``shieldwall decisions import``: in the council's log
         (the command returns) < 1 s; applied at every one of 10 members (``log`` enforcer)
         < 2 s, both from the command's start
nft      the same 100k in a member's real nftables set (a network namespace; root) < 3 s,
         and 100k decisions applied by the nftables enforcer in one batch < 1 s
big      1M imported: time < 20 s, council peak RSS < 1.5 GB, agent peak RSS < 600 MB
reports  200 members (one load process) sending signed reports, one alert each, as fast as
         the council takes them: ≥ 5,000 decisions/s, p99 propagation to 50 members < 250 ms
flow     1,000 decisions/s offered: p99 propagation to 50 members < 100 ms
agent    an agent's log throughput with 100k active decisions against none (same log, same
         run): ratio ≥ 0.9

Propagation is from the moment the load process sends a report to the moment a member's
stream delivers the decision (50 members' streams followed by one watcher process, each
signed as its member): what the council's fan-out costs. ``bench/propagation.py`` measures
the whole path through real agents and their log files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from shieldwall.loopback.alliance import LocalAlliance, failed_password, percentile

SAFE_FIRST = [o for o in range(1, 224) if o not in (0, 10, 100, 127, 169, 172, 192)]


def address(i: int) -> str:
    """The i-th of 2²⁴·len(SAFE_FIRST) distinct public IPv4 addresses (none protected)."""
    first = SAFE_FIRST[(i >> 24) % len(SAFE_FIRST)]
    rest = i & 0xFFFFFF
    return f"{first}.{rest >> 16}.{(rest >> 8) & 255}.{rest & 255}"


def scattered(i: int) -> str:
    """The i-th of distinct public IPv4 addresses each alone in its /24: attackers as a
    flood of reports brings them, none a range the treaty would sanction (five decided
    sources in one /24 ban the range, and what follows there is a duplicate)."""
    return address((i >> 16) << 24 | (i & 0xFFFF) << 8 | 1)


def write_list(path: Path, n: int, start: int = 0) -> None:
    with path.open("w") as out:
        out.write("# shieldwall bench list\n")
        for i in range(start, start + n):
            out.write(address(i) + "\n")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_adds(data: bytes) -> int:
    """Additions in complete lines of a ``log`` enforcer's file."""
    return data.count(b'"op":"add"')


def nft_blocked(data: bytes) -> int:
    """Additions the nftables enforcer reports, in complete lines of an agent's log: each
    ``nft.applied`` line is written after libnftables returned success for its batch."""
    return sum(int(m) for m in re.findall(rb"nft\.applied\S* blocked=(\d+)", data))


class Applied:
    """Counts what members applied, from files they append to (their ``log`` enforcer's by
    default), reading only what was appended since the last poll."""

    def __init__(self, paths: list[Path], count: Callable[[bytes], int] = log_adds) -> None:
        self.paths = paths
        self.count = count
        self.offsets = [p.stat().st_size if p.exists() else 0 for p in paths]
        self.counts = [0] * len(paths)

    def poll(self) -> list[int]:
        for i, p in enumerate(self.paths):
            if not p.exists():
                continue
            with p.open("rb") as f:
                f.seek(self.offsets[i])
                data = f.read()
            cut = data.rfind(b"\n") + 1
            self.offsets[i] += cut
            self.counts[i] += self.count(data[:cut])
        return self.counts

    def wait(self, n: int, timeout: float) -> float | None:
        """Seconds (wall clock) when every file had ``n`` adds, None if not in time."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if min(self.poll(), default=n) >= n:
                return time.time()
            time.sleep(0.01)
        return None


def run_import(alliance: LocalAlliance, path: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    """``shieldwall decisions import`` as a user runs it; (wall seconds, its --json summary)."""
    config = alliance.root / "council" / "council.toml"  # type: ignore[operator]
    cmd = [sys.executable, "-m", "shieldwall", "decisions", "import", str(path), "--json"]
    t0 = time.time()
    done = subprocess.run(
        [*cmd, "--config", str(config), *extra], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"import failed: {done.stderr}")
    return t0, json.loads(done.stdout)


def target(value: float | None, limit: float, *, above: bool = False) -> str:
    if value is None:
        return "not reached"
    ok = value >= limit if above else value < limit
    return "met" if ok else "NOT met"


# -- import: 100k at the council and at 10 members --------------------------------------


def bench_import(n: int, members: int, root: Path) -> dict[str, Any]:
    listing = root / "100k.txt"
    write_list(listing, n)
    with LocalAlliance(n_members=members, root=root / "import") as alliance:
        files = [m.enforce_log for m in alliance.members]
        applied = Applied(files)
        t0, summary = run_import(alliance, listing)
        logged = time.time()
        at_members = applied.wait(n, 120)
        council_rss = peak_rss_mb(alliance.council_proc.pid)  # type: ignore[union-attr]
        agent_rss = max((peak_rss_mb(m.proc.pid) for m in alliance.members if m.proc), default=0)
    return {
        "n": n,
        "members": members,
        "added": summary["added"],
        "council_log_s": round(logged - t0, 3),
        "all_members_s": None if at_members is None else round(at_members - t0, 3),
        "council_rss_mb": round(council_rss),
        "agent_rss_mb": round(agent_rss),
    }


# -- big: 1M ------------------------------------------------------------------------------


def bench_big(n: int, root: Path) -> dict[str, Any]:
    listing = root / "1m.txt"
    write_list(listing, n, start=10_000_000)
    with LocalAlliance(n_members=1, root=root / "big") as alliance:
        applied = Applied([alliance.members[0].enforce_log])
        t0, summary = run_import(alliance, listing)
        logged = time.time()
        at_member = applied.wait(n, 600)
        council = alliance.council_proc.pid  # type: ignore[union-attr]
        agent = alliance.members[0].proc.pid  # type: ignore[union-attr]
        out = {
            "n": n,
            "added": summary["added"],
            "council_log_s": round(logged - t0, 2),
            "member_s": None if at_member is None else round(at_member - t0, 2),
            "council_rss_mb": round(peak_rss_mb(council)),
            "agent_rss_mb": round(peak_rss_mb(agent)),
            "council_cpu_s": round(cpu_seconds(council), 1),
        }
    return out


# -- reports: signed reports from 200 members, followed by 50 ------------------------------

WATCHER = r"""
# 50 members' streams in one process: the time each decision's event reaches each of them.
# The 50 stand for 50 hosts, each with its own CPU, but here they share the council's two
# cores: each stream is read over a raw socket and only the scopes are picked out of its
# batches, so that reading them costs little beside what the council spends sending them.
import asyncio, json, sys, time
from datetime import UTC, datetime
import msgspec
from shieldwall.wire.signing import sign_request
url, keys = sys.argv[1], json.loads(sys.stdin.readline())
host, port = url.removeprefix("http://").rsplit(":", 1)
seen = {}
batch = msgspec.json.Decoder(dict)
async def follow(name, key):
    got = seen.setdefault(name, {})
    reader, writer = await asyncio.open_connection(host, int(port))
    target = "/v1/decisions/stream"
    signed = sign_request(key, "GET", target, datetime.now(UTC))
    writer.write((f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
                  f"X-Shieldwall-Member: {name}\r\n"
                  + "".join(f"{k}: {v}\r\n" for k, v in signed.items()) + "\r\n").encode())
    status = await reader.readline()
    assert b" 200 " in status, status
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    buf = b""
    while True:
        size = int((await reader.readline()).strip() or b"0", 16)  # chunked framing
        if size == 0:
            return
        buf += await reader.readexactly(size)
        await reader.readexactly(2)
        *messages, buf = buf.split(b"\n\n")
        now = time.time()
        for message in messages:
            if b"event: batch" not in message:
                continue
            data = message[message.index(b"data: ") + 6:]
            for event in batch.decode(data)["events"]:
                got.setdefault(event[3], now)
async def main():
    tasks = [asyncio.create_task(follow(n, k)) for n, k in keys.items()]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for t in tasks:
        if t.done() and t.exception() is not None:
            print("watcher:", repr(t.exception()), file=sys.stderr)
        t.cancel()
    print(json.dumps(seen), flush=True)
asyncio.run(main())
"""


def enroll(alliance: LocalAlliance, names: list[str], trust: str = "member") -> dict[str, str]:
    from shieldwall.wire.signing import generate

    keys = {}
    for name in names:
        private, public = generate()
        body = {"name": name, "public_key": public, "trust": trust}
        r = alliance.operator("POST", "/v1/members", body)
        if r.status_code != 201:
            raise RuntimeError(r.text)
        keys[name] = private
    return keys


class _Member:
    """One simulated member: a kept-alive HTTP/1.1 connection that POSTs signed reports.

    The load is one process standing for 200 members, so it must cost far less per report
    than the council does: httpx spends about 1.5 ms of CPU on a request, which would cap
    the load at a few hundred reports per second. This writes the request bytes itself
    (what ``CouncilClient.send_report`` sends: the same body, signature and headers)."""

    def __init__(self, host: str, port: int, name: str, key: str) -> None:
        from shieldwall.wire import signing

        self.host, self.port, self.name = host, port, name
        self.key = signing.signing_key(key)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def report(self, alerts: list[Any]) -> dict[str, Any]:
        from shieldwall.wire import signing
        from shieldwall.wire.messages import Report, encode

        body = encode(Report(id=uuid.uuid4().hex, member=self.name,
                             sent_at=datetime.now(UTC), alerts=alerts))  # fmt: skip
        head = (
            f"POST /v1/reports HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: application/json\r\nUser-Agent: shieldwall-agent\r\n"
            f"X-Shieldwall-Signature: {signing.sign(self.key, body)}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await self.reader.readexactly(length)
        if b" 200 " not in status_line:
            raise RuntimeError(f"report refused: {status_line!r} {answer[:200]!r}")
        out: dict[str, Any] = json.loads(answer)
        return out

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _load(
    url: str, keys: dict[str, str], rate: float | None, seconds: float, offset: int
) -> tuple[dict[str, float], int, int, float]:
    """Send one-alert reports for ``seconds`` (at ``rate`` per second, or as fast as the
    council answers, one in flight per member); returns decided source → send time, reports
    sent, decisions, elapsed."""
    from shieldwall.wire.messages import WireAlert

    host, port = url.removeprefix("http://").rsplit(":", 1)
    members = [_Member(host, int(port), n, k) for n, k in keys.items()]
    sent: dict[str, float] = {}
    decided = reports = 0
    counter = iter(range(offset, offset + 10_000_000))
    t0 = time.time()
    end = t0 + seconds

    async def one(member: _Member) -> None:
        nonlocal decided, reports
        source = scattered(next(counter))
        now = datetime.now(UTC)
        alert = WireAlert(rule="sshd", source=source, first=now, last=now, count=5)
        at = time.time()
        out = await member.report([alert])
        reports += 1
        if out.get("decided"):  # only a decided source travels to the members
            sent[source] = at
            decided += len(out["decided"])

    if rate is None:

        async def worker(member: _Member) -> None:
            while time.time() < end:
                await one(member)

        await asyncio.gather(*(worker(m) for m in members))
    else:
        # at most one report in flight per member (an agent sends one at a time): a member
        # whose previous report is still out waits its turn
        queues: list[asyncio.Queue[None]] = [asyncio.Queue() for _ in members]

        async def paced(member: _Member, queue: asyncio.Queue[None]) -> None:
            while True:
                await queue.get()
                await one(member)
                queue.task_done()

        tasks = [asyncio.create_task(paced(m, q)) for m, q in zip(members, queues, strict=True)]
        i = 0
        while (now := time.time()) < end:
            due = int((now - t0) * rate)
            while i < due:
                queues[i % len(queues)].put_nowait(None)
                i += 1
            await asyncio.sleep(0.002)
        await asyncio.gather(*(q.join() for q in queues))
        for t in tasks:
            t.cancel()
    elapsed = time.time() - t0
    await asyncio.gather(*(m.close() for m in members))
    return sent, reports, decided, elapsed


def bench_reports(root: Path, rate: float | None, seconds: float, name: str) -> dict[str, Any]:
    with LocalAlliance(n_members=0, root=root / name) as alliance:
        # trusted: the treaty's blast radius lets each cause 1,000 decisions an hour (a
        # member's 100 would cap the 200 at 20,000, and later reports would decide nothing)
        senders = enroll(alliance, [f"load-{i}" for i in range(200)], trust="trusted")
        followers = enroll(alliance, [f"member-{i}" for i in range(50)])
        watcher = subprocess.Popen(
            [sys.executable, "-c", WATCHER, alliance.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert watcher.stdin is not None
        assert watcher.stdout is not None
        watcher.stdin.write(json.dumps(followers) + "\n")
        watcher.stdin.flush()
        assert watcher.stdout.readline().strip() == "ready"
        alliance.wait_streams(50)
        council = alliance.council_proc.pid  # type: ignore[union-attr]
        cpu0, watch0, load0 = cpu_seconds(council), cpu_seconds(watcher.pid), time.process_time()
        sent, reports, decided, elapsed = asyncio.run(
            _load(alliance.url, senders, rate, seconds, 0)
        )
        cpu = cpu_seconds(council) - cpu0
        watch_cpu, load_cpu = cpu_seconds(watcher.pid) - watch0, time.process_time() - load0
        time.sleep(2)  # the last decisions reach the streams
        watcher.stdin.write("\n")
        watcher.stdin.flush()
        seen: dict[str, dict[str, float]] = json.loads(watcher.stdout.readline())
        watcher.wait(10)
    lat = [(got[s] - sent[s]) * 1000 for got in seen.values() for s in sent if s in got]
    missing = sum(1 for got in seen.values() for s in sent if s not in got)
    # a decision that never reached a member counts as arriving never: with more than 1 %
    # missing, the p99 is not reached
    ranked = lat + [float("inf")] * missing
    return {
        "rate_offered": rate,
        "seconds": round(elapsed, 1),
        "reports": reports,
        "decisions": decided,
        "decisions_per_s": round(decided / elapsed),
        "council_cpu_per_s": round(cpu / elapsed, 2),
        # the same two cores run the load (200 members) and the 50 members' streams
        "load_cpu_per_s": round(load_cpu / elapsed, 2),
        "watchers_cpu_per_s": round(watch_cpu / elapsed, 2),
        "members": len(seen),
        "deliveries": len(lat),
        "missing": missing,
        "p50_ms": round(percentile(ranked, 50), 1),
        "p99_ms": round(percentile(ranked, 99), 1),
        "max_ms": round(max(lat), 1) if lat else None,
    }


# -- agent: log throughput with 100k active ------------------------------------------------


def _sshd_log(path: Path, n: int) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC) - timedelta(seconds=n // 1000)
    attackers = [address(50_000_000 + i) for i in range(5000)]
    with path.open("w") as out:
        for i in range(n):
            t = now + timedelta(milliseconds=i)
            if rng.random() < 0.4:
                out.write(failed_password(t, "web1", rng.choice(attackers), port=40000 + i % 20000))
            else:
                out.write(
                    f"{t:%b} {t.day:2d} {t:%H:%M:%S} web1 sshd[{1000 + i % 5000}]: "
                    f"Connection closed by {rng.choice(attackers)} port {50000 + i % 9999}\n"
                )


def _agent_cpu(alliance: LocalAlliance, log: Path, lines: int, timeout: float = 600) -> float:
    """Append ``log`` to a member's watched file at once; the agent's CPU seconds until it
    has read every line."""
    m = alliance.members[0]
    pid = m.proc.pid  # type: ignore[union-attr]
    cpu0 = cpu_seconds(pid)
    with m.log.open("ab") as out, log.open("rb") as src:
        shutil.copyfileobj(src, out)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if m.counter("lines.read") >= lines:
            return cpu_seconds(pid) - cpu0
        time.sleep(0.05)
    raise RuntimeError("the agent did not read the log in time")


def bench_agent(root: Path, n_active: int, lines: int) -> dict[str, Any]:
    log = root / "sshd.log"
    _sshd_log(log, lines)
    out: dict[str, Any] = {"lines": lines, "active": n_active}
    for label, active in (("none", 0), ("active", n_active)):
        with LocalAlliance(n_members=1, root=root / f"agent-{label}", poll_interval=0.05) as a:
            if active:
                listing = root / "active.txt"
                write_list(listing, active, start=20_000_000)
                applied = Applied([a.members[0].enforce_log])  # before: none may be missed
                run_import(a, listing)
                if applied.wait(active, 300) is None:
                    raise RuntimeError(f"the member did not apply the {active:,} decisions")
            cpu = _agent_cpu(a, log, lines)
        out[f"cpu_s_{label}"] = round(cpu, 2)
        out[f"lines_per_cpu_s_{label}"] = round(lines / cpu)
    out["ratio"] = round(out["lines_per_cpu_s_active"] / out["lines_per_cpu_s_none"], 3)
    return out


# -- nftables ------------------------------------------------------------------------------


def bench_nft(root: Path, n: int) -> dict[str, Any]:
    """The enforcer alone (one batch of n new decisions) and the whole path (an agent in a
    network namespace following a council on the host's side of a veth pair)."""
    if os.geteuid() != 0 or shutil.which("nft") is None:
        return {"skipped": "needs root and nft (a network namespace is created)"}
    ns = f"swbench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        code = (
            "import asyncio, time, sys\n"
            "from shieldwall.blocklist import Diff\n"
            "from shieldwall.enforce.nftables import NftEnforcer\n"
            "from shieldwall.net import Net\n"
            f"n = {n}\n"
            "now = time.time()\n"
            "diff = Diff({Net(((1 << 24) + i) << 8 | 32): now + 3600 for i in range(n)})\n"
            "e = NftEnforcer('swbench')\n"
            "asyncio.run(e.sync({}, now))\n"
            "t = time.perf_counter(); asyncio.run(e.apply(diff, now)); el = time.perf_counter() - t\n"
            "held = len(e.list_elements()['addr4'])\n"
            "print(el, held, e.backend)\n"
        )
        done = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
        )
        el, held, backend = done.stdout.split()
        out: dict[str, Any] = {
            "n": n,
            "enforcer_batch_s": round(float(el), 3),
            "held": int(held),
            "backend": backend,
        }
        out.update(_nft_whole_path(root, ns, n))
        return out
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


# the veth pair's ends: a /30 no interface of this host uses (checked before it is added)
HOST_END, NS_END = "10.254.254.1", "10.254.254.2"


def _nft_whole_path(root: Path, ns: str, n: int) -> dict[str, Any]:
    """A council on the host's end of a veth pair, an agent (nftables enforcer) inside the
    namespace: from the import command's start to the n elements in the agent's set."""
    host_if, ns_if = f"swh{ns[-6:]}", f"swn{ns[-6:]}"
    taken = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True)
    if "10.254.254." in taken.stdout:
        raise RuntimeError("10.254.254.0/30 is in use on this host: the veth pair needs it")
    subprocess.run(
        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if], check=True
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run(["ip", "link", "set", ns_if, "netns", ns], check=True)
        subprocess.run(["ip", "addr", "add", f"{HOST_END}/30", "dev", host_if], check=True)
        subprocess.run(["ip", "link", "set", host_if, "up"], check=True)
        for args in (["addr", "add", f"{NS_END}/30", "dev", ns_if], ["link", "set", ns_if, "up"],
                     ["link", "set", "lo", "up"]):  # fmt: skip
            subprocess.run(["ip", "-n", ns, *args], check=True)
        port = 18000 + random.randint(0, 999)
        url = f"http://{HOST_END}:{port}"
        cdir = root / "nft" / "council"
        cdir.mkdir(parents=True)
        (cdir / "council.toml").write_text(f'data-dir = "data"\nlisten = "{HOST_END}:{port}"\n')
        with open(cdir / "council.log", "ab") as err:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "shieldwall", "council", "--config", str(cdir / "council.toml")],
                stderr=err, stdout=subprocess.DEVNULL,
            ))  # fmt: skip
        _wait(lambda: httpx.get(f"{url}/v1/health", timeout=1).status_code == 200, 20)
        token = (cdir / "data" / "operator.token").read_text().strip()
        from shieldwall.wire.signing import generate

        private, public = generate()
        httpx.post(f"{url}/v1/members", json={"name": "nft1", "public_key": public},
                   headers={"Authorization": f"Bearer {token}"}).raise_for_status()  # fmt: skip
        mdir = root / "nft" / "nft1"
        mdir.mkdir()
        (mdir / "member.key").write_text(private + "\n")
        (mdir / "auth.log").touch()
        (mdir / "agent.toml").write_text(
            f'member = "nft1"\nkey-file = "member.key"\ncouncil = "{url}"\nstate-dir = "state"\n'
            f'[[watch]]\npath = "auth.log"\nrules = ["sshd"]\n'
            f'[[enforcer]]\nkind = "nftables"\ntable = "swbench"\n'
        )
        with open(mdir / "agent.log", "ab") as err:
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "shieldwall", "agent",
                 "--config", str(mdir / "agent.toml")],
                stderr=err, stdout=subprocess.DEVNULL,
            ))  # fmt: skip
        _wait(lambda: _nft_count(ns) == 0, 30)
        time.sleep(0.5)
        listing = root / "nft" / "list.txt"
        write_list(listing, n, start=30_000_000)
        # polling `nft list` would cost 0.5 s of CPU per look at 100k elements: watch the
        # agent's log instead, then count the kernel's set once
        applied = Applied([mdir / "agent.log"], nft_blocked)
        t0 = time.time()
        cmd = [sys.executable, "-m", "shieldwall", "decisions", "import", str(listing),
               "--council", url, "--token", token]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        imported = time.time()
        done_at = applied.wait(n, 120)
        held = _nft_count(ns)
        if done_at is None or held < n:
            raise RuntimeError(f"the member's set holds {held} of {n}")
        return {"whole_path_s": round(done_at - t0, 3), "import_s": round(imported - t0, 3),
                "held_in_set": held}  # fmt: skip
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["ip", "link", "del", host_if], check=False, capture_output=True)


def _nft_count(ns: str) -> int:
    done = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-j", "list", "set", "inet", "swbench", "addr4"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return -1
    for item in json.loads(done.stdout)["nftables"]:
        if "set" in item:
            return len(item["set"].get("elem", []))
    return 0


def _wait(check: Callable[[], bool], timeout: float, step: float = 0.1) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError, ValueError):
            pass
        time.sleep(step)
    raise RuntimeError("timed out")


# -- main ----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", default="import,nft,big,reports,flow,agent")
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=10.0, help="load duration for reports/flow")
    ap.add_argument("--lines", type=int, default=300_000, help="sshd log lines for the agent")
    args = ap.parse_args()
    only = set(args.only.split(","))
    root = Path(tempfile.mkdtemp(prefix="shieldwall-volume-"))
    results: dict[str, Any] = {}
    try:
        if "import" in only:
            results["import"] = bench_import(args.n, args.members, root)
        if "nft" in only:
            results["nft"] = bench_nft(root, args.n)
        if "big" in only:
            results["big"] = bench_big(args.big, root)
        if "reports" in only:
            results["reports"] = bench_reports(root, None, args.seconds, "reports")
        if "flow" in only:
            results["flow"] = bench_reports(root, 1000.0, args.seconds, "flow")
        if "agent" in only:
            results["agent"] = bench_agent(root, args.n, args.lines)
    finally:
        if not os.environ.get("SHIELDWALL_KEEP"):
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(results))
        return 0
    report(results, args)
    return 0


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"shieldwall at volume (this machine: {os.cpu_count()} cores)")
    if "import" in r:
        i = r["import"]
        print(f"  import {i['n']:,} addresses (shieldwall decisions import):")
        print(f"    in the council's log        {i['council_log_s']:.2f} s   target < 1 s: "
              f"{target(i['council_log_s'], 1)}")  # fmt: skip
        print(f"    applied at all {i['members']} members   {i['all_members_s']} s   target < 2 s: "
              f"{target(i['all_members_s'], 2)}")  # fmt: skip
        print(f"    peak RSS: council {i['council_rss_mb']} MB, agent {i['agent_rss_mb']} MB")
    if "nft" in r:
        n = r["nft"]
        if "skipped" in n:
            print(f"  nftables: skipped ({n['skipped']})")
        else:
            print(f"  nftables, {n['n']:,} decisions:")
            print(f"    one batch (enforcer, {n['backend']})  {n['enforcer_batch_s']:.3f} s   "
                  f"target < 1 s: {target(n['enforcer_batch_s'], 1)}  (libnftables floor 0.32 s)")  # fmt: skip
            print(f"    imported → in a member's set   {n['whole_path_s']:.2f} s   target < 3 s: "
                  f"{target(n['whole_path_s'], 3)}  (the import command took {n['import_s']:.2f} s; "
                  f"{n['held_in_set']:,} in the set)")  # fmt: skip
    if "big" in r:
        b = r["big"]
        print(f"  import {b['n']:,}: council's log {b['council_log_s']} s (target < 20 s: "
              f"{target(b['council_log_s'], 20)}), at the member {b['member_s']} s; peak RSS "
              f"council {b['council_rss_mb']} MB (< 1500: {target(b['council_rss_mb'], 1500)}), "
              f"agent {b['agent_rss_mb']} MB (< 600: {target(b['agent_rss_mb'], 600)})")  # fmt: skip
    for key, title, limit in (("reports", "signed reports, as fast as taken", 250),
                              ("flow", "1,000 decisions/s offered", 100)):  # fmt: skip
        if key in r:
            x = r[key]
            print(f"  {title} (200 members → council → 50 members' streams, {x['seconds']} s):")
            print(f"    {x['decisions_per_s']:,} decisions/s ({x['decisions']:,} decided of "
                  f"{x['reports']:,} reports; CPU-s/s: "
                  f"council {x['council_cpu_per_s']}, load {x['load_cpu_per_s']}, the 50 "
                  f"streams' reader {x['watchers_cpu_per_s']})" + (
                      f"   target ≥ 5,000: {target(x['decisions_per_s'], 5000, above=True)}"
                      if key == "reports" else ""))  # fmt: skip
            print(f"    propagation p50 {x['p50_ms']} ms  p99 {x['p99_ms']} ms  max {x['max_ms']} ms"
                  f"  ({x['deliveries']:,} deliveries, {x['missing']} missing)   "
                  f"target p99 < {limit} ms: {target(x['p99_ms'], limit)}")  # fmt: skip
    if "agent" in r:
        a = r["agent"]
        print(f"  agent, {a['lines']:,}-line sshd log: {a['lines_per_cpu_s_none']:,} lines/CPU-s with "
              f"no decision, {a['lines_per_cpu_s_active']:,} with {a['active']:,} active: ratio "
              f"{a['ratio']}   target ≥ 0.9: {target(a['ratio'], 0.9, above=True)}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
