"""The agent's own side of protection: a local ban the council refused as protected is
lifted; what the council protects is learnt from its stream; an operator's lift reaches
local bans inside the scope lifted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from shieldwall.agent.run import Agent
from shieldwall.config.schema import parse_agent
from shieldwall.model import parse_scope
from shieldwall.wire import signing
from shieldwall.wire.messages import WireProtect


def _agent(tmp_path: Path) -> Agent:
    (tmp_path / "member.key").write_text(signing.generate()[0] + "\n")
    (tmp_path / "auth.log").touch()
    config = parse_agent(
        {
            "member": "web1",
            "key-file": str(tmp_path / "member.key"),
            "council": "http://127.0.0.1:9",
            "state-dir": str(tmp_path / "state"),
            "watch": [{"path": str(tmp_path / "auth.log"), "rules": ["sshd"]}],
            "enforcer": [{"kind": "log", "path": str(tmp_path / "enforced.jsonl")}],
        },
        "agent.toml",
    )
    return Agent(config, enforcers=[])


def _ban(agent: Agent, text: str) -> None:
    until = datetime.now(UTC) + timedelta(hours=4)
    agent.blocks.ban(parse_scope(text), until.timestamp())
    agent.state.commit_batch(
        path="x", position={}, buckets=[], counters={}, local_bans={parse_scope(text): until},
        report_id=None, alerts=[], now=datetime.now(UTC),
    )  # fmt: skip


def _local(agent: Agent) -> set[str]:
    return {s.text() for s in agent.blocks.local_bans()}


def test_a_local_ban_the_council_refuses_as_protected_is_lifted(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    try:
        _ban(agent, "203.0.113.5")
        _ban(agent, "203.0.113.6")
        answer = {
            "decided": [],
            "refused": [
                {"scope": "203.0.113.5", "reason": "protected:allowlist"},
                {"scope": "203.0.113.6", "reason": "blast-radius"},  # not a protection
            ],
        }
        assert agent._lift_refused(answer) == 1
        assert _local(agent) == {"203.0.113.6"}
        assert {s.text() for s in agent.state.local_bans(datetime.now(UTC))} == {"203.0.113.6"}
        assert agent.state.counters()["bans.lifted"] == 1
        assert agent._lift_refused({"refused": "junk"}) == 0
    finally:
        agent.state.close()
        agent._dir_lock.close()


def test_what_the_council_protects_lifts_bans_inside_and_guards_local_alerts(
    tmp_path: Path,
) -> None:
    agent = _agent(tmp_path)
    try:
        _ban(agent, "198.51.100.7")
        _ban(agent, "192.0.2.1")
        agent._council_protects(
            WireProtect(scopes=[("198.51.100.0/24", "protected:allowlist"), ("junk", "x")])
        )
        assert _local(agent) == {"192.0.2.1"}
        assert agent.council_protected.reason_for(parse_scope("198.51.100.9")) is not None
        assert agent.council_protected.reason_for(parse_scope("192.0.2.1")) is None
        assert agent._lift_inside([parse_scope("192.0.2.0/24")], "an operator's unban") == 1
        assert _local(agent) == set()
    finally:
        agent.state.close()
        agent._dir_lock.close()
