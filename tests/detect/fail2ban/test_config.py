"""Reading filter files: includes, .local overrides, %(…)s interpolation, <…> tags, options."""

from __future__ import annotations

from pathlib import Path

import pytest

from shieldwall.detect.fail2ban.config import read_filter, substitute_tags
from shieldwall.errors import RuleError


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


COMMON = """
[INCLUDES]
after = common.local

[DEFAULT]
logtype = file
_daemon = \\S*
__prefix_line = <lt_<logtype>/__prefix_line>
datepattern = <lt_<logtype>/datepattern>

[lt_file]
__prefix_line = \\s*\\S+ <_daemon>:\\s+
datepattern = {^LN-BEG}

[lt_journal]
__prefix_line = \\s*<_daemon>:\\s+
datepattern = %(lt_file/datepattern)s
"""

DEMO = """
[INCLUDES]
before = common.conf

[DEFAULT]
_daemon = demo

[Definition]
mode = normal
failregex = ^%(__prefix_line)sbad login from <HOST>$
            <mdre-<mode>>
mdre-normal =
mdre-aggressive = ^%(__prefix_line)sprobe from <HOST>$
ignoreregex =
"""


@pytest.fixture
def filters(tmp_path: Path) -> Path:
    folder = tmp_path / "filter.d"
    _write(folder, "common.conf", COMMON)
    _write(folder, "demo.conf", DEMO)
    return folder


def test_includes_interpolation_and_section_tags(filters: Path) -> None:
    found = read_filter(filters / "demo.conf")
    assert found.failregex == (r"^\s*\S+ demo:\s+bad login from <HOST>$",)
    assert found.datepattern == "{^LN-BEG}"
    assert [Path(f).name for f in found.files] == ["common.conf", "demo.conf"]
    assert any(m.endswith("common.local") for m in found.missing)


def test_mode_option_selects_the_variant(filters: Path) -> None:
    found = read_filter(filters / "demo.conf", {"mode": "aggressive"})
    assert found.failregex == (
        r"^\s*\S+ demo:\s+bad login from <HOST>$",
        r"^\s*\S+ demo:\s+probe from <HOST>$",
    )
    assert found.options == {"mode": "aggressive"}


def test_logtype_option_reaches_tags_inside_tags(filters: Path) -> None:
    found = read_filter(filters / "demo.conf", {"logtype": "journal"})
    assert found.failregex == (r"^\s*demo:\s+bad login from <HOST>$",)
    assert found.datepattern == "{^LN-BEG}"  # %(lt_file/datepattern)s


def test_local_files_override_and_known_reads_the_previous_value(filters: Path) -> None:
    _write(filters, "common.local", "[DEFAULT]\n_daemon = other\n")
    _write(
        filters,
        "demo.local",
        "[Definition]\nfailregex = %(known/failregex)s\n            ^extra <HOST>$\n",
    )
    found = read_filter(filters / "demo.conf")
    # demo.conf's own [DEFAULT] _daemon (read after common.local) still wins
    assert found.failregex == (r"^\s*\S+ demo:\s+bad login from <HOST>$", "^extra <HOST>$")
    assert not [m for m in found.missing if m.endswith("common.local")]


def test_dot_d_folder_is_read_after_the_conf(filters: Path) -> None:
    _write(filters, "demo.d/10-more.conf", "[Definition]\nignoreregex = ^harmless\n")
    assert read_filter(filters / "demo.conf").ignoreregex == ("^harmless",)


def test_init_section_and_definition_options(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "f.conf",
        "[Definition]\nfailregex = ^<who> from <HOST>$\nmaxlines = 2\n"
        "journalmatch = _SYSTEMD_UNIT=a.service\n  _COMM=a\n"
        "prefregex = ^<F-CONTENT>.+</F-CONTENT>$\n"
        "[Init]\nwho = user \\S+\nmaxlines = 3\n",
    )
    found = read_filter(path)
    assert found.failregex == (r"^user \S+ from <HOST>$",)
    assert found.maxlines == 3  # [Init] overrides [Definition]
    assert found.journalmatch == ("_SYSTEMD_UNIT=a.service", "_COMM=a")
    assert found.prefregex == "^<F-CONTENT>.+</F-CONTENT>$"
    assert read_filter(path, {"who": "root"}).failregex == ("^root from <HOST>$",)


def test_percent_escapes_and_default_section_reference(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "f.conf",
        "[DEFAULT]\nx = 1\n[Definition]\nx = 2\nfailregex = ^%%d %(default/x)s %(x)s <HOST>$\n",
    )
    assert read_filter(path).failregex == ("^%d 1 2 <HOST>$",)


def test_missing_include_found_in_a_search_folder(tmp_path: Path, filters: Path) -> None:
    path = _write(
        tmp_path / "tests",
        "t.conf",
        "[INCLUDES]\nbefore = ../../elsewhere/common.conf\n"
        "[Definition]\nfailregex = ^%(__prefix_line)sx <HOST>$\n",
    )
    with pytest.raises(RuleError, match="__prefix_line"):
        read_filter(path)
    assert read_filter(path, search=[filters]).failregex == (r"^\s*\S+ \S*:\s+x <HOST>$",)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("failregex = ^%(nothing)s <HOST>$", r"%\(nothing\)s is not defined"),
        ("failregex = 100% <HOST>", "'%' must be followed"),
        ("a = %(b)s\nb = %(a)s\nfailregex = %(a)s", "deeper than 10"),
        ("failregex = <a>\na = <b>\nb = <a>", "refers to itself"),
    ],
)
def test_broken_definitions_are_clear_errors(tmp_path: Path, body: str, why: str) -> None:
    path = _write(tmp_path, "f.conf", f"[Definition]\n{body}\n")
    with pytest.raises(RuleError, match=why):
        read_filter(path)


def test_a_file_without_definition_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="no such filter file"):
        read_filter(tmp_path / "none.conf")
    path = _write(tmp_path, "f.conf", "[Init]\na = 1\n")
    with pytest.raises(RuleError, match=r"no \[Definition\] section"):
        read_filter(path)


def test_substitute_tags_innermost_first_and_unknown_tags_stay() -> None:
    tags = {"mode": "fast", "re-fast": "<who> quick", "who": "W", "out": "<re-<mode>> <HOST>"}
    assert substitute_tags(tags)["out"] == "W quick <HOST>"
    assert substitute_tags({"a": "<b>"}, lambda tag: "B" if tag == "b" else None)["a"] == "B"
