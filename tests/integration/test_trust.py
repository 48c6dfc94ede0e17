"""Transport and trust between real processes: the council over TLS with certificates the
test makes (trustme), signed stream messages refused when tampered on the way, the council
key pinned on first contact, and decisions a member never enforces whatever the council says.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trustme

from shieldwall.loopback.alliance import LocalAlliance, Member, free_port
from shieldwall.wire.signing import generate
from tests.integration.cli import shieldwall
from tests.integration.test_alliance import enforced_set, wait_for

pytestmark = pytest.mark.slow

ATTACKER = "203.0.113.77"


def _pem(tmp: Path, ca: trustme.CA, name: str) -> tuple[str, str]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert.private_key_pem.write_to_path(str(key))
    with chain.open("wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    return str(chain), str(key)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    other = trustme.CA()
    other.cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    cert, key = _pem(tmp_path, ca, "council")
    cert2, key2 = _pem(tmp_path, ca, "renewed")
    return {
        "ca": str(tmp_path / "ca.pem"),
        "other_ca": str(tmp_path / "other-ca.pem"),
        "cert": cert,
        "key": key,
        "renewed_cert": cert2,
        "renewed_key": key2,
    }


def _serial(port: int, ca: str) -> int:
    """The serial number of the certificate a new connection to the council is served."""
    ctx = ssl.create_default_context(cafile=ca)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    return x509.load_der_x509_certificate(der).serial_number


def test_members_follow_a_council_over_tls_and_the_operator_needs_its_ca(
    tmp_path: Path, pki: dict[str, str]
) -> None:
    alliance = LocalAlliance(
        n_members=2,
        root=tmp_path / "a",
        tls_cert=pki["cert"],
        tls_key=pki["key"],
        ca=pki["ca"],
    )
    with alliance:
        assert alliance.url.startswith("https://")
        first, second = alliance.members
        alliance.attack(first, ATTACKER, 5)
        wait_for(lambda: ATTACKER in enforced_set(second), what="the decision at member-2")
        token = str(alliance.root / "council" / "data" / "operator.token")  # type: ignore[operator]
        listed = shieldwall(
            "decisions", "list", "--council", alliance.url, "--token-file", token, "--ca", pki["ca"]
        )
        assert listed.returncode == 0, listed.stderr
        assert ATTACKER in listed.stdout
        # the council's certificate chains to a CA the system does not trust: refused,
        # in one line, without a traceback
        refused = shieldwall("decisions", "list", "--council", alliance.url, "--token-file", token)
        assert refused.returncode != 0
        assert "certificate verify failed" in refused.stderr
        assert "Traceback" not in refused.stderr
        wrong = shieldwall(
            "decisions", "list", "--council", alliance.url, "--token-file", token,
            "--ca", pki["other_ca"],
        )  # fmt: skip
        assert wrong.returncode != 0
        assert "certificate verify failed" in wrong.stderr


def test_an_agent_refuses_a_council_whose_certificate_it_cannot_verify(
    tmp_path: Path, pki: dict[str, str]
) -> None:
    alliance = LocalAlliance(
        n_members=0, root=tmp_path / "a", tls_cert=pki["cert"], tls_key=pki["key"], ca=pki["ca"]
    )
    with alliance:
        m = alliance.add_member("member-x")
        text = m.config.read_text().replace(pki["ca"], pki["other_ca"])
        m.config.write_text(text)
        alliance.start_agent(m)
        log = m.dir / "agent.log"
        wait_for(
            lambda: log.exists() and "certificate verify failed" in log.read_text(),
            what="the agent's refusal",
        )
        assert alliance.stats().get("streams.live", 0) == 0


def test_a_renewed_certificate_is_served_after_sighup_and_streams_stay(
    tmp_path: Path, pki: dict[str, str]
) -> None:
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    live_cert.write_bytes(Path(pki["cert"]).read_bytes())
    live_key.write_bytes(Path(pki["key"]).read_bytes())
    alliance = LocalAlliance(
        n_members=1,
        root=tmp_path / "a",
        tls_cert=str(live_cert),
        tls_key=str(live_key),
        ca=pki["ca"],
    )
    with alliance:
        before = _serial(alliance.port, pki["ca"])
        live_cert.write_bytes(Path(pki["renewed_cert"]).read_bytes())
        live_key.write_bytes(Path(pki["renewed_key"]).read_bytes())
        alliance.council_proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_for(lambda: _serial(alliance.port, pki["ca"]) != before, what="the renewed cert")
        assert alliance.council_proc.poll() is None  # type: ignore[union-attr]
        # the member's stream, opened before, still delivers
        r = alliance.operator("POST", "/v1/decisions", {"scope": "198.51.100.9", "reason": "t"})
        assert r.status_code in (200, 201), r.text
        m = alliance.members[0]
        wait_for(lambda: "198.51.100.9" in enforced_set(m), what="a decision after the reload")
        assert alliance.stats().get("streams.live") == 1


def test_mutual_tls_requires_a_client_certificate(tmp_path: Path, pki: dict[str, str]) -> None:
    ca = trustme.CA()
    (tmp_path / "clients.pem").write_bytes(ca.cert_pem.bytes())
    client = ca.issue_cert("member-1")
    client.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "client.pem"))
    port = free_port()
    cdir = tmp_path / "council"
    cdir.mkdir()
    (cdir / "council.toml").write_text(
        f'data-dir = "data"\nlisten = "127.0.0.1:{port}"\ntls-cert = "{pki["cert"]}"\n'
        f'tls-key = "{pki["key"]}"\ntls-client-ca = "{tmp_path / "clients.pem"}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "shieldwall", "council", "--config", str(cdir / "council.toml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"https://127.0.0.1:{port}"
        token = cdir / "data" / "operator.token"
        wait_for(lambda: token.exists(), what="the council's start")
        base = ["stats", "--council", url, "--token-file", str(token), "--ca", pki["ca"]]

        def answered() -> bool:
            return shieldwall(*base, "--cert", str(tmp_path / "client.pem"), "--key",
                        str(tmp_path / "client.pem")).returncode == 0  # fmt: skip

        wait_for(answered, what="an answer to a client with a certificate")
        without = shieldwall(*base)
        assert without.returncode != 0
        assert "Traceback" not in without.stderr
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_council_warns_when_it_listens_beyond_loopback_in_clear(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "council.toml").write_text(f'data-dir = "data"\nlisten = "0.0.0.0:{port}"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "shieldwall", "council", "--config", "council.toml"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(3)]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    text = "".join(lines)
    assert "WARNING" in text, text
    assert "without TLS" in text
    assert "tls-cert" in text
    assert "council key" in text


# -- signed stream messages ----------------------------------------------------------------


class _Tamper(threading.Thread):
    """A TCP relay between agents and the council that rewrites ``old`` into ``new`` (same
    length: HTTP framing stays valid) in what the council sends: someone on the path."""

    def __init__(self, upstream: int, old: bytes, new: bytes) -> None:
        super().__init__(daemon=True)
        assert len(old) == len(new)
        self.upstream, self.old, self.new = upstream, old, new
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.rewrites = 0

    def run(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, rewrite: bool) -> None:
        try:
            while data := src.recv(65536):
                if rewrite and self.old in data:
                    data = data.replace(self.old, self.new)
                    self.rewrites += 1
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


def _behind(alliance: LocalAlliance, m: Member, port: int) -> None:
    """Point a member's agent at another port (the relay), then start it."""
    text = m.config.read_text().replace(f":{alliance.port}", f":{port}")
    m.config.write_text(text)
    alliance.start_agent(m)


