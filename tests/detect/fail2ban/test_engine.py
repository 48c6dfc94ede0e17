"""fail2ban matching semantics inside the Detector, and shieldwall's safety on top."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shieldwall.detect import Detector, Rule
from shieldwall.detect.fail2ban.engine import MAX_OTHER_ADDRESSES
from shieldwall.errors import RuleError
from shieldwall.model import parse_address

NOW = datetime(2005, 8, 14, 10, 0, 0, tzinfo=UTC)
PREFIX = r"^\s*\S+ demo\[<F-MLFID>\d+</F-MLFID>\]: <F-CONTENT>.+</F-CONTENT>$"


def _rule(*failregex: str, **kwargs: object) -> Rule:
    return Rule(name="demo", failregex=failregex, dialect="fail2ban", **kwargs)  # type: ignore[arg-type]


def _run(rule: Rule, *lines: str) -> tuple[list[tuple[int, str, int]], Detector]:
    """Feed lines one by one; (line number, source, pattern) of every hit."""
    det = Detector([rule])
    hits = []
    for number, line in enumerate(lines, 1):
        hits += [(number, str(h.source), h.pattern) for h in det.feed(line.encode(), NOW).hits]
    return hits, det


def test_the_date_is_cut_out_before_matching_and_gives_the_time() -> None:
    rule = _rule(r"^ host demo: bad login from <HOST>$", datepattern="{^LN-BEG}")
    det = Detector([rule])
    hits = det.feed(b"Jul 19 18:11:50 host demo: bad login from 192.0.2.1", NOW).hits
    assert [(str(h.source), h.at) for h in hits] == [
        ("192.0.2.1", datetime(2005, 7, 19, 18, 11, 50, tzinfo=UTC))
    ]


def test_prefregex_content_failregex_order_and_ignoreregex() -> None:
    rule = _rule(
        "^bad login from <HOST>$",
        "^bad <F-USER>\\S+</F-USER> from <HOST>$",
        prefregex=PREFIX,
        ignoreregex=("from 192\\.0\\.2\\.99",),
        datepattern="{NONE}",
    )
    hits, det = _run(
        rule,
        "h demo[1]: bad login from 192.0.2.1",
        "h demo[2]: bad alice from 2001:db8::7",
        "h other[3]: bad login from 192.0.2.3",  # prefregex does not match
        "h demo[4]: bad login from 192.0.2.99",  # ignored
    )
    assert hits == [(1, "192.0.2.1", 0), (2, "2001:db8::7", 1)]
    assert det.counters.get("ignored") == 1


def test_host_names_and_malformed_addresses_are_skipped_and_counted() -> None:
    hits, det = _run(
        _rule("^fail from <HOST>$", datepattern="{NONE}"),
        "fail from attacker.example.com",
        "fail from 192.030.0.6",  # leading zeros: refused, never read as octal
        "fail from 999.1.2.3",
    )
    assert hits == []
    assert det.counters.get("dns_host") == 1
    assert det.counters.get("invalid_host") == 2


def test_two_readings_of_a_line_are_refused() -> None:
    # fail2ban's pam-generic shape: ruser and user are attacker-controlled.
    rule = _rule(
        "^ruser=(?:\\S*|.*?) rhost=<HOST>(?:\\s+user=(?:\\S*|.*?))?\\s*$",
        datepattern="{NONE}",
    )
    hits, det = _run(
        rule,
        "ruser=bob rhost=192.0.2.1 user=bob",
        # fail2ban picks 6.6.6.6 here: the attacker chose it with ruser='a rhost=6.6.6.6 user='
        "ruser=a rhost=6.6.6.6 user= rhost=192.0.2.2 user=b",
    )
    assert hits == [(1, "192.0.2.1", 0)]
    assert det.counters.get("ambiguous_host") == 1


def test_unanchored_regex_with_the_same_context_after_the_host_is_refused() -> None:
    rule = _rule("^login failed for \\S+ from <HOST>", datepattern="{NONE}")
    hits, det = _run(
        rule,
        "login failed for bob from 192.0.2.1 port 22",
        "login failed for a from 6.6.6.6 from 192.0.2.2 port 22",
        "login failed for bob from 192.0.2.3 (via proxy 10.0.0.1)",  # other context: fine
    )
    assert hits == [(1, "192.0.2.1", 0), (3, "192.0.2.3", 0)]
    assert det.counters.get("ambiguous_host") == 1


def test_a_text_with_too_many_other_addresses_is_ambiguous() -> None:
    rule = _rule("^x <HOST> .*$", datepattern="{NONE}")
    others = " ".join(f"10.0.0.{i}" for i in range(MAX_OTHER_ADDRESSES + 1))
    hits, det = _run(rule, f"x 192.0.2.1 {others}")
    assert hits == []
    assert det.counters.get("ambiguous_host") == 1


def test_mlfid_attributes_a_later_line_and_helpers_are_not_failures() -> None:
    rule = _rule(
        "^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>",
        "^Too many authentication failures",
        "^<F-NOFAIL><F-MLFFORGET>Connection closed</F-MLFFORGET></F-NOFAIL>",
        prefregex=PREFIX,
        datepattern="{NONE}",
    )
    hits, _ = _run(
        rule,
        "h demo[7]: Connection from 192.0.2.5",  # helper: remembers the address
        "h demo[8]: Too many authentication failures",  # no address known for pid 8 yet
        "h demo[7]: Too many authentication failures",  # pid 7: the address of line 1
        "h demo[7]: Connection closed",  # forget pid 7
        "h demo[7]: Too many authentication failures",  # nothing known any more
    )
    assert hits == [(3, "192.0.2.5", 1)]


def test_a_pending_failure_is_completed_by_the_helper_that_brings_the_address() -> None:
    rule = _rule(
        "^User \\S+ not allowed because account is locked",
        "^<F-NOFAIL>Received <F-MLFFORGET>disconnect</F-MLFFORGET></F-NOFAIL> from <HOST>",
        prefregex=PREFIX,
        datepattern="{NONE}",
    )
    hits, _ = _run(
        rule,
        "h demo[9]: User root not allowed because account is locked",
        "h demo[9]: Received disconnect from 192.0.2.9",
        "h demo[10]: Received disconnect from 192.0.2.10",  # a plain helper: no failure
    )
    assert hits == [(2, "192.0.2.9", 1)]


def test_success_after_several_user_names_is_still_a_failure() -> None:
    rule = _rule(
        "^<F-NOFAIL>Failed</F-NOFAIL> password for <F-USER>\\S+</F-USER> from <HOST>$",
        "^<F-MLFFORGET><F-MLFGAINED>Accepted</F-MLFGAINED></F-MLFFORGET> for <F-USER>\\S+"
        "</F-USER> from <HOST>$",
        prefregex=PREFIX,
        datepattern="{NONE}",
    )
    hits, _ = _run(
        rule,
        "h demo[1]: Failed password for alice from 192.0.2.1",
        "h demo[1]: Accepted for alice from 192.0.2.1",  # same user: a success
        "h demo[2]: Failed password for root from 192.0.2.2",
        "h demo[2]: Failed password for admin from 192.0.2.2",  # a second user name
        "h demo[2]: Accepted for admin from 192.0.2.2",
    )
    assert [(n, s) for n, s, _ in hits] == [(4, "192.0.2.2"), (5, "192.0.2.2")]


def test_maxlines_buffer_multi_line_failure_takes_the_last_date() -> None:
    rule = _rule(
        "^.*\\nWARNING: Authentication attempt from <HOST> failed\\.$",
        maxlines=2,
        datepattern="^%b %d, %ExY %I:%M:%S %p\n^WARNING:()**",
    )
    det = Detector([rule])
    assert not det.feed(b"Apr 15, 2013 8:34:08 PM org.example warn", NOW).hits
    hits = det.feed(b"WARNING: Authentication attempt from 192.0.2.0 failed.", NOW).hits
    assert [(str(h.source), h.at) for h in hits] == [
        ("192.0.2.0", datetime(2013, 4, 15, 20, 34, 8, tzinfo=UTC))
    ]
    # the matched lines left the buffer: the same pair is not matched twice
    assert not det.feed(b"WARNING: something else", NOW).hits


def test_block_feeding_gives_the_line_by_line_result() -> None:
    rule = _rule("^<F-NOFAIL>hello</F-NOFAIL> <HOST>", "^fail", prefregex=PREFIX)
    lines = [
        b"h demo[1]: hello 192.0.2.1",
        b"h demo[1]: fail",
        b"h demo[2]: fail",
        b"h demo[2]: hello 192.0.2.2",
        b"h demo[3]: hello 192.0.2.3",
        b"h demo[3]: fail",
    ]
    one_by_one = Detector([rule])
    expected = [h for line in lines for h in one_by_one.feed(line, NOW).hits]
    assert [str(h.source) for h in expected] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    batch = Detector([rule]).feed_many(lines, NOW).hits
    assert [(h.source, h.pattern, h.line) for h in batch] == [
        (h.source, h.pattern, h.line) for h in expected
    ]


def test_explain_says_why() -> None:
    rule = _rule("^fail from <HOST>$", prefregex="^<F-CONTENT>.+</F-CONTENT>$")
    det = Detector([rule])
    reasons = {
        line: det.explain(line, NOW)[0].reason
        for line in ("fail from 192.0.2.1", "fail from a.example", "nothing")
    }
    assert reasons == {
        "fail from 192.0.2.1": "hit",
        "fail from a.example": "dns-host",
        "nothing": "no-match",
    }
    assert det.explain("fail from 192.0.2.1", NOW)[0].source == parse_address("192.0.2.1")


def test_distinct_takes_a_field_capture() -> None:
    rule = _rule(
        "^fail <F-USER>\\S+</F-USER> from <HOST>$",
        bucket="leaky",
        capacity=2,
        leakspeed=60.0,
        distinct="user",
        datepattern="{NONE}",
    )
    det = Detector([rule])
    alerts = [
        det.feed(f"fail {user} from 192.0.2.1".encode(), NOW).alerts
        for user in ("a", "a", "b", "c")
    ]
    assert [len(a) for a in alerts] == [0, 0, 0, 1]


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"failregex": ("^no address here$",)}, "no <HOST>, <ADDR>, <F-ID> or <F-MLFID>"),
        ({"prefix": "^x"}, "prefix: not for dialect fail2ban"),
        ({"prefilter": ("x",)}, "prefilter: not for dialect fail2ban"),
        ({"datepattern": "%Q"}, "unknown directive"),
        ({"maxlines": 0}, "maxlines: must be between 1 and 1000"),
        ({"distinct": "user"}, 'only for bucket = "leaky"'),
        ({"dialect": "crowdsec"}, "unknown 'crowdsec'"),
    ],
)
def test_malformed_fail2ban_rules_are_clear_errors(kwargs: dict[str, object], why: str) -> None:
    base: dict[str, object] = {"name": "demo", "failregex": ("^x <HOST>$",), "dialect": "fail2ban"}
    with pytest.raises(RuleError, match=why):
        Rule(**{**base, **kwargs})  # type: ignore[arg-type]


def test_native_rules_refuse_fail2ban_keys() -> None:
    with pytest.raises(RuleError, match='need "fail2ban"'):
        Rule(name="x", failregex=("^x <HOST>$",), prefregex="^x")


def test_anchored_failregex_are_joined_and_keep_their_order() -> None:
    """All failregex anchored: one joined regex finds the first that matches, exactly as
    searching them in turn (both regexes below read ``bad login from …``)."""
    rule = _rule(
        "^bad (?P<kind>login) from <HOST>$",
        "^bad (?P<kind>\\S+) from <HOST>$",
        "^bad (?P<w>\\S+) from <HOST> \\((?P=w)\\)$",
        prefregex=PREFIX,
        datepattern="{NONE}",
    )
    assert rule.fail2ban is not None
    assert rule.fail2ban.union is not None
    hits, _ = _run(
        rule,
        "h demo[1]: bad login from 192.0.2.1",
        "h demo[2]: bad key from 192.0.2.2",
        "h demo[3]: bad key from 192.0.2.3 (key)",
        "h demo[4]: good key from 192.0.2.4",
    )
    assert hits == [(1, "192.0.2.1", 0), (2, "192.0.2.2", 1), (3, "192.0.2.3", 2)]


def test_unanchored_failregex_are_not_joined() -> None:
    from shieldwall.detect.fail2ban.engine import CompiledFilter

    anchored = CompiledFilter.build("t", ["^a <HOST>$", "^b <HOST>$"])
    loose = CompiledFilter.build("t", ["^a <HOST>$", "b <HOST>$"])
    branch = CompiledFilter.build("t", ["^a <HOST>$", "^b x|c <HOST>"])
    assert anchored.union is not None
    assert loose.union is None
    assert branch.union is None  # the ^ covers only the first branch
    det = Detector([_rule("^a <HOST>$", "b <HOST>$", datepattern="{NONE}")])
    assert [str(h.source) for h in det.feed(b"x b 192.0.2.9", NOW).hits] == ["192.0.2.9"]


def test_a_line_that_makes_a_regex_backtrack_for_ever_is_skipped_and_counted() -> None:
    """``(?:a|a)*`` before a mismatch tries 2**n paths; the search is cut off after
    REGEX_TIMEOUT, the line skipped and counted, and the next line is matched as usual."""
    rule = _rule(r"^login (?:a|a)* from <HOST>$", datepattern="{NONE}")
    det = Detector([rule])
    crafted = b"login " + b"a" * 60 + b"! from 192.0.2.66"
    assert det.feed(crafted, NOW).hits == []
    assert det.counters.get("regex_timeout") == 1
    hits = det.feed(b"login aaa from 192.0.2.7", NOW).hits
    assert [str(h.source) for h in hits] == ["192.0.2.7"]
    why = det.explain(crafted, NOW)[0]
    assert why.reason == "regex-timeout"


def test_a_connection_id_is_forgotten_five_minutes_later_as_in_fail2ban() -> None:
    """sshd.conf (upstream, unmodified): a failure for one user, then a successful login for
    another user on the same ``sshd[pid]`` is a failure ("more than one user name") — unless
    the id was cached more than five minutes before (on the detector's clock: a reused pid)."""
    from shieldwall.detect.fail2ban import load_fail2ban_rule
    from tests.conftest import corpora_dir, skip_or_fail

    conf = corpora_dir() / "fail2ban" / "filter.d" / "sshd.conf"
    if not conf.is_file():
        skip_or_fail(f"no fail2ban corpus at {conf} (set SHIELDWALL_CORPORA)")
    rule = load_fail2ban_rule(str(conf))[0]
    fail = b"Aug 14 09:00:00 h sshd[42]: Failed password for alice from 192.0.2.1 port 1 ssh2"
    ok = b"Aug 14 09:10:00 h sshd[42]: Accepted password for bob from 192.0.2.2 port 2 ssh2"
    soon = Detector([rule])
    soon.feed(fail, NOW)
    assert [str(h.source) for h in soon.feed(ok, NOW + timedelta(seconds=299)).hits] == [
        "192.0.2.2"
    ]
    later = Detector([rule])
    later.feed(fail, NOW)
    assert later.feed(ok, NOW + timedelta(seconds=300)).hits == []
