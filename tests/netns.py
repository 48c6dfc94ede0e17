"""A small network of Linux network namespaces for enforcement tests.

::

    with netns_network({"attacker": "192.0.2.66", "member": "192.0.2.20"}) as net:
        server = net.popen("member", [sys.executable, "-c", SERVER])
        assert tcp_probe(net["attacker"].ns, net["member"].ip4, 2222) == "ok"

Layout: a *hub* namespace holds a Linux bridge ``br0`` (192.0.2.10/24, 2001:db8::10/64);
every host namespace has an ``eth0`` veth whose peer is a port of that bridge, with the given
IPv4 address in TEST-NET-1 (192.0.2.0/24) and an IPv6 address in 2001:db8::/64 (``nodad``).
Nothing is routed anywhere else. Namespace and interface names carry a random suffix so runs
never collide; the context manager always kills the processes it started and deletes the
namespaces, even when setup or the test fails.

``require_netns()`` skips (or, when ``CI=true``, fails) when the environment cannot do this.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

HUB_IP4 = "192.0.2.10"
HUB_IP6 = "2001:db8::10"
NET4 = ipaddress.ip_network("192.0.2.0/24")
NET6 = ipaddress.ip_network("2001:db8::/64")
CLONE_NEWNET = 0x40000000
IFNAMSIZ = 15


# --------------------------------------------------------------------------- availability


@functools.cache
def _unavailable_reason() -> str | None:
    reasons = []
    if os.geteuid() != 0:
        reasons.append("not running as root")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            reasons.append(f"`{tool}` is not installed")
    if reasons:
        return "; ".join(reasons)
    probe = f"swprobe-{secrets.token_hex(3)}"
    try:
        made = subprocess.run(
            ["ip", "netns", "add", probe], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run `ip netns add`: {exc}"
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10, check=False)
    return None


def require_netns() -> None:
    """Skip the test unless root, ``ip``, ``nft`` and network namespaces are available.

    Under ``CI=true`` a missing capability is a failure, never a silent skip.
    """
    reason = _unavailable_reason()
    if reason is None:
        return
    message = f"network-namespace tests need root, ip, nft and netns: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: not skipping)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def netns_required() -> None:
    """Fixture form of :func:`require_netns`."""
    require_netns()


# --------------------------------------------------------------------------- running things


def _exec_argv(ns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def run_in(
    ns: str,
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 30.0,
    **kw: Any,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside namespace ``ns`` (``ip netns exec``), capturing text output."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    result: subprocess.CompletedProcess[str] = subprocess.run(
        _exec_argv(ns, argv), check=False, timeout=timeout, **kw
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"in netns {ns}: {' '.join(argv)} -> rc {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


def popen_in(ns: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[str]:
    """Start ``argv`` inside namespace ``ns``; ``ip netns exec`` execs, so the pid is argv's."""
    kw.setdefault("text", True)
    return subprocess.Popen(_exec_argv(ns, argv), **kw)


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} -> rc {result.returncode}: {result.stderr}")


_libc = ctypes.CDLL(None, use_errno=True)


def socket_in(
    ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM
) -> socket.socket:
    """A socket created inside namespace ``ns`` (a socket stays in the netns it was born in).

    A short-lived thread joins the namespace with setns(2), which only affects that thread.
    """
    box: dict[str, Any] = {}

    def worker() -> None:
        try:
            with open(f"/run/netns/{ns}", "rb") as handle:
                if _libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            box["sock"] = socket.socket(family, kind)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=worker, name=f"setns-{ns}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    sock: socket.socket = box["sock"]
    return sock