def test_a_tampered_stream_batch_is_refused_and_nothing_of_it_applied(tmp_path: Path) -> None:
    forged = "203.0.113.78"
    with LocalAlliance(n_members=1, root=tmp_path / "a") as alliance:
        relay = _Tamper(alliance.port, ATTACKER.encode(), forged.encode())
        relay.start()
        try:
            victim = alliance.add_member("member-behind")
            _behind(alliance, victim, relay.port)
            alliance.wait_streams(2)
            r = alliance.operator("POST", "/v1/decisions", {"scope": ATTACKER, "reason": "t"})
            assert r.status_code in (200, 201)
            honest = alliance.members[0]
            wait_for(lambda: ATTACKER in enforced_set(honest), what="the honest member")
            wait_for(lambda: victim.counter("stream.forged") >= 1, what="the refusal")
            assert relay.rewrites >= 1
            applied = enforced_set(victim)
            assert forged not in applied
            assert ATTACKER not in applied
            log = (victim.dir / "agent.log").read_text()
            assert "stream.forged" in log
            assert "ERROR" in log
        finally:
            relay.close()


def test_an_agent_without_council_key_pins_the_first_and_refuses_another(
    tmp_path: Path,
) -> None:
    with LocalAlliance(n_members=1, root=tmp_path / "a", pin=False) as alliance:
        m = alliance.members[0]
        pinned = m.dir / "state" / "council.pub"
        assert pinned.read_text().strip() == alliance.council_key
        assert "council.key.pinned" in (m.dir / "agent.log").read_text()
        # the council comes back with another key: its stream is not this member's council's
        alliance.stop_council()
        key_file = alliance.root / "council" / "data" / "council.key"  # type: ignore[operator]
        key_file.write_text(generate()[0] + "\n")
        alliance.start_council()
        r = alliance.operator("POST", "/v1/decisions", {"scope": ATTACKER, "reason": "t"})
        assert r.status_code in (200, 201)
        wait_for(lambda: m.counter("stream.forged") >= 1, what="the refusal")
        assert ATTACKER not in enforced_set(m)


