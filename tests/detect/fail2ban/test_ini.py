"""The INI reader follows fail2ban's configparser settings."""

from __future__ import annotations

import re

import pytest

from shieldwall.detect.fail2ban.ini import parse_ini
from shieldwall.errors import RuleError


def test_sections_defaults_and_both_delimiters() -> None:
    ini = parse_ini("[DEFAULT]\na = 1\n[Definition]\nB: two words \nc=\n", "f.conf")
    assert ini.defaults == {"a": "1"}
    assert ini.sections == {"Definition": {"b": "two words", "c": ""}}


def test_indented_lines_continue_the_value_one_per_line() -> None:
    text = (
        "[Definition]\n"
        "failregex = ^first <HOST>$\n"
        "            ^second = <HOST>$\n"
        "\n"
        "            ^after an empty line <HOST>$\n"
        "ignoreregex =\n"
    )
    values = parse_ini(text, "f.conf").sections["Definition"]
    assert values["failregex"].split("\n") == [
        "^first <HOST>$",
        "^second = <HOST>$",
        "",
        "^after an empty line <HOST>$",
    ]
    assert values["ignoreregex"] == ""


def test_comments_full_line_and_inline() -> None:
    text = (
        "# a comment\n"
        "[Definition]\n"
        "; another\n"
        "a = x ; inline comment\n"
        "b = x;not a comment\n"
        "c = first\n"
        "    # a comment inside a multi-line value is dropped\n"
        "    second\n"
    )
    values = parse_ini(text, "f.conf").sections["Definition"]
    assert values == {"a": "x", "b": "x;not a comment", "c": "first\nsecond"}


def test_trailing_empty_lines_are_dropped_and_keys_lowercased() -> None:
    values = parse_ini("[S]\nKey = v\n\n\n[T]\n", "f").sections
    assert values == {"S": {"key": "v"}, "T": {}}


def test_a_section_or_key_given_twice_merges_last_wins() -> None:
    values = parse_ini("[S]\na = 1\nb = 2\n[S]\na = 3\n", "f").sections
    assert values == {"S": {"a": "3", "b": "2"}}


@pytest.mark.parametrize(
    ("text", "why"),
    [("a = 1\n", "before any [section]"), ("[S]\njust words\n", "not a 'key = value' line")],
)
def test_malformed_lines_name_file_and_line(text: str, why: str) -> None:
    with pytest.raises(RuleError, match=f"f.conf:[12]: .*{re.escape(why)}"):
        parse_ini(text, "f.conf")
