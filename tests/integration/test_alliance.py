"""A council and agents as real processes on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from shieldwall.agent.state import AgentState
from shieldwall.loopback.alliance import LocalAlliance, Member, failed_password
from shieldwall.wire import signing
from shieldwall.wire.messages import Report, WireAlert, encode

pytestmark = pytest.mark.slow


def enforced_set(m: Member) -> set[str]:
    """Replay a member's log enforcer records: what it blocks now."""
    now = time.time()
    blocked: dict[str, float] = {}
    for rec in m.applied():
        if rec["op"] == "sync":
            blocked = {s: float("inf") for s in rec["scopes"]}
        elif rec["op"] == "add":
            blocked[rec["scope"]] = rec["expires"]
        elif rec["op"] == "remove":
            blocked.pop(rec["scope"], None)
    return {s for s, exp in blocked.items() if exp > now}


def wait_for(pred, timeout: float = 15.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def alliance(tmp_path: Path):  # type: ignore[no-untyped-def]
    a = LocalAlliance(n_members=3, root=tmp_path / "alliance")
    a.start()
    try:
        yield a
    finally:
        a.stop()


def test_attack_on_one_member_is_blocked_by_all(alliance: LocalAlliance) -> None:
    first = alliance.members[0]
    t0 = alliance.attack(first, "203.0.113.77", 5)
    applied = alliance.wait_applied("203.0.113.77", alliance.members)
    assert set(applied) == {m.name for m in alliance.members}
    assert all(at >= t0 - 0.001 for at in applied.values())
    active = alliance.active()["decisions"]
    assert [(d["scope"], d["member"], d["rule"]) for d in active] == [
        ("203.0.113.77", "member-1", "sshd")
    ]
    # four failures are below the bucket: nobody blocks 203.0.113.78
    alliance.attack(first, "203.0.113.78", 4)
    time.sleep(0.5)
    assert all("203.0.113.78" not in enforced_set(m) for m in alliance.members)


def test_forged_report_is_refused_and_decides_nothing(alliance: LocalAlliance) -> None:
    forger_key, _ = signing.generate()
    now = datetime.now(UTC)
    body = encode(
        Report(
            id=uuid.uuid4().hex,
            member="member-2",
            sent_at=now,
            alerts=[WireAlert(rule="sshd", source="203.0.113.99", first=now, last=now, count=5)],
        )
    )
    r = httpx.post(
        f"{alliance.url}/v1/reports",
        content=body,
        headers={"X-Shieldwall-Signature": signing.sign(signing.signing_key(forger_key), body)},
    )
    assert r.status_code == 401
    assert r.json()["error"] == "bad-signature"
    assert alliance.active()["decisions"] == []
    assert alliance.stats()["reports.refused.bad-signature"] == 1
    time.sleep(0.3)
    assert all("203.0.113.99" not in enforced_set(m) for m in alliance.members)


def test_restarted_member_converges_to_the_councils_active_set(
    alliance: LocalAlliance,
) -> None:
    first, _, third = alliance.members
    alliance.attack(first, "203.0.113.1", 5)
    alliance.wait_applied("203.0.113.1", alliance.members)
    alliance.stop_agent(third, kill=True)  # kill -9 mid-stream
    # while it is away: new decisions, an unban, an operator ban
    alliance.attack(first, "203.0.113.2", 5)
    alliance.attack(first, "203.0.113.3", 5)
    wait_for(lambda: len(alliance.active()["decisions"]) == 3, what="3 decisions")
    assert (
        alliance.operator("POST", "/v1/decisions/revoke", {"scope": "203.0.113.1"}).status_code
        == 200
    )
    assert (
        alliance.operator(
            "POST", "/v1/decisions", {"scope": "203.0.113.128/25", "duration": 3600}
        ).status_code
        == 201
    )
    state = AgentState(str(third.dir / "state"))
    seq_before, _ = state.view()
    state.close()
    assert seq_before >= 1
    alliance.start_agent(third)
    council = alliance.active()
    want = {d["scope"] for d in council["decisions"]}
    assert want == {"203.0.113.2", "203.0.113.3", "203.0.113.128/25"}
    wait_for(lambda: enforced_set(third) == want, what="member-3 to converge")

    def view_ids() -> set[str]:
        st = AgentState(str(third.dir / "state"))
        try:
            seq, claims = st.view()
            now = datetime.now(UTC).timestamp()
            if seq != council["seq"]:
                return set()
            return {i for i, _, expires in claims if expires > now}
        finally:
            st.close()

    wait_for(
        lambda: view_ids() == {d["id"] for d in council["decisions"]},
        what="member-3's view to equal the council's",
    )
    # it resumed from its own sequence number, not from a fresh snapshot
    after_restart = (third.dir / "agent.log").read_text().split("agent.started")[-1]
    assert f"stream.connected since={seq_before}" in after_restart
    assert "stream.snapshot" not in after_restart


def test_reports_wait_on_disk_while_the_council_is_down(alliance: LocalAlliance) -> None:
    first, second, _ = alliance.members
    alliance.stop_council()
    alliance.attack(first, "203.0.113.50", 5)
    # local ban at once, without the council
    wait_for(lambda: "203.0.113.50" in enforced_set(first), what="local ban")
    state = AgentState(str(first.dir / "state"))
    wait_for(lambda: state.outbox_size() == 1, what="report kept in the outbox")
    state.close()
    alliance.start_council()
    applied = alliance.wait_applied("203.0.113.50", [second], timeout=20)
    assert second.name in applied
    state = AgentState(str(first.dir / "state"))
    wait_for(lambda: state.outbox_size() == 0, what="outbox drained")
    assert state.counters()["reports.sent"] == 1
    state.close()


def test_kill_9_and_rotation_lose_and_double_count_nothing(tmp_path: Path) -> None:
    """Lines are written while the agent is killed with SIGKILL and the log rotates by
    rename and by copytruncate; in the end every line was read exactly once."""
    with LocalAlliance(n_members=1, root=tmp_path / "a") as alliance:
        m = alliance.members[0]
        written = 0
        sources = iter(range(1, 10**6))

        def write(n: int) -> None:
            nonlocal written
            with m.log.open("a") as f:
                for _ in range(n):
                    i = next(sources)
                    src = f"198.18.{i // 250 % 250}.{i % 250 + 1}"
                    f.write(failed_password(datetime.now(UTC), m.name, src, user=f"u{i}"))
                    written += 1

        def counters() -> dict[str, int]:
            st = AgentState(str(m.dir / "state"))
            try:
                return st.counters()
            finally:
                st.close()

        for round_ in range(6):
            write(400)
            time.sleep(0.05 * (round_ % 3))
            alliance.stop_agent(m, kill=True)
            write(100)
            if round_ == 1:  # rotate by rename while the agent is down
                os.rename(m.log, m.log.with_suffix(".log.1"))
                write(50)
            if round_ == 3:  # copytruncate, after the agent had read everything
                alliance.start_agent(m)
                wait_for(lambda: counters().get("lines.read", 0) == written, what="catch-up")
                alliance.stop_agent(m, kill=True)
                data = m.log.read_bytes()
                (m.dir / "auth.log.2").write_bytes(data)
                with m.log.open("r+b") as f:
                    f.truncate(0)
                write(30)
            alliance.start_agent(m)
        write(10)
        wait_for(lambda: counters().get("lines.read", 0) >= written, what="all lines read")
        time.sleep(0.3)
        c = counters()
        assert c["lines.read"] == written
        assert c.get("hits", 0) == written


def test_cli_round_trip(alliance: LocalAlliance, tmp_path: Path) -> None:
    cfg = alliance.root / "council" / "council.toml"  # type: ignore[operator]

    def sw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shieldwall", *args, "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    r = sw("ban", "203.0.113.200", "--duration", "1h", "--reason", "manual", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["scope"] == "203.0.113.200"
    r = sw("ban", "127.0.0.1")
    assert r.returncode != 0
    assert "protected:loopback" in r.stderr
    r = sw("decisions", "list", "--json")
    assert [d["scope"] for d in json.loads(r.stdout)["decisions"]] == ["203.0.113.200"]
    alliance.wait_applied("203.0.113.200", alliance.members)
    r = sw("unban", "203.0.113.200")
    assert r.returncode == 0, r.stderr
    wait_for(
        lambda: all("203.0.113.200" not in enforced_set(m) for m in alliance.members),
        what="unban to reach every member",
    )
    r = sw("members", "list", "--json")
    assert {m["name"] for m in json.loads(r.stdout)} == {"member-1", "member-2", "member-3"}
    r = sw("members", "revoke", "member-3")
    assert r.returncode == 0
    r = sw("stats", "--json")
    assert json.loads(r.stdout)["members.revoked"] == 1
