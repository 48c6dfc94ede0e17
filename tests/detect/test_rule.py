"""Rules: the TOML format, strict validation with clear errors, loading."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shieldwall.detect import Rule, builtin_rule, builtin_rule_names, load_rule, parse_rule
from shieldwall.detect.rule import parse_duration
from shieldwall.errors import RuleError

ORIGIN = "/etc/shieldwall/rules/test.toml"


def rule(**data: Any) -> Rule:
    data.setdefault("failregex", [r"^fail from <HOST>$"])
    return parse_rule(data, "test", ORIGIN)


class TestParse:
    def test_defaults(self) -> None:
        """Only failregex is required; the name defaults to the given one (file stem)."""
        parsed = rule()

        assert parsed.name == "test"
        assert parsed.maxretry == 5
        assert parsed.findtime == 600.0
        assert parsed.bantime is None
        assert parsed.datepattern == "auto"
        assert parsed.prefilter == ()
        assert parsed.prefix is None
        assert parsed.origin == ORIGIN

    def test_all_keys(self) -> None:
        """Every documented key is read."""
        parsed = rule(
            name="web-login",
            description="d",
            prefilter=["app["],
            prefix=r"\S+ app\[\d+\]: ",
            failregex=[r"bad login from <HOST>$", r"locked out <ADDR>$"],
            ignoreregex=["from 10\\."],
            datepattern="iso8601",
            maxretry=3,
            findtime="30s",
            bantime="1d",
        )

        assert parsed.name == "web-login"
        assert parsed.prefilter == ("app[",)
        assert len(parsed.failregex) == 2
        assert parsed.maxretry == 3
        assert parsed.findtime == 30.0
        assert parsed.bantime == 86400.0

    def test_single_strings_are_lists(self) -> None:
        """A lone string is accepted where a list is expected."""
        parsed = rule(failregex=r"^x <HOST>$", prefilter="x")

        assert parsed.failregex == (r"^x <HOST>$",)
        assert parsed.prefilter == ("x",)

    @pytest.mark.parametrize(
        ("value", "seconds"),
        [(90, 90.0), ("90", 90.0), ("30s", 30.0), ("10m", 600.0), ("4h", 14400.0), ("1d", 86400.0)],
    )
    def test_durations(self, value: object, seconds: float) -> None:
        """Durations are seconds or a number with s, m, h, d, w."""
        assert seconds == parse_duration(value, ORIGIN, "findtime")

    @pytest.mark.parametrize("value", [0, -5, "0m", "10 minutes", "1.5h", True, 1.5, [], "m"])
    def test_bad_durations(self, value: object) -> None:
        """Bad durations name the key."""
        with pytest.raises(RuleError, match=f"{ORIGIN}: findtime: "):
            rule(findtime=value)


class TestErrors:
    @pytest.mark.parametrize(
        ("data", "key", "why"),
        [
            ({"failregex": ["^<HOST>$"], "maxretries": 3}, "maxretries", "unknown key"),
            ({"maxretry": 0}, "maxretry", "between 1"),
            ({"maxretry": True}, "maxretry", "integer"),
            ({"maxretry": "5"}, "maxretry", "integer"),
            ({"maxretry": 100_000}, "maxretry", "between 1"),
            ({"findtime": "400d"}, "findtime", "between"),
            ({"bantime": "0s"}, "bantime", "greater than zero"),
            ({"datepattern": "rfc822"}, "datepattern", "unknown"),
            ({"name": "Bad Name"}, "name", "not a rule name"),
            ({"name": 5}, "name", "expected a string"),
            ({"prefilter": [""]}, "prefilter[0]", "empty"),
            ({"prefilter": [1]}, "prefilter[0]", "expected a string"),
            ({"failregex": []}, "failregex", "at least one"),
            ({"failregex": {"a": 1}}, "failregex", "list of strings"),
            ({"failregex": ["^no host$"]}, "failregex[0]", "no <HOST>"),
            ({"failregex": ["^<HOST>$", "^<HOST> <ADDR>$"]}, "failregex[1]", "need one"),
            ({"failregex": ["^<HOST>$", "^(<HOST>$"]}, "failregex[1]", "does not compile"),
            ({"failregex": ["^(?P<user>\\S+) <HOST>$"]}, "failregex[0]", "named groups"),
            ({"failregex": ["^(a)\\1 <HOST>$"]}, "failregex[0]", "back-references"),
            ({"failregex": ["from .* <HOST>"]}, "failregex[0]", "needs the pattern to end with"),
            ({"failregex": ["from .+? <HOST> port"]}, "failregex[0]", "end with \\$"),
            ({"prefix": "<HOST>"}, "prefix", "must not contain"),
            ({"prefix": "(unclosed"}, "prefix", "does not compile"),
            ({"ignoreregex": ["["]}, "ignoreregex[0]", "does not compile"),
            ({"ignoreregex": ["<HOST>"]}, "ignoreregex[0]", "must not contain"),
        ],
    )
    def test_bad_values_name_origin_key_and_why(
        self, data: dict[str, Any], key: str, why: str
    ) -> None:
        """Every error says which file, which key, and why."""
        with pytest.raises(RuleError, match=f"^{re.escape(f'{ORIGIN}: {key}: ')}.*{why}"):
            rule(**data)

    def test_missing_failregex(self) -> None:
        """failregex is required."""
        with pytest.raises(RuleError, match="failregex: is required"):
            parse_rule({"name": "x"}, "x", ORIGIN)

    def test_catch_all_with_end_anchor_is_fine(self) -> None:
        """The end anchor pins the source: `.*` before <HOST> is then allowed."""
        assert rule(failregex=[r"for .* from <HOST> port \d+\s*$"])

    def test_escaped_and_class_dots_are_not_catch_alls(self) -> None:
        """`\\.*` and `[.]*` are not catch-alls."""
        assert rule(failregex=[r"a\.* [.]+ <HOST>"])

    def test_lookbehind_is_not_a_named_group(self) -> None:
        """(?<=…) and (?<!…) are allowed."""
        assert rule(failregex=[r"(?<=x)y (?<!z)<HOST>$"])

    def test_leading_global_flags_are_scoped(self) -> None:
        """(?i) at the start of one pattern applies to that pattern only."""
        parsed = rule(failregex=[r"^a <HOST>$", r"(?i)^b <HOST>$"])

        assert parsed.compiled.combined.match("B 1.2.3.4")
        assert not parsed.compiled.combined.match("A 1.2.3.4")

    def test_flags_then_caret_after_a_prefix(self) -> None:
        """(?i)^… after a prefix is anchored where the prefix ends, case-insensitively."""
        parsed = rule(prefix=r"\w+: ", failregex=[r"(?i)^bad <HOST>$", r"worse <HOST>$"])

        assert parsed.compiled.combined.match("app: BAD 1.2.3.4")
        assert parsed.compiled.combined.match("app: worse 1.2.3.4")
        assert parsed.compiled.patterns[1].match("app: worse 1.2.3.4")

    def test_prefix_with_global_flags(self) -> None:
        """(?i) at the start of the prefix applies to the prefix only."""
        parsed = rule(prefix=r"(?i)app: ", failregex=[r"^bad <HOST>$"])

        assert parsed.compiled.combined.match("APP: bad 1.2.3.4")
        assert not parsed.compiled.combined.match("APP: BAD 1.2.3.4")


class TestLoad:
    def test_load_file(self, tmp_path: Path) -> None:
        """The name defaults to the file stem; origin is the path."""
        path = tmp_path / "myapp.toml"
        path.write_text("failregex = ['^login failed for \\S+ from <HOST>$']\nmaxretry = 2\n")

        loaded = load_rule(path)

        assert loaded.name == "myapp"
        assert loaded.maxretry == 2
        assert str(path) == loaded.origin

    def test_invalid_toml(self, tmp_path: Path) -> None:
        """A TOML syntax error names the file."""
        path = tmp_path / "bad.toml"
        path.write_text("failregex = [\n")

        with pytest.raises(RuleError, match=f"{path}: not valid TOML"):
            load_rule(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """An unreadable file is a RuleError, not an OSError."""
        path = tmp_path / "absent.toml"

        with pytest.raises(RuleError, match="cannot read"):
            load_rule(path)

    def test_not_utf8(self, tmp_path: Path) -> None:
        """Binary garbage is a RuleError."""
        path = tmp_path / "bin.toml"
        path.write_bytes(b"\xff\xfe\x00")

        with pytest.raises(RuleError, match="cannot read"):
            load_rule(path)

    def test_builtin(self) -> None:
        """Shipped rules load by name."""
        assert {"sshd", "nginx-http-auth", "nginx-botsearch"} <= set(builtin_rule_names())
        assert builtin_rule("sshd").name == "sshd"

    def test_unknown_builtin(self) -> None:
        """An unknown name lists the available ones."""
        with pytest.raises(RuleError, match=r"available: .*sshd"):
            builtin_rule("telnetd")


def test_rule_is_valid_by_construction() -> None:
    """Rule(...) validates like parse_rule does."""
    with pytest.raises(RuleError, match="<rule>: failregex\\[0\\]: has no <HOST>"):
        Rule(name="x", failregex=("nothing",))
