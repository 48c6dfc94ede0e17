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
    # many hidden segments and no closing quote: each "/." was a new start (1.1 s before)
    "http-hidden": ACCESS + b"GET " + b"/.x" * 20000,
    "http-hidden-encoded": ACCESS + b"GET " + b"/.%2e" * 13000,
    "http-dos-slashes": ACCESS + b"GET " + b"/1" * 32000 + b' HTTP/1.1" 404 ',
    "http-dos-query": ACCESS + b"GET /" + b"? HTTP/1" * 8000 + b'" 404 ',
    "http-dos-digits": ACCESS + b"GET /" + b"a.js?12345678" * 5000 + b' HTTP/1.1" 200 ',
    "http-dos-ext": ACCESS + b"GET /ABCDEF." + b" HTTP/1" * 9000 + b'" 200 ',
    "http-dos-version": ACCESS + b"GET /" + b" HTTP/1.1" * 7000 + b'" 400 ',
    "http-author": ACCESS + b"GET /" + b"?author" * 9000 + b' HTTP/1.1" 200 ',
    "http-author-last": ACCESS + b"GET /" + b"?author=" * 8000 + b"?",
    "http-dfind": ACCESS + b"GET " + b"/w00tw00t.at.ISC.SANS.DFind?" * 2300 + b"x",
    "http-dfind-segment": ACCESS + b"GET /" + b"w00tw00t.at.ISC.SANS.DFind" * 2400 + b"/x?",
    "http-traversal": ACCESS + b"GET " + b"/%2e%2e" * 9000 + b" HTTP/1.1",
    "http-traversal-dots": ACCESS + b"GET " + b"/.%2e" * 13000 + b' HTTP/1.1" 404 ',
    "apache-invalid-uri": SYSLOG
    + b"apache2: [core:error] [pid 1] [client 1.2.3.4:1] AH00126: Invalid URI in request GET "
    + b"/%2e%2e" * 9000
    + b" HTTP/1.1 x",
    "http-connect": ACCESS + b"CONNECT " + b"a" * 64000,
    "http-vhost": b"a" * 64000 + b" 1.2.3.4 - ",
    "http-vhost-heads": b"www.example.org " + b"1.2.3.4 - " * 6000,
    "nginx-limit": b"2024/01/02 03:04:05 [error] 1#1: *1 limiting requests, excess: 1.000 by zone "
    + b'"z", client: 1.2.3.4, server: '
    + b"x" * 64000,
    "dovecot-rip": SYSLOG
    + b"dovecot: imap-login: Disconnected (auth failed): user=<"
    + b", rip=1.2.3.4" * 5000,
    "dovecot-colons": SYSLOG + b"dovecot: imap-login: auth failed" + b": user=" * 8000,
    "iptables": SYSLOG + b"kernel: IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 " + b"PROTO=TCP " * 6000,
    "postfix": SYSLOG + b"postfix/smtpd[1]: warning: " + b"x[1.2.3.4]: " * 5000,
    "endlessh": SYSLOG + b"endlessh[1]: ACCEPT host=" + b"1.2.3.4 port=1 fd=1 " * 4000,
    "endlessh-stamps": b"2020-12-08T06:28:44Z h endlessh: " * 1800 + b"ACCEPT host=",
    "cowrie": SYSLOG
    + b"cowrie[1]: 2020-12-08T06:28:44+0000 [x] New connection: "
    + b"::ffff:1.2.3.4:1 (" * 3500,
    "cowrie-system": SYSLOG
    + b"cowrie[1]: 2020-12-08T06:28:44+0000 ["
    + b"x:" * 30000
    + b"New connection: ",
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_all_shipped_rules_stay_linear(name: str) -> None:
    """A crafted 64 KiB line through every shipped rule costs milliseconds, not seconds."""
    detector = Detector([builtin_rule(rule) for rule in builtin_rule_names()])
    raw = PATHOLOGICAL[name][:65536]
    start = time.perf_counter()
    detector.feed(raw, NOW)

    assert time.perf_counter() - start < 0.3
