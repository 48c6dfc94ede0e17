"""A whole alliance on loopback: one council and N member agents as separate processes.

Used by ``shieldwall demo``, the live drill, the benchmarks and the integration tests. It
only starts processes on 127.0.0.1 in a temporary directory; nothing needs root.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from shieldwall.wire.signing import generate, public_from_private

ATTACKER = "203.0.113.77"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def syslog_line(when: datetime, host: str, message: str, pid: int = 4242) -> str:
    return f"{when:%b} {when.day:2d} {when:%H:%M:%S} {host} sshd[{pid}]: {message}\n"


def failed_password(
    when: datetime, host: str, source: str, user: str = "root", port: int = 50022
) -> str:
    return syslog_line(when, host, f"Failed password for {user} from {source} port {port} ssh2")


@dataclass
class Member:
    name: str
    dir: Path
    config: Path
    log: Path
    enforce_log: Path
    public_key: str
    proc: subprocess.Popen[bytes] | None = None

    def applied(self) -> list[dict[str, Any]]:
        if not self.enforce_log.exists():
            return []
        out = []
        for line in self.enforce_log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def counter(self, name: str) -> int:
        """One of the agent's counters as its database holds it (0 before it is written),
        read without disturbing the running agent."""
        try:
            db = sqlite3.connect(f"file:{self.dir / 'state' / 'agent.db'}?mode=ro", uri=True)
            try:
                row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            return 0
        return int(row[0]) if row else 0

    def applied_at(self, scope: str) -> float | None:
        for rec in self.applied():
            if rec.get("op") == "add" and rec.get("scope") == scope:
                return float(rec["at"])
            if rec.get("op") == "sync" and scope in rec.get("scopes", []):
                return float(rec["at"])
        return None


@dataclass
class LocalAlliance:
    """Start with ``start()``, stop with ``stop()`` (or use as a context manager)."""

    n_members: int = 5
    root: Path | None = None
    poll_interval: float = 0.02
    enforcer: str = "log"
    treaty: str = ""
    members: list[Member] = field(default_factory=list)
    council_proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    token: str = ""
    _own_root: bool = False
    _handlers: dict[int, Any] = field(default_factory=dict)
    rules: tuple[str, ...] = ("sshd",)
    """The rules each agent's watch runs (shipped names or rule file paths)."""
    trust: str = ""
    """Trust level members are enrolled with; empty: the council's default."""
    tls_cert: str = ""
    tls_key: str = ""
    """The council serves HTTPS with this certificate chain and key (PEM files)."""
    ca: str = ""
    """The CA file agents and the operator verify the council's certificate with."""
    pin: bool = True
    """Agents are given the council's key (``council-key``); False: they pin it on first
    contact."""
    council_key: str = ""
    """The council's public key (read from its data-dir once it started)."""
    council_extra: str = ""
    """More council.toml lines (before its [treaty] table)."""

    def __enter__(self) -> LocalAlliance:
        try:
            self.start()
        except BaseException:
            self.stop()  # what started is stopped: no process outlives a failed start
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_cert else 'http'}://127.0.0.1:{self.port}"

    def _verify(self) -> Any:
        if not self.ca:
            return True
        from shieldwall.tls import client_context

        return client_context(self.ca)

    def _cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "shieldwall", *args]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _trap_signals(self) -> None:
        """SIGTERM and SIGHUP end the process the way Ctrl-C does (an exception, so that
        ``stop()`` runs): without it a killed demo leaves its council and agents running and
        its folder behind."""
        if threading.current_thread() is not threading.main_thread() or self._handlers:
            return

        def leave(signum: int, frame: object) -> None:
            raise SystemExit(128 + signum)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._handlers[sig] = signal.signal(sig, leave)

    def start(self) -> None:
        self._trap_signals()
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="shieldwall-demo-"))
            self._own_root = True
        self.root.mkdir(parents=True, exist_ok=True)
        self.start_council()
        for i in range(1, self.n_members + 1):
            self.add_member(f"member-{i}")
        for m in self.members:
            self.start_agent(m)
        self.wait_streams(self.n_members)

    def start_council(self) -> None:
        if self.root is None:
            raise RuntimeError("start() first")
        if not self.port:
            self.port = free_port()
        cdir = self.root / "council"
        cdir.mkdir(exist_ok=True)
        tls = f'tls-cert = "{self.tls_cert}"\ntls-key = "{self.tls_key}"\n' if self.tls_cert else ""
        (cdir / "council.toml").write_text(
            f'data-dir = "data"\nlisten = "127.0.0.1:{self.port}"\n{tls}{self.council_extra}\n'
            f"{self.treaty}\n"
        )
        with open(cdir / "council.log", "ab") as err:
            self.council_proc = subprocess.Popen(
                self._cmd(
                    "council", "--config", str(cdir / "council.toml"), "--log-level", "warning"
                ),
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=self._env(),
            )
        self._wait_health()
        self.token = (cdir / "data" / "operator.token").read_text().strip()
        private = (cdir / "data" / "council.key").read_text().strip()
        self.council_key = public_from_private(private)

    def _wait_health(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.council_proc is not None and self.council_proc.poll() is not None:
                raise RuntimeError("the council exited; see council/council.log")
            try:
                health = httpx.get(f"{self.url}/v1/health", timeout=1, verify=self._verify())
                if health.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the council did not answer in time")

    def stop_council(self, kill: bool = False) -> None:
        _stop(self.council_proc, kill)
        self.council_proc = None

    def operator(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.url}{path}",
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=self._verify(),
        )

    def add_member(self, name: str, *, enroll: bool = True) -> Member:
        if self.root is None:
            raise RuntimeError("start() first")
        mdir = self.root / name
        mdir.mkdir(exist_ok=True)
        private, public = generate()
        (mdir / "member.key").write_text(private + "\n")
        os.chmod(mdir / "member.key", 0o600)
        log = mdir / "auth.log"
        log.touch()
        enforce_log = mdir / "enforced.jsonl"
        enforcer = (
            f'[[enforcer]]\nkind = "log"\npath = "{enforce_log}"\n'
            if self.enforcer == "log"
            else '[[enforcer]]\nkind = "nftables"\n'
        )
        rules = ", ".join(json.dumps(r) for r in self.rules)
        config = mdir / "agent.toml"
        trust = (f'council-key = "{self.council_key}"\n' if self.pin else "") + (
            f'council-ca = "{self.ca}"\n' if self.ca else ""
        )
        config.write_text(
            f'member = "{name}"\nkey-file = "member.key"\ncouncil = "{self.url}"\n'
            f'state-dir = "state"\npoll-interval = {self.poll_interval}\n{trust}'
            f'[[watch]]\npath = "{log}"\nrules = [{rules}]\n{enforcer}'
        )
        m = Member(name, mdir, config, log, enforce_log, public)
        self.members.append(m)
        if enroll:
            body = {"name": name, "public_key": public}
            if self.trust:
                body["trust"] = self.trust
            resp = self.operator("POST", "/v1/members", body)
            if resp.status_code != 201:
                raise RuntimeError(f"enrolling {name}: {resp.status_code} {resp.text}")
        return m

    def start_agent(self, m: Member) -> None:
        with open(m.dir / "agent.log", "ab") as err:
            m.proc = subprocess.Popen(
                self._cmd("agent", "--config", str(m.config), "--log-level", "info"),
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=self._env(),
            )

    def stop_agent(self, m: Member, kill: bool = False) -> None:
        _stop(m.proc, kill)
        m.proc = None

    def stats(self) -> dict[str, int]:
        data: dict[str, int] = self.operator("GET", "/v1/stats").json()
        return data

    def wait_streams(self, n: int, timeout: float | None = None) -> None:
        """Until ``n`` agents follow the stream (by default 30 s, plus a second per agent:
        fifty start on two cores)."""
        deadline = time.monotonic() + (30.0 + n if timeout is None else timeout)
        while time.monotonic() < deadline:
            if self.stats().get("streams.live", 0) >= n:
                return
            for m in self.members:
                if m.proc is not None and m.proc.poll() is not None:
                    raise RuntimeError(f"{m.name}'s agent exited; see {m.dir / 'agent.log'}")
            time.sleep(0.05)
        raise RuntimeError(f"only {self.stats().get('streams.live')} of {n} agents connected")

    def active(self) -> dict[str, Any]:
        data: dict[str, Any] = self.operator("GET", "/v1/decisions").json()
        return data

    def attack(
        self, member: Member, source: str, attempts: int, gap: float = 0.0, echo: Any = None
    ) -> float:
        """Append ``attempts`` failed logins from ``source``; return the append time of the
        last one (wall clock, seconds)."""
        t = 0.0
        for i in range(attempts):
            line = failed_password(datetime.now(UTC), member.name, source, port=40000 + i)
            with member.log.open("a") as f:
                f.write(line)
                f.flush()
                t = time.time()
            if echo is not None:
                echo(line.rstrip("\n"))
            if gap and i < attempts - 1:
                time.sleep(gap)
        return t

    def wait_applied(
        self, scope: str, members: list[Member], timeout: float = 15.0
    ) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        seen: dict[str, float] = {}
        while time.monotonic() < deadline and len(seen) < len(members):
            for m in members:
                if m.name not in seen and (at := m.applied_at(scope)) is not None:
                    seen[m.name] = at
            time.sleep(0.005)
        return seen

    def stop(self) -> None:
        for sig in self._handlers:  # a second signal must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        for m in self.members:
            self.stop_agent(m)
        self.stop_council()
        if self._own_root and self.root is not None and not os.environ.get("SHIELDWALL_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)
        for sig, handler in self._handlers.items():
            signal.signal(sig, handler)
        self._handlers.clear()


def _stop(proc: subprocess.Popen[bytes] | None, kill: bool) -> None:
    if proc is None or proc.poll() is not None:
        return
    if kill:
        proc.kill()
    else:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


class _CouncilWatcher(threading.Thread):
    """Follows the council's stream as the operator to timestamp its decisions."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.decided: dict[str, float] = {}
        self.ready = threading.Event()

    def run(self) -> None:
        try:
            with httpx.stream(
                "GET",
                f"{self.url}/v1/decisions/stream",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=httpx.Timeout(5, read=None),
            ) as resp:
                event = ""
                for line in resp.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                        if event == "snapshot":
                            self.ready.set()
                    elif line.startswith("data:") and event == "batch":
                        now = time.time()
                        for _, kind, _, scope, _ in json.loads(line[5:])["events"]:
                            if kind == "add":
                                self.decided.setdefault(scope, now)
        except httpx.HTTPError:
            return


CouncilWatcher = _CouncilWatcher
"""Public name of the council stream follower (``decided``: scope → first ``add``, wall
time; ``ready`` is set once the snapshot arrived)."""
