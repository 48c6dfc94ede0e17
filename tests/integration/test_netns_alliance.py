"""The whole alliance with real nftables, checked with real packets.

Network namespaces on one bridge (tests/netns.py): the council runs in the hub (192.0.2.10),
members A (192.0.2.20) and B (192.0.2.30) each run a real agent with the nftables enforcer in
their own namespace, and an attacker (192.0.2.66) connects to a TCP service on B. After the
attacker's failed logins are written to A's log, B drops the attacker's packets: asserted by
a connection that times out, not by reading the set.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shieldwall.loopback.alliance import failed_password
from shieldwall.wire.signing import generate
from tests.netns import Network, netns_network, tcp_probe, tcp_probes

pytestmark = [pytest.mark.nft, pytest.mark.slow]

PORT = 2222
ATTACKER, A, B, HUB = "192.0.2.66", "192.0.2.20", "192.0.2.30", "192.0.2.10"
COUNCIL = f"http://{HUB}:8470"
SERVER = f"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {PORT})); s.listen(64); print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"ok"); c.close()
"""


def shieldwall(net: Network, where: str, *args: str) -> str:
    r = net.run(where, [sys.executable, "-m", "shieldwall", *args], check=False)
    assert r.returncode == 0, f"shieldwall {' '.join(args)}: {r.stderr}"
    return r.stdout


