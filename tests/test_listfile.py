"""Decision list files: every format ``decisions import`` reads, line numbers for what is
skipped, gzip, cscli's files, and ``export`` written back the way import reads it."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.listfile import (
    Entry,
    ListFileError,
    Malformed,
    Row,
    decode,
    detect,
    parse,
    parse_duration,
    write,
)
from shieldwall.model import parse_scope

SPAMHAUS = """\
; Spamhaus DROP List 2026/12/07 - (c) 2026 The Spamhaus Project SLC
; https://www.spamhaus.org/drop/drop.txt
; Last-Modified: Sun, 07 Dec 2026 13:12:49 GMT
; Expires: Mon, 08 Dec 2026 14:03:36 GMT
1.10.16.0/20 ; SBL256894
1.19.0.0/16 ; SBL434604
2.56.192.0/22 ; SBL459831
"""

FIREHOL = """\
#
# firehol_level1
#
# ipv4 hash:net ipset
#
# Maintainer      : FireHOL
#
0.0.0.0/8
1.10.16.0/20
223.254.0.0/16
"""


def entries(text: str, fmt: str = "auto") -> list[Entry | Malformed]:
    return list(parse(text, fmt))


def scopes(text: str, fmt: str = "auto") -> list[str]:
    return [e.scope.text() for e in parse(text, fmt) if isinstance(e, Entry)]


def test_spamhaus_drop_and_firehol_load_as_they_are() -> None:
    assert scopes(SPAMHAUS) == ["1.10.16.0/20", "1.19.0.0/16", "2.56.192.0/22"]
    assert [e.line for e in entries(SPAMHAUS)] == [5, 6, 7]
    assert scopes(FIREHOL) == ["0.0.0.0/8", "1.10.16.0/20", "223.254.0.0/16"]
    assert detect(SPAMHAUS) == detect(FIREHOL) == "plain"


def test_a_bad_line_is_skipped_with_its_number_and_why() -> None:
    text = "203.0.113.7\nnot-an-ip\n10.0.0.1/8\n1.2.3.4 5.6.7.8\n\n2001:db8::1 # v6\n" + "x" * 5000
    got = entries(text, "plain")
    assert [(type(e).__name__, e.line) for e in got] == [
        ("Entry", 1),
        ("Malformed", 2),
        ("Malformed", 3),
        ("Malformed", 4),
        ("Entry", 6),
        ("Malformed", 7),
    ]
    why = {e.line: e.why for e in got if isinstance(e, Malformed)}
    assert "host bits must be zero" in why[3]
    assert "one address or CIDR" in why[4]
    assert "longer than" in why[7]


def test_csv_with_a_header() -> None:
    text = "value,duration,reason\n203.0.113.7,1d,brute force\n198.51.100.0/24,,\nbad,1h,x\n"
    got = entries(text)
    assert detect(text) == "csv"
    assert got[0] == Entry(2, parse_scope("203.0.113.7"), 86400.0, "brute force")
    assert got[1] == Entry(3, parse_scope("198.51.100.0/24"), None, None)
    assert isinstance(got[2], Malformed)
    assert got[2].line == 4


def test_cscli_csv_and_json() -> None:
    csv_text = "duration,scope,value,type\n24h,ip,1.2.3.4\n1h30m,range,1.2.3.0/24,ban\n"
    csv_text += "4h0m0s,ip,1.2.3.0/24\n1h,country,FR\n1h,ip,1.2.3.5,captcha\n"
    got = entries(csv_text, "crowdsec")
    assert [e.duration for e in got if isinstance(e, Entry)] == [86400.0, 5400.0]
    assert [e.why for e in got if isinstance(e, Malformed)] == [
        "scope ip needs one address, got '1.2.3.0/24'",
        "'FR' is not an IP address or CIDR",
        "type 'captcha' is not supported (only ban)",
    ]
    json_text = '[{"duration": "24h", "reason": "my_scenario", "scope": "ip", "type": "ban",\n'
    json_text += '"value": "1.2.3.4"},\n{"value": "1.2.3.5"},\n{"value": 7},\n"x"]'
    got = entries(json_text, "crowdsec")
    assert got[0] == Entry(1, parse_scope("1.2.3.4"), 86400.0, "my_scenario")
    assert got[1] == Entry(3, parse_scope("1.2.3.5"))
    assert [(m.line, m.item) for m in got[2:] if isinstance(m, Malformed)] == [(4, 2), (5, 3)]


def test_json_is_an_array() -> None:
    with pytest.raises(ListFileError, match="JSON array"):
        entries('{"value": "1.2.3.4"}', "json")
    with pytest.raises(ListFileError, match="JSON array"):
        entries("[1, 2", "json")
    assert entries("[]") == []


def test_a_csv_without_a_value_column_is_refused_whole() -> None:
    with pytest.raises(ListFileError, match=r"line 1.*'value' column"):
        entries("ip,duration\n1.2.3.4,1h\n", "csv")
    got = entries("value\n1.2.3.4,extra\n", "csv")
    assert isinstance(got[0], Malformed)


def test_gzip_bom_and_bad_bytes() -> None:
    assert decode(gzip.compress(SPAMHAUS.encode())) == SPAMHAUS
    assert decode("\ufeff1.2.3.4\n".encode()) == "1.2.3.4\n"
    with pytest.raises(ListFileError, match="UTF-8"):
        decode(b"1.2.3.4\n\xff\xfe\n")
    with pytest.raises(ListFileError, match="gzip"):
        decode(b"\x1f\x8b\x08garbage")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("4h", 14400.0), ("1d", 86400.0), ("30m", 1800.0), ("90", 90.0), (90, 90.0),
     ("1h30m", 5400.0), ("4h0m0s", 14400.0), ("1.5s", 1.5), ("250ms", 0.25), ("24h", 86400.0)],
)  # fmt: skip
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-1", "367d", "abc", "1x", "", True, float("nan")])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)  # type: ignore[arg-type]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ListFileError, match="format"):
        entries("1.2.3.4", "yaml")


@given(st.text(max_size=300), st.sampled_from(["auto", "plain", "csv", "json", "crowdsec"]))
@settings(max_examples=300, deadline=None)
def test_any_text_gives_entries_or_malformed_lines_or_one_clear_error(text: str, fmt: str) -> None:
    try:
        items = list(parse(text, fmt))
    except ListFileError as exc:
        items = []
        message = str(exc)
        assert message
    for item in items:
        assert isinstance(item, Entry | Malformed)
        assert item.line >= 1


@pytest.mark.parametrize("fmt", ["plain", "csv", "json"])
def test_an_export_imports_back_as_the_same_decisions(fmt: str) -> None:
    now = 1_800_000_000.0
    rows = [
        Row(parse_scope("203.0.113.7"), now + 3600, "brute, force", "alert", "id1"),
        Row(parse_scope("198.51.100.0/24"), now + 86400.5, 'say "hi"', "operator", "id2"),
        Row(parse_scope("2001:db8::1"), now + 10, "x", "operator", "id3"),
    ]
    text = "".join(write(rows, fmt, now))
    got = [e for e in parse(text) if isinstance(e, Entry)]
    assert [e.scope for e in got] == [r.scope for r in rows]
    if fmt != "plain":
        assert [e.duration for e in got] == [3600.0, 86401.0, 10.0]
        assert [e.reason for e in got] == [r.reason for r in rows]
