"""NftEnforcer against a real kernel, checked with real TCP connections.

Two namespaces on one bridge: ``attacker`` (192.0.2.66, 2001:db8::66) and ``member``
(192.0.2.20, 2001:db8::20). The member runs a tiny TCP server and, in a separate process inside
its namespace, an :class:`NftEnforcer` driven over stdin/stdout (one JSON line per command).
A block is asserted as a connect *timeout* (packets dropped), distinct from ``refused``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import netns
from tests.netns import Network, netns_network, require_netns, tcp_probe, tcp_probes

pytestmark = pytest.mark.nft

SRC = Path(__file__).resolve().parents[2] / "src"
PORT = 2222
GREETING = b"shieldwall-ok"
ATTACKER4, ATTACKER6 = "192.0.2.66", "2001:db8::66"
MEMBER4, MEMBER6 = "192.0.2.20", "2001:db8::20"

SERVER = f"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", {PORT}))
s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try:
        c.sendall({GREETING!r})
    except OSError:
        pass
    c.close()
"""

DRIVER = """
import asyncio, json, sys, time
from shieldwall.blocklist import Diff
from shieldwall.enforce.nftables import NftEnforcer
from shieldwall.model import parse_scope, scope_str

table, backend = sys.argv[1], sys.argv[2]
enf = NftEnforcer(table, backend=None if backend == "auto" else backend)
loop = asyncio.new_event_loop()

def scope(text):
    return parse_scope(text.removesuffix("/32").removesuffix("/128"))

for line in sys.stdin:
    req = json.loads(line)
    now = time.time()
    try:
        op = req["op"]
        if op == "apply":
            block, unblock = {}, []
            for c in req["changes"]:  # in order: an unblock after a block drops it
                if c[0] == "add":
                    block[scope(c[1])] = now + c[2]
                else:
                    block.pop(scope(c[1]), None)
                    unblock.append(scope(c[1]))
            loop.run_until_complete(enf.apply(Diff(block, unblock), now))
            out = None
        elif op == "sync":
            active = {scope(s): now + ttl for s, ttl in req["active"]}
            loop.run_until_complete(enf.sync(active, now))
            out = None
        elif op == "list":
            out = {
                name: {scope_str(s): left for s, left in elems.items()}
                for name, elems in enf.list_elements().items()
            }
        elif op == "state":
            out = {
                "counters": enf.counters.values,
                "known": sorted(str(s) for s in enf.known),
                "backend": enf.backend,
            }
        else:
            raise ValueError(op)
        reply = {"ok": True, "result": out}
    except Exception as exc:
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(reply), flush=True)
loop.run_until_complete(enf.close())
"""


class Driver:
    """An NftEnforcer living in the member's namespace, one JSON request per line."""

    def __init__(self, net: Network, table: str, backend: str, log_path: Path) -> None:
        self.net = net
        self.table = table
        self.log_path = log_path
        self._log = log_path.open("w")
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
        )
        self.proc = net.popen(
            "member",
            [sys.executable, "-c", DRIVER, table, backend],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )

    def call(self, **req: Any) -> Any:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"driver died; stderr:\n{self.log_path.read_text()}")
        reply = json.loads(line)
        assert reply["ok"], f"{req} failed: {reply['error']}\n{self.log_path.read_text()}"
        return reply["result"]

    def apply(self, *changes: tuple[Any, ...]) -> None:
        self.call(op="apply", changes=[list(c) for c in changes])

    def sync(self, active: dict[str, float]) -> None:
        self.call(op="sync", active=list(active.items()))

    def elements(self) -> dict[str, dict[str, int | None]]:
        result: dict[str, dict[str, int | None]] = self.call(op="list")
        return result

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call(op="state")
        return result

    def nft(self, script: str) -> subprocess.CompletedProcess[str]:
        """Tamper with the kernel behind the enforcer's back."""
        return self.net.run("member", ["nft", "-f", "-"], input=script)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        finally:
            self._log.close()
            self.net.run("member", ["nft", "delete", "table", "inet", self.table], check=False)


