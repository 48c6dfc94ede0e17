"""What a [[watch]] may name: shipped rules, native files, fail2ban filters with options."""

from __future__ import annotations

from pathlib import Path

import pytest

from shieldwall.agent.run import load_rules
from shieldwall.errors import ConfigError
from tests.conftest import corpora_dir, skip_or_fail


@pytest.fixture
def sshd_conf() -> Path:
    path = corpora_dir() / "fail2ban" / "filter.d" / "sshd.conf"
    if not path.exists():
        skip_or_fail(f"the fail2ban corpus is not at {path} (set SHIELDWALL_CORPORA)")
    return path


def test_a_fail2ban_filter_with_jail_style_options(sshd_conf: Path) -> None:
    (rule,) = load_rules([f"{sshd_conf}[mode=aggressive, maxretry=3, findtime=1h]"], "a.toml")
    assert (rule.name, rule.dialect, rule.maxretry, rule.findtime) == ("sshd", "fail2ban", 3, 3600)


def test_shipped_and_native_rules(tmp_path: Path) -> None:
    native = tmp_path / "mine.toml"
    native.write_text('failregex = ["^denied <HOST>$"]\n')
    rules = load_rules(["nginx-botsearch", str(native)], "a.toml")
    assert [r.name for r in rules] == ["nginx-botsearch", "mine"]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("/nope/sshd.conf", "no such filter file"),
        ("no-such-rule", "no-such-rule"),
    ],
)
def test_errors_name_the_file_the_key_and_the_rule(name: str, why: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_rules([name], "a.toml")
    assert str(exc.value).startswith(f"a.toml: watch.rules: {name}")
    assert why in str(exc.value)


def test_options_must_be_key_value(sshd_conf: Path) -> None:
    with pytest.raises(ConfigError, match="is not k=v"):
        load_rules([f"{sshd_conf}[aggressive]"], "a.toml")


def test_a_jail_ignoreip_is_collected_for_the_members_protected_set(sshd_conf: Path) -> None:
    from shieldwall.model import Scope, parse_scope

    ignored: list[Scope] = []
    load_rules([f"{sshd_conf}[ignoreip=203.0.113.0/24 198.51.100.9, maxretry=3]"], "a.toml",
               ignored)  # fmt: skip
    assert ignored == [parse_scope("203.0.113.0/24"), parse_scope("198.51.100.9")]
