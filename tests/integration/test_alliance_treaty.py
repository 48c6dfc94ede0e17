"""The treaty across real processes: sightings below every member's local threshold add up,
at the council, to a decision that every member enforces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shieldwall.loopback.alliance import LocalAlliance

pytestmark = pytest.mark.slow

SOURCE = "203.0.113.90"
TREATY = """
[treaty.alliance]
members = 3
attempts = 6
"""


def test_sightings_at_several_members_become_a_decision_every_member_enforces(
    tmp_path: Path,
) -> None:
    with LocalAlliance(n_members=4, root=tmp_path / "alliance", treaty=TREATY) as alliance:
        attacked = alliance.members[:3]
        for m in attacked:
            alliance.attack(m, SOURCE, 2)  # sshd's maxretry is 5: no member alerts
        applied = alliance.wait_applied(SOURCE, alliance.members, timeout=20)
        assert set(applied) == {m.name for m in alliance.members}
        (decision,) = alliance.active()["decisions"]
        assert (decision["scope"], decision["member"]) == (SOURCE, None)
        why = alliance.operator("GET", f"/v1/decisions/{decision['id']}/explain").json()
        assert why["evidence"]["clauses"] == ["alliance.threshold"]
        assert why["evidence"]["members"] == [m.name for m in attacked]
        stats = alliance.stats()
        assert stats["treaty.decided.alliance.threshold"] == 1
        assert "treaty.decided.article5.alert" not in stats

        # the operator's view of it, through the CLI
        cfg = str(alliance.root / "council" / "council.toml")  # type: ignore[operator]

        def sw(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "shieldwall", *args, "--config", cfg],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )

        r = sw("decisions", "explain", decision["id"], "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["evidence"]["clauses"] == ["alliance.threshold"]
        r = sw("decisions", "explain", decision["id"])
        assert "alliance.threshold" in r.stdout
        assert "member-1" in r.stdout
        r = sw("consult", "203.0.113.91", "--reason", "seen in a honeypot", "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["status"] == "consulting"
        r = sw("consult", "127.0.0.1")
        assert r.returncode != 0
        assert "protected:loopback" in r.stderr
        r = sw("audit", "--json")
        assert [a["action"] for a in json.loads(r.stdout)][-1] == "member.enroll"
        r = sw("members", "flags", "--json")
        assert json.loads(r.stdout) == []


def test_low_and_slow_across_fifty_real_agents(tmp_path: Path) -> None:
    """Issue 4's low-and-slow case with real processes: 50 members each see 2 failed logins
    from one source (below every local threshold: sshd's maxretry is 5) → the alliance, with
    its default thresholds, decides it, and all 50 members enforce it."""
    source = "203.0.113.150"
    with LocalAlliance(n_members=50, root=tmp_path / "fifty") as alliance:
        for m in alliance.members:
            alliance.attack(m, source, 2)
        applied = alliance.wait_applied(source, alliance.members, timeout=60)
        missing = sorted({m.name for m in alliance.members} - set(applied))
        assert missing == []
        (decision,) = alliance.active()["decisions"]
        assert decision["scope"] == source
        why = alliance.operator("GET", f"/v1/decisions/{decision['id']}/explain").json()
        assert why["evidence"]["clauses"] == ["alliance.threshold"]
        assert len(why["evidence"]["members"]) >= 5  # the default [treaty.alliance] members
        stats = alliance.stats()
        assert "treaty.decided.article5.alert" not in stats


def test_a_poisoning_member_is_contained_and_revoked_at_every_member(tmp_path: Path) -> None:
    """A compromised enrolled member floods the real council with 10,000 alerts (protected
    and members' own addresses among them): the agents enforce at most its blast radius and
    nothing protected; once it is revoked, nothing it alone caused stays blocked anywhere."""
    import asyncio
    import uuid
    from datetime import UTC, datetime

    from shieldwall.agent.client import CouncilClient
    from shieldwall.clock import SystemClock
    from shieldwall.wire.messages import WireAlert
    from shieldwall.wire.signing import generate
    from tests.integration.test_alliance import enforced_set, wait_for

    with LocalAlliance(n_members=3, root=tmp_path / "poison") as alliance:
        private, public_key = generate()
        r = alliance.operator("POST", "/v1/members", {"name": "evil", "public_key": public_key})
        assert r.status_code == 201
        protected = ["127.0.0.1", "10.0.0.1", "192.168.1.1", "169.254.0.1", "::1", "fe80::1"]
        targets = protected + [f"198.18.{i // 250}.{i % 250 + 1}" for i in range(10_000 - 6)]
        now = datetime.now(UTC)
        alerts = [WireAlert(rule="sshd", source=t, first=now, last=now, count=5) for t in targets]

        async def flood() -> int:
            client = CouncilClient(alliance.url, "evil", private, SystemClock())
            try:
                answers = await asyncio.gather(
                    *(
                        client.send_report(uuid.uuid4().hex, alerts[i : i + 1000])
                        for i in range(0, len(alerts), 1000)
                    )
                )
            finally:
                await client.close()
            return sum(len(a["decided"]) for a in answers)  # type: ignore[arg-type]

        decided = asyncio.run(flood())
        assert decided == 100  # the blast radius of a "member"
        active = {d["scope"] for d in alliance.active()["decisions"]}
        assert len(active) == 100
        assert active.isdisjoint(protected)
        wait_for(
            lambda: all(enforced_set(m) == active for m in alliance.members),
            what="every member to enforce exactly the 100",
        )
        flags = alliance.operator("GET", "/v1/flags").json()
        assert [(f["member"], f["clause"]) for f in flags] == [("evil", "blast-radius")]
        assert alliance.operator("POST", "/v1/members/evil/revoke").status_code == 200
        assert alliance.active()["decisions"] == []
        wait_for(
            lambda: all(enforced_set(m) == set() for m in alliance.members),
            what="every member to lift the poisoned decisions",
        )