def test_a_member_never_enforces_what_covers_its_protected_ranges_or_its_council(
    tmp_path: Path,
) -> None:
    with LocalAlliance(n_members=1, root=tmp_path / "a") as alliance:
        m = alliance.members[0]
        for scope in ("0.0.0.0/1", "10.0.0.0/8", "127.0.0.1"):  # the council is 127.0.0.1
            body = {"scope": scope, "reason": "forced", "force": True}
            r = alliance.operator("POST", "/v1/decisions", body)
            assert r.status_code in (200, 201), r.text
        r = alliance.operator("POST", "/v1/decisions", {"scope": "198.51.100.7", "reason": "t"})
        assert r.status_code in (200, 201)
        wait_for(lambda: "198.51.100.7" in enforced_set(m), what="the ordinary decision")
        applied = enforced_set(m)
        assert not applied & {"0.0.0.0/1", "10.0.0.0/8", "127.0.0.1"}
        assert m.counter("decisions.protected") == 3
        log = (m.dir / "agent.log").read_text()
        assert "decision.protected" in log
        assert "not enforced" in log
        # and after a restart (the journal replayed), still not
        alliance.stop_agent(m)
        alliance.start_agent(m)
        alliance.wait_streams(1)
        last = json.loads(m.enforce_log.read_text().splitlines()[-1])
        assert "198.51.100.7" in enforced_set(m), last
        assert not enforced_set(m) & {"0.0.0.0/1", "10.0.0.0/8", "127.0.0.1"}


def test_agent_config_refuses_a_malformed_council_key_in_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    key = tmp_path / "member.key"
    key.write_text(generate()[0] + "\n")
    os.chmod(key, 0o600)
    cfg.write_text(
        f'member = "m"\nkey-file = "{key}"\ncouncil = "http://127.0.0.1:1"\n'
        f'state-dir = "{tmp_path / "s"}"\ncouncil-key = "not-a-key"\n'
        f'[[watch]]\npath = "{tmp_path / "log"}"\nrules = ["sshd"]\n'
        '[[enforcer]]\nkind = "log"\n'
    )
    out = shieldwall("agent", "--config", str(cfg))
    assert out.returncode != 0
    assert "council-key: not a public key" in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


# -- membership: revocation ends streams, the agent stops asking, keys rotate ---------------


def _count(path: Path, text: str) -> int:
    return path.read_text().count(text) if path.exists() else 0