@pytest.fixture(scope="module")
def net() -> Iterator[Network]:
    require_netns()
    with netns_network({"attacker": ATTACKER4, "member": MEMBER4}) as network:
        server = network.popen(
            "member",
            [sys.executable, "-c", SERVER],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        yield network


def probe(net: Network, host: str) -> str:
    return tcp_probe(net["attacker"].ns, host, PORT, timeout=1.0, expect=GREETING)


def probe_both(net: Network) -> list[str]:
    """IPv4 and IPv6 at once: an expected block costs one timeout, not two."""
    ns = net["attacker"].ns
    return tcp_probes([(ns, MEMBER4, PORT), (ns, MEMBER6, PORT)], timeout=1.0, expect=GREETING)


@pytest.fixture
def make_driver(net: Network, tmp_path: Path) -> Iterator[Any]:
    drivers: list[Driver] = []

    def make(backend: str = "auto") -> Driver:
        table = f"swtest_{secrets.token_hex(3)}"
        driver = Driver(net, table, backend, tmp_path / f"{table}.log")
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.close()
    # every test leaves the member reachable again
    assert probe_both(net) == ["ok", "ok"]


@pytest.fixture
def driver(make_driver: Any) -> Driver:
    d: Driver = make_driver()
    return d


def test_probe_tells_a_drop_from_a_refusal(net: Network) -> None:
    # nothing listens on PORT+1: an unblocked but closed port is "refused", never "timeout"
    assert tcp_probe(net["attacker"].ns, MEMBER4, PORT + 1, timeout=1.0) == "refused"
    assert probe_both(net) == ["ok", "ok"]


@pytest.mark.parametrize("backend", ["libnftables", "subprocess"])
def test_add_blocks_and_remove_unblocks_ipv4(make_driver: Any, net: Network, backend: str) -> None:
    driver: Driver = make_driver(backend)
    assert probe(net, MEMBER4) == "ok"

    driver.apply(("add", f"{ATTACKER4}/32", 300))
    assert probe_both(net) == ["timeout", "ok"]  # IPv6 of the same host is another scope
    left = driver.elements()["addr4"][ATTACKER4]
    assert left is not None
    assert 290 <= left <= 300

    driver.apply(("remove", f"{ATTACKER4}/32"))
    assert probe(net, MEMBER4) == "ok"
    assert driver.elements()["addr4"] == {}
    assert driver.state()["backend"] == backend


def test_remove_of_absent_does_not_abort_the_batch(driver: Driver, net: Network) -> None:
    driver.apply(
        ("remove", "192.0.2.99/32"),  # never blocked
        ("add", f"{ATTACKER4}/32", 300),
        ("remove", "2001:db8::99/128"),  # never blocked
        ("remove", "198.51.100.0/24"),  # never blocked network
        ("add", f"{ATTACKER6}/128", 300),
    )
    assert probe_both(net) == ["timeout", "timeout"]
    state = driver.state()
    assert state["counters"].get("nft.batch_failed", 0) == 0, state  # one transaction, no fallback
    assert state["known"] == sorted([f"{ATTACKER4}/32", f"{ATTACKER6}/128"])


def test_remove_is_robust_when_the_view_is_stale(driver: Driver, net: Network) -> None:
    driver.apply(("add", "192.0.2.77/32", 300), ("add", "192.0.2.0/28", 300))
    # the kernel loses both behind the enforcer's back (an admin, a lapsed timeout, …)
    driver.nft(
        f"delete element inet {driver.table} addr4 {{ 192.0.2.77 }}\n"
        f"delete element inet {driver.table} net4 {{ 192.0.2.0/28 }}\n"
    )
    driver.apply(
        ("remove", "192.0.2.77/32"),
        ("remove", "192.0.2.0/28"),
        ("add", f"{ATTACKER4}/32", 300),
    )
    assert probe(net, MEMBER4) == "timeout"
    assert driver.state()["counters"].get("nft.batch_failed", 0) == 0
    elements = driver.elements()
    assert set(elements["addr4"]) == {ATTACKER4}
    assert elements["net4"] == {}


def test_extend_only(driver: Driver) -> None:
    driver.apply(("add", f"{ATTACKER4}/32", 3600))
    driver.apply(("add", f"{ATTACKER4}/32", 60))  # would shorten: skipped
    left = driver.elements()["addr4"][ATTACKER4]
    assert left is not None
    assert left > 3500
    driver.apply(("add", f"{ATTACKER4}/32", 7200))  # extends
    left = driver.elements()["addr4"][ATTACKER4]
    assert left is not None
    assert left > 7100
    assert driver.state()["counters"]["nft.skipped_not_extended"] == 1


def test_sync_reasserts_timeouts_and_drops_the_rest(driver: Driver, net: Network) -> None:
    driver.apply(("add", f"{ATTACKER4}/32", 3600), ("add", "192.0.2.55/32", 3600))
    driver.nft(  # someone shortens one and deletes nothing else
        f"delete element inet {driver.table} addr4 {{ {ATTACKER4} }}\n"
        f"add element inet {driver.table} addr4 {{ {ATTACKER4} timeout 5s }}\n"
    )
    assert (driver.elements()["addr4"][ATTACKER4] or 0) <= 5

    driver.sync({f"{ATTACKER4}/32": 3600, f"{ATTACKER6}/128": 1800, "198.51.100.0/24": -5})
    elements = driver.elements()
    assert set(elements["addr4"]) == {ATTACKER4}  # 192.0.2.55 is not active any more
    assert (elements["addr4"][ATTACKER4] or 0) > 3500
    assert set(elements["addr6"]) == {ATTACKER6}
    assert elements["net4"] == {}  # already expired: not added
    assert probe_both(net) == ["timeout", "timeout"]

    driver.sync({})
    assert probe_both(net) == ["ok", "ok"]


def test_ipv6_block(driver: Driver, net: Network) -> None:
    assert probe(net, MEMBER6) == "ok"
    driver.apply(("add", f"{ATTACKER6}/128", 300))
    assert probe_both(net) == ["ok", "timeout"]
    driver.apply(("remove", f"{ATTACKER6}/128"))
    assert probe(net, MEMBER6) == "ok"


def test_cidr_blocks_overlapping_with_addresses_and_networks(driver: Driver, net: Network) -> None:
    # a network containing the attacker, then the attacker's own address inside it,
    # then a network nested in the first one that outlives it, and an IPv6 network
    driver.apply(("add", "192.0.2.64/26", 300))
    driver.apply(("add", f"{ATTACKER4}/32", 600), ("add", "192.0.2.64/28", 900))
    driver.apply(("add", "2001:db8::/120", 300))
    state = driver.state()
    assert state["counters"].get("nft.batch_failed", 0) == 0, state
    assert probe_both(net) == ["timeout", "timeout"]
    elements = driver.elements()
    assert "192.0.2.64/28" in elements["net4"]
    assert "192.0.2.80/28" in elements["net4"]
    assert set(elements["net6"]) == {"2001:db8::/120"}

    # removing the /26 and the address leaves the nested /28, which still covers .66
    driver.apply(("remove", "192.0.2.64/26"), ("remove", f"{ATTACKER4}/32"))
    assert probe(net, MEMBER4) == "timeout"
    assert set(driver.elements()["net4"]) == {"192.0.2.64/28"}

    driver.apply(("remove", "192.0.2.64/28"), ("remove", "2001:db8::/120"))
    assert probe_both(net) == ["ok", "ok"]
    assert driver.state()["counters"].get("nft.batch_failed", 0) == 0


def test_table_flushed_away_is_restored(driver: Driver, net: Network) -> None:
    driver.apply(("add", f"{ATTACKER6}/128", 300))
    driver.nft(f"delete table inet {driver.table}\n")  # e.g. a firewall reload
    assert probe(net, MEMBER6) == "ok"
    driver.apply(("add", f"{ATTACKER4}/32", 300))
    assert probe_both(net) == ["timeout", "timeout"]  # both: the view was re-asserted
    assert driver.state()["counters"]["nft.batch_failed"] == 1


@pytest.mark.parametrize(("ci", "outcome"), [("true", "fail"), ("", "skip"), ("false", "skip")])
def test_require_netns_fails_instead_of_skipping_under_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    monkeypatch.setattr(netns, "_unavailable_reason", lambda: "not running as root")
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected, match="not running as root"):
        netns.require_netns()


def test_network_is_torn_down(tmp_path: Path) -> None:
    require_netns()
    start = time.monotonic()
    with netns_network({"a": "192.0.2.31", "b": "192.0.2.32"}) as small:
        names = small.namespaces
        assert tcp_probe(small["a"].ns, small["b"].ip4, 9, timeout=1.0) == "refused"
        small.popen("b", ["sleep", "60"])
    assert time.monotonic() - start < 10
    assert not any(Path(f"/run/netns/{ns}").exists() for ns in names)
