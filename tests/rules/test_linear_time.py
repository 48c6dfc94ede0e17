"""Every shipped rule stays linear on crafted 64 KiB lines (no catastrophic backtracking).

tests/detect/test_detector.py checks the first three rules; this covers all of them,
including those written for the CrowdSec scenarios, with lines aimed at their patterns.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from shieldwall.detect import Detector, builtin_rule, builtin_rule_names

NOW = datetime(2024, 6, 1, tzinfo=UTC)
SYSLOG = b"Jan  2 03:04:05 h "
ACCESS = b'1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "'

PATHOLOGICAL = {
    "ssh-from": SYSLOG + b"sshd[1]: Failed password for " + b" from 1.2.3.4 port 1" * 3200,
    "ssh-close": SYSLOG
    + b"sshd[1]: Connection closed by invalid user "
    + b"1.2.3.4 port 1 " * 4300,
    "ssh-invalid": SYSLOG + b"sshd[1]: Invalid user " + b" from 1.2.3.4" * 4300,
    "ssh-user": SYSLOG + b"sshd[1]: User " + b" from 1.2.3.4 port 1" * 3200,
    "ssh-pam": SYSLOG
    + b"sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
    + b"ruser= rhost=1.2.3.4"
    + b" user=" * 9000,
    "ssh-refused": SYSLOG + b"sshd[1]: refused connect from " + b" (1.2.3.4" * 8000,
    "ssh-kex": SYSLOG + b"sshd[1]: Unable to negotiate with " + b"1.2.3.4 port 1: " * 4000,
    "http-dots": ACCESS + b"GET " + b"/." * 32000 + b' HTTP/1.1" 404 ',
    "http-well-known": ACCESS + b"GET " + b"/.well-known" * 5000 + b' HTTP/1.1" 404 ',
    "http-wp": ACCESS + b"GET " + b"/wp-" * 16000 + b' HTTP/1.1" 404 ',
    "http-plugins": ACCESS + b"GET " + b"/wp-content/plugins/" * 3000 + b'x HTTP/1.1" 404 ',
    "http-wpconfig": ACCESS + b"GET " + b"wp-config.php/" * 4500 + b' HTTP/1.1" 404 ',
    "http-escapes": ACCESS + b"\\x" * 32000 + b'" 404 ',
    "http-stamps": b"1.2.3.4 - " + b'[01/Jan/2024:00:00:00 +0000] "' * 2000 + b'" 404 ',
    "http-static": ACCESS + b"GET " + b"/x.js" * 13000 + b' HTTP/1.1" 404 ',
    "http-post": ACCESS + b"POST " + b"/wp-login.php" * 5000 + b'" 200 ',
    "dovecot-rip": SYSLOG
    + b"dovecot: imap-login: Disconnected (auth failed): user=<"
    + b", rip=1.2.3.4" * 5000,
    "dovecot-colons": SYSLOG + b"dovecot: imap-login: auth failed" + b": user=" * 8000,
    "iptables": SYSLOG + b"kernel: IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 " + b"PROTO=TCP " * 6000,
    "postfix": SYSLOG + b"postfix/smtpd[1]: warning: " + b"x[1.2.3.4]: " * 5000,
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_all_shipped_rules_stay_linear(name: str) -> None:
    """A crafted 64 KiB line through every shipped rule costs milliseconds, not seconds."""
    detector = Detector([builtin_rule(rule) for rule in builtin_rule_names()])
    raw = PATHOLOGICAL[name][:65536]
    start = time.perf_counter()
    detector.feed(raw, NOW)

    assert time.perf_counter() - start < 0.3
