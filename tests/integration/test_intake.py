"""Bounded intake at a real ``shieldwall council`` process: an endless chunked upload is cut at
the limit with flat memory, and slowloris sockets are closed."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import pytest

from shieldwall.loopback.alliance import LocalAlliance

pytestmark = pytest.mark.slow


def _rss_mb(pid: int, field: str = "VmRSS:") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise AssertionError(field)


def test_a_chunked_400_mb_upload_is_refused_at_the_limit_with_flat_memory(
    tmp_path: Path,
) -> None:
    with LocalAlliance(n_members=0, root=tmp_path / "a") as alliance:
        pid = alliance.council_proc.pid  # type: ignore[union-attr]
        before = _rss_mb(pid)
        chunk = b"a" * (1 << 20)
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        answers = []
        for path in ("/v1/reports", "/v1/concerns", "/v1/decisions/import"):
            sent = 0
            with socket.create_connection(("127.0.0.1", alliance.port), timeout=10) as s:
                s.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n".encode()
                )
                try:
                    while sent < 400 << 20:  # no auth, no length: 400 MB if let through
                        s.sendall(frame)
                        sent += len(chunk)
                except OSError:  # the council answered and closed: the rest is not read
                    pass
                s.settimeout(10)
                try:
                    answers.append(s.recv(200))
                except OSError:
                    answers.append(b"")
            assert sent < 100 << 20, f"{path}: {sent >> 20} MB were taken"
        peak = _rss_mb(pid, "VmHWM:")
        assert peak - before < 80, f"council grew from {before:.0f} to a {peak:.0f} MB peak"
        # refused as too large (reports, concerns: no auth needed to be refused) or for the
        # missing token (an import), the connection closed either way
        status = [a.split(b"\r\n")[0] for a in answers]
        assert b" 413 " in status[0], status
        assert b" 413 " in status[1], status
        assert b" 401 " in status[2], status
        assert all(b"connection: close" in a.lower() for a in answers), answers
        assert alliance.operator("GET", "/v1/health").status_code == 200


def test_slowloris_sockets_are_closed_after_the_header_timeout(tmp_path: Path) -> None:
    alliance = LocalAlliance(
        n_members=0, root=tmp_path / "a", council_extra='header-timeout = "2s"\n'
    )
    with alliance:
        socks = []
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", alliance.port), timeout=5)
            s.sendall(b"POST /v1/reports HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            socks.append(s)
        started = time.monotonic()
        # a few more header bytes now and then do not buy time
        for _ in range(3):
            time.sleep(0.5)
            for s in socks:
                with contextlib.suppress(OSError):
                    s.sendall(b"X-A: b\r\n")
        closed = 0
        for s in socks:
            s.settimeout(max(0.1, 6 - (time.monotonic() - started)))
            try:
                if s.recv(100) == b"":
                    closed += 1
            except (TimeoutError, OSError):
                pass
            s.close()
        assert closed == len(socks), f"{len(socks) - closed} slowloris sockets still open"
        assert time.monotonic() - started < 8
        # and the council still answers everyone else
        assert alliance.operator("GET", "/v1/health").status_code == 200