def tcp_probe(ns: str, host: str, port: int, *, timeout: float = 1.0, expect: bytes = b"") -> str:
    """Connect from namespace ``ns`` to ``host:port``.

    Returns ``"ok"`` (connected, and read ``expect`` if given), ``"timeout"`` (no answer: what
    a drop looks like) or another short description (``"refused"``, ``"unreachable"``, …).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket_in(ns, family) as sock:
        sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            sock.connect((host, port))
            data = b""
            while expect and not data.startswith(expect):
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = sock.recv(256)
                if not chunk:
                    return f"closed after {data!r}"
                data += chunk
        except TimeoutError:
            return "timeout"
        except ConnectionRefusedError:
            return "refused"
        except OSError as exc:
            return f"error: {exc}"
    return "ok"


def tcp_probes(
    probes: Sequence[tuple[str, str, int]], *, timeout: float = 1.0, expect: bytes = b""
) -> list[str]:
    """Several :func:`tcp_probe` calls at once (so several expected timeouts cost one)."""
    results: list[str] = ["?"] * len(probes)

    def one(i: int, ns: str, host: str, port: int) -> None:
        results[i] = tcp_probe(ns, host, port, timeout=timeout, expect=expect)

    threads = [
        threading.Thread(target=one, args=(i, *probe), name=f"probe-{i}")
        for i, probe in enumerate(probes)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# --------------------------------------------------------------------------- the network


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    ns: str
    ip4: str
    ip6: str
    ifname: str = "eth0"


@dataclass(slots=True)
class Network:
    """The namespaces of one :func:`netns_network` (hub plus hosts by name)."""

    suffix: str
    hub: Host
    hosts: dict[str, Host]
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def __getitem__(self, name: str) -> Host:
        return self.hub if name == "hub" else self.hosts[name]

    @property
    def namespaces(self) -> list[str]:
        return [self.hub.ns, *(h.ns for h in self.hosts.values())]

    def run(self, name: str, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return run_in(self[name].ns, argv, **kw)

    def popen(self, name: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[str]:
        """Like :func:`popen_in`, and the process is killed when the network is torn down."""
        proc = popen_in(self[name].ns, argv, **kw)
        self.procs.append(proc)
        return proc


def _default_ip6(ip4: str) -> str:
    return f"2001:db8::{ip4.rsplit('.', 1)[1]}"


def _check_hosts(hosts: Mapping[str, str | tuple[str, str]]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    seen = {HUB_IP4, HUB_IP6}
    for name, spec in hosts.items():
        if name == "hub" or not name.isidentifier() or len(name) > 20:
            raise ValueError(f"bad host name: {name!r}")
        ip4, ip6 = spec if isinstance(spec, tuple) else (spec, _default_ip6(spec))
        if ipaddress.ip_address(ip4) not in NET4 or ipaddress.ip_address(ip6) not in NET6:
            raise ValueError(f"{name}: addresses must be in {NET4} and {NET6}: {ip4}, {ip6}")
        if ip4 in seen or ip6 in seen:
            raise ValueError(f"{name}: address already used: {ip4} / {ip6}")
        seen |= {ip4, ip6}
        out[name] = (ip4, ip6)
    return out


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _teardown(net: Network) -> list[str]:
    problems = []
    for proc in reversed(net.procs):
        try:
            _stop(proc)
        except Exception as exc:  # keep cleaning up
            problems.append(f"stopping pid {proc.pid}: {exc}")
    for ns in reversed(net.namespaces):
        if not os.path.exists(f"/run/netns/{ns}"):
            continue
        done = subprocess.run(
            ["ip", "netns", "del", ns], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            problems.append(f"ip netns del {ns}: {done.stderr.strip()}")
    return problems


def _wait_connected(net: Network, timeout: float = 5.0) -> None:
    """Every host reaches the hub and the next host over TCP (IPv4 and IPv6)."""
    targets = [net.hub, *net.hosts.values()]
    listeners = []
    try:
        for host in targets:
            for family, addr in ((socket.AF_INET, host.ip4), (socket.AF_INET6, host.ip6)):
                lst = socket_in(host.ns, family)
                lst.bind((addr, 0))
                lst.listen(8)
                listeners.append((host, addr, lst.getsockname()[1], lst))
        hosts = list(net.hosts.values())
        pairs = []
        for i, src in enumerate(hosts):
            dsts = [net.hub] + ([hosts[(i + 1) % len(hosts)]] if len(hosts) > 1 else [])
            for dst in dsts:
                pairs += [(src, dst, addr, port) for h, addr, port, _ in listeners if h is dst]
        deadline = time.monotonic() + timeout
        pending = pairs
        while pending:
            results = tcp_probes([(s.ns, addr, port) for s, _, addr, port in pending], timeout=0.5)
            pending = [p for p, r in zip(pending, results, strict=True) if r != "ok"]
            if pending and time.monotonic() > deadline:
                raise RuntimeError(
                    "netns network not connected: "
                    + ", ".join(f"{s.name}->{d.name} {a}" for s, d, a, _ in pending)
                )
            if pending:
                time.sleep(0.05)
    finally:
        for *_, lst in listeners:
            lst.close()


@contextlib.contextmanager
def netns_network(
    hosts: Mapping[str, str | tuple[str, str]], *, prefix: str = "swt"
) -> Iterator[Network]:
    """Build the hub + hosts network; always tear it down (processes, then namespaces).

    ``hosts`` maps a name to its IPv4 address (IPv6 defaults to ``2001:db8::<last octet>``) or
    to an ``(ipv4, ipv6)`` pair. Connectivity is checked before the body runs.
    """
    require_netns()
    specs = _check_hosts(hosts)
    suffix = secrets.token_hex(3)
    hub = Host("hub", f"{prefix}-{suffix}-hub", HUB_IP4, HUB_IP6, "br0")
    net = Network(
        suffix,
        hub,
        {
            name: Host(name, f"{prefix}-{suffix}-{name}", ip4, ip6)
            for name, (ip4, ip6) in specs.items()
        },
    )
    created: list[str] = []
    try:
        for ns in net.namespaces:
            _ip("netns", "add", ns)
            created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", hub.ns, "link", "add", "br0", "type", "bridge", "stp_state", "0",
            "mcast_snooping", "0")  # fmt: skip
        _ip("-n", hub.ns, "addr", "add", f"{HUB_IP4}/24", "dev", "br0")
        _ip("-n", hub.ns, "addr", "add", f"{HUB_IP6}/64", "dev", "br0", "nodad")
        _ip("-n", hub.ns, "link", "set", "br0", "up")
        for i, host in enumerate(net.hosts.values()):
            port = f"sw{i}-{suffix}"
            assert len(port) <= IFNAMSIZ
            assert len(host.ifname) <= IFNAMSIZ
            _ip("-n", hub.ns, "link", "add", port, "type", "veth", "peer", "name", host.ifname,
                "netns", host.ns)  # fmt: skip
            _ip("-n", hub.ns, "link", "set", port, "master", "br0", "up")
            _ip("-n", host.ns, "addr", "add", f"{host.ip4}/24", "dev", host.ifname)
            _ip("-n", host.ns, "addr", "add", f"{host.ip6}/64", "dev", host.ifname, "nodad")
            _ip("-n", host.ns, "link", "set", host.ifname, "up")
        _wait_connected(net)
        yield net
    finally:
        problems = _teardown(net)
        leftover = [ns for ns in created if os.path.exists(f"/run/netns/{ns}")]
        if problems or leftover:
            raise RuntimeError(f"netns cleanup incomplete: {problems} leftover={leftover}")
