"""The public API of shieldwall.detect is exactly what __all__ lists."""

from __future__ import annotations

import shieldwall.detect as detect


def test_all_names_exist() -> None:
    """Every name in __all__ is importable."""
    missing = [name for name in detect.__all__ if not hasattr(detect, name)]

    assert missing == []


def test_all_is_sorted_and_unique() -> None:
    """__all__ is kept tidy."""
    assert sorted(set(detect.__all__)) == sorted(detect.__all__)


def test_core_entry_points() -> None:
    """The entry points other packages rely on are exported."""
    expected = {
        "Detector",
        "Detection",
        "Explanation",
        "Rule",
        "load_rule",
        "parse_rule",
        "builtin_rule",
        "builtin_rule_names",
        "BucketSet",
        "BucketRow",
        "Matcher",
        "MatchResult",
        "parse_time",
    }

    assert expected <= set(detect.__all__)