def test_revocation_ends_the_stream_at_once_and_the_agent_stops_asking(tmp_path: Path) -> None:
    with LocalAlliance(n_members=2, root=tmp_path / "a") as alliance:
        kept, gone = alliance.members
        r = alliance.operator("POST", f"/v1/members/{gone.name}/revoke")
        assert r.status_code == 200, r.text
        wait_for(lambda: alliance.stats().get("streams.live") == 1, 3, "the stream's end")
        log = gone.dir / "agent.log"
        wait_for(lambda: _count(log, "council.refused") >= 1, what="the agent's ERROR")
        lost_before = _count(log, "stream.lost")
        time.sleep(3)  # it used to retry the 403 every 5 s, forever
        assert _count(log, "ERROR") == 1
        assert _count(log, "council.refused") == 1
        assert _count(log, "stream.lost") == lost_before
        assert gone.counter("council.refused.revoked") == 1
        # local defence goes on; the alliance goes on without it
        alliance.attack(kept, ATTACKER, 5)
        wait_for(lambda: ATTACKER in enforced_set(kept), what="the kept member's decision")
        assert ATTACKER not in enforced_set(gone)
        # the revoked name may be enrolled again with a new key
        private, public = generate()
        r = alliance.operator("POST", "/v1/members", {"name": gone.name, "public_key": public})
        assert r.status_code == 201, r.text
        r = alliance.operator("POST", "/v1/members", {"name": kept.name, "public_key": public})
        assert r.status_code == 409
        assert "rekey" in r.json()["detail"]
        alliance.stop_agent(gone)
        (gone.dir / "member.key").write_text(private + "\n")
        alliance.start_agent(gone)
        alliance.wait_streams(2)
        wait_for(lambda: ATTACKER in enforced_set(gone), what="the snapshot at the re-enrolled")


