"""The multi-line state: the maxlines buffer and the F-MLFID failure cache."""

from __future__ import annotations

import pytest

from shieldwall.detect.fail2ban.multiline import FailureCache, LineBuffer, matched_lines


def test_the_buffer_keeps_the_last_lines() -> None:
    buffer = LineBuffer(3)
    for line in "abcd":
        buffer.push(line)
    assert buffer.lines == ["b", "c", "d"]
    assert LineBuffer(1).push("x") == ["x"]
    with pytest.raises(ValueError, match="maxlines"):
        LineBuffer(0)


def test_matched_lines_split_the_buffer_and_skipped_lines_stay() -> None:
    lines = ["one", "two", "three", "four"]
    text = "\n".join(lines) + "\n"
    start, end = text.index("two"), text.index("three") + len("three")
    assert matched_lines(lines, text, start, end, []) == (["two", "three"], ["one", "four"])
    assert matched_lines(lines, text, start, end, ["two"]) == (["three"], ["one", "two", "four"])
    assert matched_lines(["only"], "only\n", 0, 4, []) == (["only"], [])


def test_the_cache_merges_forgets_and_is_bounded() -> None:
    cache = FailureCache(size=2)
    first = cache.merge("a", {"ip4": "192.0.2.1", "nofail": "x", "user": "u"})
    assert first["nofail"] == "x"
    merged = cache.merge("a", {"ip4": None, "user": "u"})  # a None value never erases
    assert merged["ip4"] == "192.0.2.1"
    assert "nofail" not in merged  # nofail belongs to the line that set it
    cache.merge("b", {})
    cache.merge("a", {})  # using an id does not keep it longer: first in, first out
    cache.merge("c", {})  # "a" came first: out (as fail2ban's Utils.Cache)
    assert len(cache) == 2
    assert "ip4" not in cache.merge("a", {})  # a new entry: b is out now
    cache.merge("c", {"mlfforget": "closed"})
    assert cache.merge("c", {}) == {}


def test_two_user_names_turn_a_success_into_a_failure() -> None:
    cache = FailureCache()
    cache.merge("pid", {"user": "root", "nofail": "Failed"})
    done = cache.merge("pid", {"user": "admin", "mlfgained": "Accepted", "mlfforget": "x"})
    assert "nofail" not in done
    assert done["users"] == {"root", "admin"}


def test_ids_expire_five_minutes_after_they_were_cached_as_in_fail2ban() -> None:
    cache = FailureCache(size=3)
    cache.merge("a", {"ip4": "192.0.2.1", "user": "u"}, now=1000.0)
    assert cache.merge("a", {}, now=1299.0)["ip4"] == "192.0.2.1"  # merging does not refresh
    assert "ip4" not in cache.merge("a", {}, now=1300.0)  # 300 s after it was cached: gone
    # a full cache drops ids from the front until it has dropped one that had not expired
    # (fail2ban's Utils.Cache.set): x (expired) and y go, z comes in
    cache = FailureCache(size=2)
    cache.merge("x", {"ip4": "192.0.2.7"}, now=0.0)
    cache.merge("y", {"ip4": "192.0.2.8"}, now=100.0)
    cache.merge("z", {"ip4": "192.0.2.9"}, now=350.0)
    assert len(cache) == 1
    assert cache.merge("z", {}, now=351.0)["ip4"] == "192.0.2.9"
    assert "ip4" not in cache.merge("y", {}, now=351.0)
