"""A real agent (in process) against a real council: it reports sightings below its local
threshold, counts successful logins with the ``sshd-success`` rule, and answers a
consultation from its recent sightings (retro-hunt)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from shieldwall.agent.run import Agent
from shieldwall.config.schema import parse_agent
from shieldwall.loopback.alliance import failed_password, syslog_line
from shieldwall.model import parse_scope
from shieldwall.wire import signing
from tests.council.conftest import Council
from tests.council.support import enroll, explain, operator, stats, until


def _agent(council: Council, tmp_path: Path, key: str) -> Agent:
    (tmp_path / "member.key").write_text(key + "\n")
    config = parse_agent(
        {
            "member": "web1",
            "key-file": str(tmp_path / "member.key"),
            "council": council.url,
            "state-dir": str(tmp_path / "state"),
            "poll-interval": 0.01,
            "watch": [{"path": str(tmp_path / "auth.log"), "rules": ["sshd", "sshd-success"]}],
            "enforcer": [{"kind": "log", "path": str(tmp_path / "enforced.jsonl")}],
        },
        "agent.toml",
    )
    return Agent(config, clock=council.clock)


def _accepted(when: datetime, source: str) -> str:
    return syslog_line(when, "web1", f"Accepted publickey for deploy from {source} port 40022 ssh2")


async def test_agent_sightings_successes_and_consultation(council: Council, tmp_path: Path) -> None:
    private, public = signing.generate()
    async with operator(council) as http:
        r = await http.post("/v1/members", json={"name": "web1", "public_key": public})
        assert r.status_code == 201
    web2 = await enroll(council, "web2")
    (tmp_path / "auth.log").touch()
    agent = _agent(council, tmp_path, private)
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.wait_for(agent.connected.wait(), 10)
        now = council.clock.now()
        with (tmp_path / "auth.log").open("a") as f:
            f.write(failed_password(now, "web1", "203.0.113.70", port=40001))
            f.write(failed_password(now, "web1", "203.0.113.70", port=40002))
            f.write(_accepted(now, "203.0.113.71"))

        async def received() -> bool:
            return (await stats(council)).get("sightings.received", 0) >= 2

        # two failures stay below sshd's maxretry: no alert, but a report of sightings once
        # they have waited for a batch with alerts (the clock moves them along)
        await until(received, "web1's sightings", step=lambda: council.clock.advance(0.5))
        counters = await stats(council)
        assert counters.get("alerts.duplicate", 0) == 0
        assert counters["decisions.active"] == 0

        async with operator(council) as http:
            login = (await http.post("/v1/concerns", json={"source": "203.0.113.71"})).json()
            concern = (await http.post("/v1/concerns", json={"source": "203.0.113.70"})).json()
        # web1 saw a successful login from .71: friendly fire closes that concern at once
        assert (login["status"], login["outcome"]) == ("closed", "friendly-fire")
        assert concern["status"] == "consulting"

        async def answered() -> bool:
            return (await stats(council)).get("answers.received", 0) >= 1

        await until(answered, "web1's answer to the consultation")
        out = await web2.answer(concern["concern"]["id"], failures=1)
        (decision_id,) = out["decided"]
        why = await explain(council, decision_id)
        assert why["evidence"]["clauses"] == ["article4.corroborated"]
        testimony = {x["member"]: x for x in why["evidence"]["exhibits"] if x["member"]}
        assert (testimony["web1"]["kind"], testimony["web1"]["failures"]) == ("testimony", 2)
        assert testimony["web2"]["failures"] == 1

        scope = parse_scope("203.0.113.70")

        async def enforced() -> bool:
            return agent.blocks.blocked(scope, council.clock.now().timestamp()) is not None

        await until(enforced, "web1 to enforce the decision")
        state_counters = agent.state.counters()
        assert state_counters["successes"] == 1
        assert state_counters["hits"] == 2
        assert state_counters.get("alerts", 0) == 0
        assert state_counters["consults.answered"] == 1
    finally:
        agent.stop()
        await asyncio.wait_for(task, 10)
