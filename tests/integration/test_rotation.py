"""No line lost on rotation, at a real agent: a daemon that goes on writing to the renamed
file until its HUP, and two rotations while the agent is down."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shieldwall.loopback.alliance import LocalAlliance
from tests.integration.test_alliance import wait_for

pytestmark = pytest.mark.slow


def _line(i: int) -> bytes:
    return f"Dec  8 04:00:00 web1 sshd[{1000 + i}]: Connection closed by 198.51.100.{i % 250} port {40000 + i}\n".encode()  # noqa: E501


def test_the_renamed_file_is_read_until_its_writer_moves_on(tmp_path: Path) -> None:
    with LocalAlliance(n_members=1, root=tmp_path / "a") as alliance:
        m = alliance.members[0]
        fh = open(m.log, "ab", buffering=0)  # noqa: SIM115 - the daemon's descriptor
        n = 0
        for _ in range(100):  # before the rotation
            fh.write(_line(n))
            n += 1
            time.sleep(0.002)
        os.rename(m.log, m.log.with_name("auth.log.1"))
        m.log.touch()  # logrotate's create
        for _ in range(150):  # the daemon has not had its HUP: the old file, for 0.6 s
            fh.write(_line(n))
            n += 1
            time.sleep(0.004)
        fh.close()
        fh = open(m.log, "ab", buffering=0)  # noqa: SIM115 - the HUP
        for _ in range(100):
            fh.write(_line(n))
            n += 1
            time.sleep(0.002)
        fh.close()
        wait_for(lambda: m.counter("lines.read") >= n, 20, "every line read")
        time.sleep(0.5)
        assert m.counter("lines.read") == n == 350


def test_two_rotations_while_the_agent_is_down_lose_nothing(tmp_path: Path) -> None:
    with LocalAlliance(n_members=1, root=tmp_path / "a") as alliance:
        m = alliance.members[0]
        n = 0

        def write(count: int) -> None:
            nonlocal n
            with m.log.open("ab") as f:
                for _ in range(count):
                    f.write(_line(n))
                    n += 1

        write(100)
        wait_for(lambda: m.counter("lines.read") == 100, 20, "the first lines")
        alliance.stop_agent(m)
        write(140)  # after the agent stopped, into what becomes auth.log.2
        os.rename(m.log, m.log.with_name("auth.log.1"))
        write(150)
        os.rename(m.log.with_name("auth.log.1"), m.log.with_name("auth.log.2"))
        os.rename(m.log, m.log.with_name("auth.log.1"))
        write(150)
        alliance.start_agent(m)
        wait_for(lambda: m.counter("lines.read") >= n, 20, "every generation read")
        time.sleep(0.5)
        assert m.counter("lines.read") == n == 540
