"""Detection core: rule → match → timestamp → bucket → alert. Pure: no I/O, no clock.

Lines go in as bytes with the time they were read (``now``); hits and alerts come out as
:mod:`shieldwall.model` values. Only :func:`load_rule` and :func:`builtin_rule` read files.
"""

from shieldwall.detect.bucket import EVIDENCE_CHARS, BucketKey, BucketRow, BucketSet
from shieldwall.detect.detector import Detection, Detector, Explanation
from shieldwall.detect.matcher import Matcher, MatchExplanation, MatchResult
from shieldwall.detect.rule import (
    HOST_PATTERN,
    CompiledRule,
    Rule,
    builtin_rule,
    builtin_rule_names,
    load_rule,
    parse_duration,
    parse_rule,
)
from shieldwall.detect.timestamps import DATE_PATTERNS, TimeParser, parse_time

__all__ = [
    "DATE_PATTERNS",
    "EVIDENCE_CHARS",
    "HOST_PATTERN",
    "BucketKey",
    "BucketRow",
    "BucketSet",
    "CompiledRule",
    "Detection",
    "Detector",
    "Explanation",
    "MatchExplanation",
    "MatchResult",
    "Matcher",
    "Rule",
    "TimeParser",
    "builtin_rule",
    "builtin_rule_names",
    "load_rule",
    "parse_duration",
    "parse_rule",
    "parse_time",
]
