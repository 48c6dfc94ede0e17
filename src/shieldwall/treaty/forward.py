"""Forward presence: who should receive a decision first. Pure.

Every member receives every decision; this only orders the fan-out so that the members most
likely to be hit next get it first: those that recently saw the decision's rule attacked,
then those that saw the same service attacked (``ssh-bf`` and ``ssh-slow-bf`` are both
``ssh``), then the busiest; members whose own evidence caused the decision (they already
block the source locally) come last.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from shieldwall.model import Decision
from shieldwall.treaty.evidence import Evidence

_SERVICE = re.compile(r"[-_.:]")


def service_of(rule: str) -> str:
    """The service a rule watches, by convention its name's first part (``ssh-bf`` → ``ssh``)."""
    return _SERVICE.split(rule, maxsplit=1)[0]


def forward_order(
    decision: Decision,
    members: Iterable[str],
    activity: Mapping[str, Mapping[str, int]],
    *,
    evidence: Evidence | None = None,
    rules: Iterable[str] = (),
    service: Callable[[str], str] = service_of,
) -> list[str]:
    """Every member in ``members`` exactly once, most likely next targets first.

    ``activity`` is member → rule → recent failures (``Treaty.activity(now)``); ``rules`` adds
    rules to match besides ``decision.rule`` (for a range decision, its attackers' rules).
    """
    wanted = {r for r in (decision.rule, *rules) if r}
    services = {service(r) for r in wanted}
    informed = set(evidence.members if evidence is not None else ())
    if decision.member is not None:
        informed.add(decision.member)

    def key(member: str) -> tuple[bool, int, int, int, str]:
        seen = activity.get(member, {})
        same_rule = sum(n for r, n in seen.items() if r in wanted)
        same_service = sum(n for r, n in seen.items() if service(r) in services)
        return (member in informed, -same_rule, -same_service, -sum(seen.values()), member)

    return sorted(set(members), key=key)
