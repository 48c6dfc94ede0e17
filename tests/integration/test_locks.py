"""One council per data-dir and one agent per state-dir, refused in one line naming the
holder; a directory that cannot be made is one line too; ``kill -9`` frees the lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shieldwall.loopback.alliance import LocalAlliance, free_port
from shieldwall.wire.signing import generate
from tests.integration.cli import one_line_error, shieldwall

pytestmark = pytest.mark.slow


def test_a_second_council_or_agent_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    with LocalAlliance(n_members=1, root=tmp_path / "a") as alliance:
        council_toml = alliance.root / "council" / "council.toml"  # type: ignore[operator]
        other = council_toml.with_name("other.toml")
        other.write_text(council_toml.read_text().replace(f":{alliance.port}", f":{free_port()}"))
        line = one_line_error(shieldwall("council", "--config", str(other)))
        pid = alliance.council_proc.pid  # type: ignore[union-attr]
        assert "data-dir" in line
        assert f"in use by council pid {pid}" in line
        assert "stop it first" in line
        m = alliance.members[0]
        line = one_line_error(shieldwall("agent", "--config", str(m.config)))
        assert "state-dir" in line
        assert f"in use by agent pid {m.proc.pid}" in line  # type: ignore[union-attr]
        # kill -9 leaves no stale lock
        alliance.stop_council(kill=True)
        alliance.start_council()
        assert alliance.operator("GET", "/v1/health").status_code == 200


def test_directories_that_cannot_be_made_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('data-dir = "/proc/shieldwall/council"\n')
    line = one_line_error(shieldwall("council", "--config", str(tmp_path / "c.toml")))
    assert "c.toml: data-dir:" in line
    assert "/proc/shieldwall/council" in line
    key = tmp_path / "member.key"
    key.write_text(generate()[0] + "\n")
    os.chmod(key, 0o600)
    (tmp_path / "log").touch()
    (tmp_path / "a.toml").write_text(
        f'member = "m"\nkey-file = "{key}"\ncouncil = "http://127.0.0.1:1"\n'
        'state-dir = "/proc/shieldwall/agent"\n'
        f'[[watch]]\npath = "{tmp_path / "log"}"\nrules = ["sshd"]\n[[enforcer]]\nkind = "log"\n'
    )
    line = one_line_error(shieldwall("agent", "--config", str(tmp_path / "a.toml")))
    assert "a.toml: state-dir:" in line
