"""Run fail2ban filters (``filter.d/*.conf``) unmodified; see ``docs/fail2ban.md``.

:func:`load_fail2ban_rule` turns a filter file (with its includes, ``.local`` files and
options such as ``mode=aggressive``) into a shieldwall :class:`~shieldwall.detect.rule.Rule`
with ``dialect = "fail2ban"``, which the :class:`~shieldwall.detect.detector.Detector` runs
with fail2ban's matching semantics (:mod:`.engine`).
"""

from shieldwall.detect.fail2ban.config import FilterDefinition, read_filter
from shieldwall.detect.fail2ban.engine import CompiledFilter, Fail2banEngine
from shieldwall.detect.fail2ban.rules import (
    JAIL_KEYS,
    Jail,
    f2b_duration,
    filter_rule,
    load_fail2ban_rule,
)

__all__ = [
    "JAIL_KEYS",
    "CompiledFilter",
    "Fail2banEngine",
    "FilterDefinition",
    "Jail",
    "f2b_duration",
    "filter_rule",
    "load_fail2ban_rule",
    "read_filter",
]
