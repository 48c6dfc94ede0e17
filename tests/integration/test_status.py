"""Nothing protects nothing in silence: a missing log is a repeated WARNING and shows in
``shieldwall status``; no watch, no enforcer or a directory is an error; ``status`` says
whether the agent runs and follows its council, and lists what it blocks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shieldwall.loopback.alliance import LocalAlliance
from shieldwall.wire.signing import generate
from tests.integration.cli import shieldwall
from tests.integration.test_alliance import enforced_set, wait_for

pytestmark = pytest.mark.slow
ATTACKER = "203.0.113.77"


def _status(config: Path) -> dict:  # type: ignore[type-arg]
    out = shieldwall("status", "--config", str(config), "--json")
    assert out.returncode == 0, out.stderr
    data: dict = json.loads(out.stdout)  # type: ignore[type-arg]
    return data


def test_a_missing_log_is_warned_about_until_it_appears_and_status_shows_it(
    tmp_path: Path,
) -> None:
    with LocalAlliance(n_members=0, root=tmp_path / "a") as alliance:
        m = alliance.add_member("web1")
        m.log.unlink()
        alliance.start_agent(m)
        alliance.wait_streams(1)
        log = m.dir / "agent.log"
        wait_for(lambda: "watch.missing" in log.read_text(), what="the warning")
        st = _status(m.config)
        assert st["running"] is True
        assert st["stream"]["state"] == "connected"
        assert st["watches"][str(m.log)] == "missing"
        text = shieldwall("status", "--config", str(m.config)).stdout
        assert "running" in text
        assert f"watch {m.log}: missing" in text
        # the file appears: it is read from its start, and the attack in it is decided
        alliance.attack(m, ATTACKER, 5)
        wait_for(lambda: ATTACKER in enforced_set(m), what="the decision")
        wait_for(lambda: "watch.found" in log.read_text(), what="the file found")
        st = _status(m.config)
        assert st["watches"][str(m.log)] == "reading"
        by = {b["scope"]: b["by"] for b in st["blocks"]}
        assert by.get(ATTACKER) in ("council", "local")
        assert {b["by"] for b in st["blocks"]} == {"council", "local"}
        alliance.stop_agent(m)
        st = _status(m.config)
        assert st["running"] is False
        assert "NOT running" in shieldwall("status", "--config", str(m.config)).stdout


@pytest.mark.parametrize(
    ("tail", "key"),
    [
        ('[[enforcer]]\nkind = "log"\n', "watch"),
        ('[[watch]]\npath = "LOG"\nrules = ["sshd"]\n', "enforcer"),
        (
            '[[watch]]\npath = "DIR"\nrules = ["sshd"]\n[[enforcer]]\nkind = "log"\n',
            "watch[0].path",
        ),
    ],
)
def test_an_agent_that_would_protect_nothing_is_refused_in_one_line(
    tmp_path: Path, tail: str, key: str
) -> None:
    k = tmp_path / "member.key"
    k.write_text(generate()[0] + "\n")
    os.chmod(k, 0o600)
    (tmp_path / "log").touch()
    (tmp_path / "dir").mkdir()
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'member = "m"\nkey-file = "{k}"\ncouncil = "http://127.0.0.1:1"\n'
        f'state-dir = "{tmp_path / "state"}"\n'
        + tail.replace("LOG", str(tmp_path / "log")).replace("DIR", str(tmp_path / "dir"))
    )
    out = shieldwall("agent", "--config", str(cfg))
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert f"agent.toml: {key}:" in lines[0]