def test_rekey_refuses_the_old_key_and_the_new_one_follows(tmp_path: Path) -> None:
    with LocalAlliance(n_members=1, root=tmp_path / "a") as alliance:
        m = alliance.members[0]
        private, public = generate()
        token = str(alliance.root / "council" / "data" / "operator.token")  # type: ignore[operator]
        out = shieldwall(
            "members", "rekey", m.name, "--public-key", public,
            "--council", alliance.url, "--token-file", token,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert f"rekeyed {m.name}" in out.stdout
        log = m.dir / "agent.log"
        wait_for(lambda: _count(log, "council.refused") >= 1, what="the old key refused")
        assert "bad-signature" in log.read_text()
        alliance.stop_agent(m)
        (m.dir / "member.key").write_text(private + "\n")
        alliance.start_agent(m)
        alliance.wait_streams(1)
        r = alliance.operator("POST", "/v1/decisions", {"scope": ATTACKER, "reason": "t"})
        assert r.status_code in (200, 201)
        wait_for(lambda: ATTACKER in enforced_set(m), what="a decision with the new key")
        audit = alliance.operator("GET", "/v1/audit").json()
        assert any(a["action"] == "member.rekey" and a["subject"] == m.name for a in audit)


# -- history is not news ----------------------------------------------------------------------


def test_a_first_start_on_two_day_old_failures_decides_nothing(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from shieldwall.loopback.alliance import failed_password

    with LocalAlliance(n_members=0, root=tmp_path / "a") as alliance:
        m = alliance.add_member("web1")
        old = datetime.now(UTC) - timedelta(days=2)
        with m.log.open("w") as f:
            for i in range(30):
                f.write(failed_password(old + timedelta(seconds=i), "web1", "203.0.113.40"))
        alliance.start_agent(m)
        alliance.wait_streams(1)
        wait_for(lambda: m.counter("lines.read") == 30, what="the old lines read")
        assert m.counter("stale") == 30
        assert m.counter("alerts") == 0
        assert "hits.stale" in (m.dir / "agent.log").read_text()
        alliance.attack(m, ATTACKER, 5)  # news
        wait_for(lambda: ATTACKER in enforced_set(m), what="the fresh attack's decision")
        scopes = {d["scope"] for d in alliance.active()["decisions"]}
        assert "203.0.113.40" not in scopes
        assert ATTACKER in scopes


# -- protection reaches members ----------------------------------------------------------------


def _local_bans(m: Member) -> set[str]:
    from datetime import UTC, datetime

    from shieldwall.agent.state import AgentState
    from shieldwall.model import scope_str

    state = AgentState(str(m.dir / "state"))
    try:
        return {scope_str(s) for s in state.local_bans(datetime.now(UTC))}
    finally:
        state.close()


def test_the_councils_allowlist_lifts_a_local_ban_and_is_never_banned_locally(
    tmp_path: Path,
) -> None:
    # on probation a lone member's alert waits for a quorum: its local ban stays its own
    with LocalAlliance(n_members=1, root=tmp_path / "a", trust="probation") as alliance:
        m = alliance.members[0]
        alliance.attack(m, ATTACKER, 5)
        wait_for(lambda: ATTACKER in enforced_set(m), what="the local ban")
        r = alliance.operator("POST", "/v1/allowlist", {"scope": "203.0.113.0/24", "reason": "x"})
        assert r.status_code == 200, r.text
        wait_for(lambda: ATTACKER not in enforced_set(m), what="the local ban lifted")
        assert ATTACKER not in _local_bans(m)
        assert "ban.lifted" in (m.dir / "agent.log").read_text()
        # from now on the member does not even ban it locally
        alliance.attack(m, "203.0.113.78", 5)
        wait_for(lambda: m.counter("alerts") >= 2, what="the second alert")
        time.sleep(0.5)
        assert "203.0.113.78" not in enforced_set(m)
        assert m.counter("alerts.refused.allowlist") >= 1


def test_a_member_learns_the_councils_allowlist_and_never_bans_it_locally(
    tmp_path: Path,
) -> None:
    treaty = '[treaty]\nallowlist = ["203.0.113.0/24"]\n'
    with LocalAlliance(n_members=1, root=tmp_path / "a", treaty=treaty) as alliance:
        m = alliance.members[0]
        wait_for(lambda: "council.protects" in (m.dir / "agent.log").read_text(), what="it")
        alliance.attack(m, ATTACKER, 5)
        wait_for(lambda: m.counter("alerts") == 1, what="the alert")
        time.sleep(0.5)
        assert ATTACKER not in enforced_set(m)
        assert ATTACKER not in _local_bans(m)
        assert m.counter("alerts.refused.allowlist") == 1


def test_unban_at_the_council_lifts_members_local_bans_and_agent_unban_lifts_its_own(
    tmp_path: Path,
) -> None:
    with LocalAlliance(n_members=2, root=tmp_path / "a", trust="probation") as alliance:
        first, second = alliance.members
        alliance.attack(first, ATTACKER, 5)
        alliance.attack(second, "203.0.113.80", 5)
        wait_for(lambda: ATTACKER in enforced_set(first), what="first's local ban")
        wait_for(lambda: "203.0.113.80" in enforced_set(second), what="second's local ban")
        assert not alliance.active()["decisions"]  # a quorum is awaited: nothing decided
        token = str(alliance.root / "council" / "data" / "operator.token")  # type: ignore[operator]
        out = shieldwall("unban", ATTACKER, "--council", alliance.url, "--token-file", token)
        assert out.returncode == 0, out.stderr
        wait_for(lambda: ATTACKER not in enforced_set(first), what="the council's unban")
        # at the member itself, while its agent runs
        out = shieldwall("agent", "unban", "203.0.113.80", "--config", str(second.config))
        assert out.returncode == 0, out.stderr
        assert "lifted 1 local ban" in out.stdout
        assert "203.0.113.80" not in enforced_set(second)
        assert "203.0.113.80" not in _local_bans(second)
        out = shieldwall("agent", "unban", "203.0.113.80", "--config", str(second.config))
        assert "no local ban" in out.stdout
        bad = shieldwall("agent", "unban", "not-an-ip", "--config", str(second.config))
        assert bad.returncode != 0
        assert "Traceback" not in bad.stderr


def test_a_rule_level_ignoreip_is_never_banned(tmp_path: Path) -> None:
    from tests.conftest import corpora_dir

    sshd = corpora_dir() / "fail2ban" / "filter.d" / "sshd.conf"
    if not sshd.exists():
        pytest.skip("no fail2ban corpus")  # the corpus is always there under CI
    rule = f"{sshd}[ignoreip=203.0.113.0/24 198.51.100.9, maxretry=5]"
    with LocalAlliance(n_members=1, root=tmp_path / "a", rules=(rule,)) as alliance:
        m = alliance.members[0]
        alliance.attack(m, ATTACKER, 5)
        alliance.attack(m, "192.0.2.200", 5)  # not ignored
        wait_for(lambda: "192.0.2.200" in enforced_set(m), what="the other ban")
        assert ATTACKER not in enforced_set(m)
        assert m.counter("alerts.refused.ignoreip") == 1
