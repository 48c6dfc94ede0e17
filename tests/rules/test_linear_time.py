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
    "dovecot-worker": SYSLOG
    + b"dovecot: auth-worker(1): pam("
    + b",1.2.3.4,master,<a>): unknown user " * 1800,
    "dovecot-passwd-file": SYSLOG
    + b"dovecot: auth: passwd-file("
    + b",1.2.3.4): pam_authenticate() failed: x" * 1500,
    "dovecot-verbose": SYSLOG
    + b"dovecot: auth-worker(1): pam(,1.2.3.4): unknown user (given password: "
    + b"(given password" * 4300,
    "mailscanner-score": SYSLOG
    + b"MailScanner[1]: Message x from 1.2.3.4 (a@b) to c is spam"
    + b", score=1 (score=" * 3800,
    "mailscanner-blacklisted": SYSLOG
    + b"MailScanner[1]: Message x from 1.2.3.4 (a@b) to c is spam (blacklisted)"
    + b" score=x" * 8000,
    "mailscanner-sender": SYSLOG
    + b"MailScanner[1]: Message x from 1.2.3.4 ("
    + b"a@b" * 21000
    + b" is spam (blacklisted) score=30",
    "nginx-mail-clients": b"2024/01/02 03:04:05 [info] 1#1: *1 client login failed: "
    + b'"x" while in http auth state'
    + b", client: 1.2.3.4, server: 0.0.0.0:25" * 1700,
    "nginx-mail-login": b"2024/01/02 03:04:05 [info] 1#1: *1 client login failed: "
    + b'"x" while y, client: 1.2.3.4, server: 0.0.0.0:25, login: "'
    + b"a, client" * 7000,
    "nginx-mail-reason": b"2024/01/02 03:04:05 [info] 1#1: *1 client login failed: "
    + b'"'
    + b'x" while , client' * 4000,
    "iptables": SYSLOG + b"kernel: IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 " + b"PROTO=TCP " * 6000,
    "postfix": SYSLOG + b"postfix/smtpd[1]: warning: " + b"x[1.2.3.4]: " * 5000,
    "postfix-reply": SYSLOG
    + b"postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[1.2.3.4]: 504 5.5.2 <"
    + b">: x" * 15000
    + b" Helo command rejected Relay access denied; ",
    "postfix-reply-brackets": SYSLOG
    + b"postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[1.2.3.4]: 504 5.5.2 "
    + b"<>: " * 15000
    + b"Helo command rejected",
    "postfix-program": SYSLOG + b"a/" * 30000 + b"smtpd: NOQUEUE: reject: authentication failed",
    "postfix-honeypot": SYSLOG
    + b"postfix/smtpd[1]: warning: x[1.2.3.4]: SASL LOGIN authentication failed:"
    + b" sasl_username=nonexistent_user_1" * 1900,
    "postfix-lost": SYSLOG + b"postfix/smtpd[1]: lost connection after X (" + b"a " * 32000,
    "postscreen": SYSLOG + b"postfix/postscreen[1]: PREGREET 1 after " + b"1" * 64000,
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
