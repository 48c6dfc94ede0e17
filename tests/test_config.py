"""Strict configuration: unknown keys and bad values name the file, the key and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from shieldwall.config.load import load_agent, load_council
from shieldwall.config.schema import parse_agent, parse_council, parse_duration
from shieldwall.errors import ConfigError
from shieldwall.model import parse_scope

AGENT = {"member": "web1", "key-file": "k", "council": "http://c:8470", "state-dir": "s"}


def test_minimal_configs_have_sensible_defaults() -> None:
    c = parse_council({"data-dir": "d"}, "c.toml")
    assert (c.host, c.port, c.replay_window) == ("127.0.0.1", 8470, 300)
    assert c.treaty.ban_duration == 4 * 3600
    assert c.treaty.protect_private is True
    a = parse_agent(AGENT, "a.toml")
    assert a.local_ban
    assert a.local_ban_duration == 4 * 3600
    assert a.timezone == "UTC"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"data-dir": "d", "colour": "red"}, "c.toml: colour: unknown key"),
        (
            {"data-dir": "d", "treaty": {"ban-duration": "4x"}},
            "c.toml: treaty.ban-duration: '4x' is not a duration",
        ),
        (
            {"data-dir": "d", "treaty": {"ban-duration": -5}},
            "c.toml: treaty.ban-duration: a duration must be positive",
        ),
        (
            {"data-dir": "d", "treaty": {"allowlist": ["10.0.0.1/8"]}},
            "c.toml: treaty.allowlist[0]: not an IP address or CIDR",
        ),
        ({"data-dir": "d", "listen": "nope"}, "c.toml: listen: 'nope' is not HOST:PORT"),
        ({}, "c.toml: data-dir: required key is missing"),
        ({"data-dir": 7}, "c.toml: data-dir: Expected `str`, got `int`"),
        ({"data-dir": "d", "tls-cert": "c.pem"}, "c.toml: tls-key: give tls-cert and tls-key"),
        ({"data-dir": "d", "tls-key": "k.pem"}, "c.toml: tls-cert: give tls-cert and tls-key"),
        (
            {"data-dir": "d", "tls-client-ca": "ca.pem"},
            "c.toml: tls-client-ca: mutual TLS needs tls-cert",
        ),
    ],
)
def test_council_config_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_council(data, "c.toml")
    assert str(exc.value).startswith(message)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"member": "bad name!"}, "a.toml: member: 'bad name!' is not a member name"),
        ({"council": "ftp://x"}, "a.toml: council: 'ftp://x' is not an http(s) URL"),
        ({"watch": [{"path": "/x", "rules": []}]}, "a.toml: watch[0].rules: name at least one"),
        (
            {"watch": [{"path": "/x", "rules": ["sshd"], "bogus": 1}]},
            "a.toml: watch[0].bogus: unknown key",
        ),
        ({"enforcer": [{"kind": "iptables"}]}, "a.toml: enforcer[0].kind: Invalid enum value"),
        ({"council-key": "nope"}, "a.toml: council-key: not a public key"),
        (
            {"enforcer": [{"kind": "nftables", "table": "bad name;"}]},
            "a.toml: enforcer[0].table: 'bad name;' is not an nftables table name",
        ),
        ({"council-ca": "/ca.pem"}, "a.toml: council-ca: the council URL 'http://"),
        (
            {"council": "https://c", "tls-cert": "/c.pem"},
            "a.toml: tls-key: give tls-cert and tls-key together",
        ),
    ],
)
def test_agent_config_errors(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_agent({**AGENT, **extra}, "a.toml")
    assert str(exc.value).startswith(message)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30),
        ("30s", 30),
        ("10m", 600),
        ("4h", 14400),
        ("1d", 86400),
        ("250ms", 0.25),
        ("1.5h", 5400),
        ("2w", 1209600),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_files_resolve_relative_paths_and_report_toml_errors(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        'data-dir = "data"\n[treaty]\nallowlist = ["198.51.100.0/24"]\n'
    )
    c = load_council(tmp_path / "c.toml")
    assert c.data_dir == str(tmp_path / "data")
    assert c.treaty.allowlist == (parse_scope("198.51.100.0/24"),)
    (tmp_path / "a.toml").write_text(
        'member = "m"\nkey-file = "k"\ncouncil = "http://x"\n'
        'state-dir = "s"\n[[watch]]\npath = "log"\nrules = ["sshd"]\n'
    )
    a = load_agent(tmp_path / "a.toml")
    assert a.key_file == str(tmp_path / "k")
    assert a.watch[0].path == str(tmp_path / "log")
    (tmp_path / "bad.toml").write_text("data-dir = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_council(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_council(tmp_path / "missing.toml")


def test_watch_kinds() -> None:
    a = parse_agent(
        {
            **AGENT,
            "watch": [
                {"path": "/var/log/auth.log", "rules": ["sshd"]},
                {"journal": ["_SYSTEMD_UNIT=ssh.service"], "rules": ["sshd"]},
                {"stdin": True, "rules": ["sshd"]},
            ],
        },
        "a.toml",
    )
    assert [w.kind for w in a.watch] == ["file", "journal", "stdin"]
    assert a.watch[1].key == "journal:_SYSTEMD_UNIT=ssh.service"
    assert a.watch[0].key == "/var/log/auth.log"


@pytest.mark.parametrize(
    "watch",
    [
        {"path": "/x", "journal": ["A=b"], "rules": ["sshd"]},
        {"rules": ["sshd"]},
        {"path": "/x", "journal-directory": "/j", "rules": ["sshd"]},
    ],
)
def test_a_watch_names_exactly_one_source(watch: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"a\.toml: watch"):
        parse_agent({**AGENT, "watch": [watch]}, "a.toml")


def test_tls_settings_resolve_and_make_the_url_https(tmp_path: Path) -> None:
    from shieldwall.council.run import exposure_warning

    (tmp_path / "c.toml").write_text(
        'data-dir = "data"\nlisten = "0.0.0.0:8470"\ntls-cert = "c.pem"\ntls-key = "k.pem"\n'
    )
    c = load_council(tmp_path / "c.toml")
    assert c.tls_cert == str(tmp_path / "c.pem")
    assert c.tls_key == str(tmp_path / "k.pem")
    assert c.url == "https://127.0.0.1:8470"
    assert exposure_warning(c) is None  # TLS: nothing in clear
    clear = parse_council({"data-dir": "d", "listen": "0.0.0.0:8470"}, "c.toml")
    warning = exposure_warning(clear)
    assert warning is not None
    assert "without TLS" in warning
    assert "c.toml" in warning
    for host in ("127.0.0.1", "localhost", "[::1]"):
        local = parse_council({"data-dir": "d", "listen": f"{host}:1"}, "c.toml")
        assert exposure_warning(local) is None
    (tmp_path / "a.toml").write_text(
        'member = "m"\nkey-file = "k"\ncouncil = "https://x"\nstate-dir = "s"\n'
        'council-ca = "ca.pem"\n'
    )
    assert load_agent(tmp_path / "a.toml").council_ca == str(tmp_path / "ca.pem")