def wait(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_agent(net: Network, root: Path, host: str) -> Path:
    name = f"member-{host}"
    mdir = root / name
    mdir.mkdir()
    private, public = generate()
    (mdir / "member.key").write_text(private + "\n")
    (mdir / "auth.log").touch()
    (mdir / "agent.toml").write_text(
        f'member = "{name}"\nkey-file = "member.key"\ncouncil = "{COUNCIL}"\n'
        f'state-dir = "state"\npoll-interval = 0.02\n'
        f'[[watch]]\npath = "auth.log"\nrules = ["sshd"]\n'
        f'[[enforcer]]\nkind = "nftables"\n'
        f'[[enforcer]]\nkind = "log"\npath = "enforced.jsonl"\n'
    )
    address = A if host == "a" else B
    shieldwall(
        net,
        "hub",
        "members",
        "add",
        name,
        "--public-key",
        public,
        "--address",
        address,
        "--council",
        COUNCIL,
        "--token-file",
        str(root / "council" / "operator.token"),
    )
    with open(mdir / "agent.log", "ab") as err:
        net.popen(
            host,
            [sys.executable, "-m", "shieldwall", "agent", "--config", str(mdir / "agent.toml")],
            stderr=err,
            stdout=err,
        )
    return mdir


def test_attack_at_a_is_dropped_by_b_in_the_kernel(tmp_path: Path) -> None:
    hosts = {"attacker": ATTACKER, "a": A, "b": B}
    with netns_network(hosts) as net:
        cdir = tmp_path / "council"
        cdir.mkdir()
        (cdir / "council.toml").write_text(f'data-dir = "."\nlisten = "{HUB}:8470"\n')
        with open(cdir / "council.log", "ab") as err:
            net.popen(
                "hub",
                [
                    sys.executable,
                    "-m",
                    "shieldwall",
                    "council",
                    "--config",
                    str(cdir / "council.toml"),
                ],
                stderr=err,
                stdout=err,
            )
        wait(lambda: tcp_probe(net["hub"].ns, HUB, 8470) == "ok", 20, "the council")
        server = net.popen("b", [sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        # before: the attacker reaches B's service
        assert tcp_probe(net["attacker"].ns, B, PORT, expect=b"ok") == "ok"

        a_dir = start_agent(net, tmp_path, "a")
        b_dir = start_agent(net, tmp_path, "b")
        token = str(cdir / "operator.token")

        def streams() -> int:
            out = shieldwall(
                net, "hub", "stats", "--json", "--council", COUNCIL, "--token-file", token
            )
            return int(json.loads(out).get("streams.live", 0))

        wait(lambda: streams() == 2, 30, "both agents on the stream")
        # both agents set up their nftables table
        for name in ("a", "b"):
            wait(
                lambda n=name: (
                    "table inet shieldwall" in net.run(n, ["nft", "list", "tables"]).stdout
                ),
                10,
                f"{name}'s nftables table",
            )

        with (a_dir / "auth.log").open("a") as f:
            for i in range(5):
                f.write(failed_password(datetime.now(UTC), "member-a", ATTACKER, port=40000 + i))
        t0 = time.monotonic()

        def dropped_at_b() -> bool:
            return tcp_probe(net["attacker"].ns, B, PORT, timeout=0.5, expect=b"ok") == "timeout"

        wait(dropped_at_b, 15, "member B to drop the attacker")
        elapsed = time.monotonic() - t0
        # A banned locally too (its ssh would be port 22; any TCP to A is dropped now)
        assert tcp_probe(net["attacker"].ns, A, PORT, timeout=0.5) == "timeout"
        # B still answers everyone else: member A reaches B's service
        assert tcp_probe(net["a"].ns, B, PORT, expect=b"ok") == "ok"
        # the decision names A and the rule
        decided = json.loads(
            shieldwall(
                net,
                "hub",
                "decisions",
                "list",
                "--json",
                "--council",
                COUNCIL,
                "--token-file",
                token,
            )
        )
        assert [(d["scope"], d["member"]) for d in decided["decisions"]] == [(ATTACKER, "member-a")]
        # an unban reaches the kernel of B again
        shieldwall(net, "hub", "unban", ATTACKER, "--council", COUNCIL, "--token-file", token)
        # the unban lifts the council's decision at B and A's own local ban as well
        wait(
            lambda: tcp_probe(net["attacker"].ns, B, PORT, timeout=0.5, expect=b"ok") == "ok",
            15,
            "member B to accept the attacker again",
        )
        wait(
            lambda: tcp_probe(net["attacker"].ns, A, PORT, timeout=0.5) == "refused",
            15,
            "member A to accept the attacker again (nothing listens there: refused)",
        )
        assert elapsed < 15
        assert (b_dir / "enforced.jsonl").exists()
        print(f"attack at A → dropped at B within {elapsed * 1000:.0f} ms (probe granularity)")


def _start_council(net: Network, root: Path) -> str:
    cdir = root / "council"
    cdir.mkdir()
    (cdir / "council.toml").write_text(f'data-dir = "."\nlisten = "{HUB}:8470"\n')
    with open(cdir / "council.log", "ab") as err:
        net.popen(
            "hub",
            [sys.executable, "-m", "shieldwall", "council", "--config", str(cdir / "council.toml")],
            stderr=err,
            stdout=err,
        )
    wait(lambda: tcp_probe(net["hub"].ns, HUB, 8470) == "ok", 20, "the council")
    return str(cdir / "operator.token")


def test_an_imported_list_of_10k_is_dropped_at_b_and_unbanned_by_file(tmp_path: Path) -> None:
    """10,000 decisions imported at the council; the attacker among them is dropped at B in
    the kernel, and ``unban --file`` of the same list lets it through again."""
    hosts = {"attacker": ATTACKER, "b": B}
    with netns_network(hosts) as net:
        token = _start_council(net, tmp_path)
        server = net.popen("b", [sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        b_dir = start_agent(net, tmp_path, "b")
        wait(
            lambda: "table inet shieldwall" in net.run("b", ["nft", "list", "tables"]).stdout,
            20,
            "b's nftables table",
        )
        assert tcp_probe(net["attacker"].ns, B, PORT, expect=b"ok") == "ok"
        listing = tmp_path / "list.txt"
        addresses = [f"198.18.{i >> 8}.{i & 255}" for i in range(9_999)]
        listing.write_text(
            "# a blocklist\n" + "\n".join([*addresses[:5000], ATTACKER, *addresses[5000:]])
        )
        # the attacker's address is in TEST-NET-1: allowlisted by nothing, public to the treaty
        out = shieldwall(
            net, "hub", "decisions", "import", str(listing), "--json",
            "--council", COUNCIL, "--token-file", token,
        )  # fmt: skip
        assert json.loads(out)["added"] == 10_000

        def dropped() -> bool:
            return tcp_probe(net["attacker"].ns, B, PORT, timeout=0.5, expect=b"ok") == "timeout"

        wait(dropped, 20, "member B to drop the attacker of the imported list")
        listed = net.run("b", ["nft", "-j", "list", "set", "inet", "shieldwall", "addr4"])
        (held,) = [x["set"] for x in json.loads(listed.stdout)["nftables"] if "set" in x]
        assert len(held["elem"]) == 10_000
        shieldwall(
            net, "hub", "unban", "--file", str(listing), "--council", COUNCIL, "--token-file", token
        )
        wait(
            lambda: tcp_probe(net["attacker"].ns, B, PORT, timeout=0.5, expect=b"ok") == "ok",
            20,
            "member B to accept the attacker again after the unban of the list",
        )
        assert (b_dir / "enforced.jsonl").exists()


def test_probes_tell_drops_from_refusals() -> None:
    """Guard for the assertion above: a closed port is 'refused', not 'timeout'."""
    with netns_network({"x": "192.0.2.77", "y": "192.0.2.78"}) as net:
        assert tcp_probes([(net["x"].ns, "192.0.2.78", 9)]) == ["refused"]
