"""The treaty: the rules of engagement that turn alerts into decisions. Pure."""

from shieldwall.treaty.policy import (
    Decide,
    Duplicate,
    MemberInfo,
    Refuse,
    TreatyConfig,
    Verdict,
    judge_alert,
    judge_manual,
)
from shieldwall.treaty.protect import Protected

__all__ = [
    "Decide",
    "Duplicate",
    "MemberInfo",
    "Protected",
    "Refuse",
    "TreatyConfig",
    "Verdict",
    "judge_alert",
    "judge_manual",
]
