"""Match one decoded log line against one rule: literal prefilter, one combined regex, ignores.

The source address comes only from the ``<HOST>`` group of the failregex that matched, and is
validated with :func:`shieldwall.model.parse_address`; a line whose host text is not an IP
address is skipped and counted (``invalid_host``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple

from shieldwall.detect.rule import Rule
from shieldwall.errors import InvalidScope
from shieldwall.model import Address, Counters, parse_address

__all__ = ["MatchExplanation", "MatchResult", "Matcher", "cached_address"]

_ADDRESS_CACHE_SIZE: Final = 16384


def cached_address(
    cache: dict[str, Address | None], text: str, limit: int = _ADDRESS_CACHE_SIZE
) -> Address | None:
    """``text`` as an address, or None if it is no IP address, remembered in ``cache``
    (emptied when it holds ``limit`` texts): the same few addresses come back line after
    line, and parsing one costs microseconds."""
    try:
        return cache[text]
    except KeyError:
        pass
    try:
        address: Address | None = parse_address(text)
    except InvalidScope:
        address = None
    if len(cache) >= limit:
        cache.clear()
    cache[text] = address
    return address


class MatchResult(NamedTuple):
    """A line the rule recognised: who (``source``) and which failregex (``pattern``).

    ``distinct`` is the text of the rule's ``distinct`` field (``""`` when the pattern that
    matched does not capture it); ``None`` for rules without ``distinct``.
    """

    source: Address
    pattern: int
    distinct: str | None = None


@dataclass(frozen=True, slots=True)
class MatchExplanation:
    """Why a line did or did not match one rule.

    ``reason`` is a stable token: ``hit``, ``prefilter`` (no prefilter literal in the line),
    ``prefix`` (the prefix did not match at the line start), ``no-match`` (no failregex),
    ``ignored`` (an ignoreregex matched), ``invalid-host`` (the captured text is no address).
    """

    reason: str
    detail: str
    pattern: int | None = None
    host: str | None = None
    source: Address | None = None
    ignore: int | None = None

    @property
    def matched(self) -> bool:
        return self.reason == "hit"


class Matcher:
    """Fast matching of lines against one :class:`Rule`.

    ``counters`` (optional) receives ``invalid_host`` and ``ignored``.
    """

    __slots__ = (
        "_addresses",
        "_counters",
        "_distinct",
        "_ignore",
        "_literal",
        "_literals",
        "_run",
        "_slots",
        "rule",
    )

    def __init__(self, rule: Rule, counters: Counters | None = None) -> None:
        compiled = rule.compiled
        self.rule = rule
        self._counters = counters if counters is not None else Counters()
        self._literals = rule.prefilter
        self._literal = rule.prefilter[0] if len(rule.prefilter) == 1 else None
        self._run = compiled.combined.match if compiled.anchored else compiled.combined.search
        self._slots = compiled.slots
        self._ignore = compiled.ignore
        self._addresses: dict[str, Address | None] = {}
        field = rule.distinct
        self._distinct: dict[int, int] | None = (
            None
            if field is None
            else {slot: names[field] for slot, names in compiled.fields.items() if field in names}
        )

    def _passes_prefilter(self, text: str) -> bool:
        if self._literal is not None:
            return self._literal in text
        if not self._literals:
            return True
        return any(literal in text for literal in self._literals)

    def match(self, text: str) -> MatchResult | None:
        """The source and pattern index if ``text`` is a hit for this rule, else ``None``."""
        literal = self._literal
        if literal is not None:
            if literal not in text:
                return None
        elif self._literals and not self._passes_prefilter(text):
            return None
        found = self._run(text)
        if found is None:
            return None
        index, host_group = self._slots[found.lastindex or 0]
        if self._ignore is not None and self._ignore.search(text) is not None:
            self._counters.inc("ignored")
            return None
        host = found.group(host_group)
        source = self._addresses.get(host)
        if source is None:
            source = cached_address(self._addresses, host)
            if source is None:
                self._counters.inc("invalid_host")
                return None
        if self._distinct is None:
            return MatchResult(source, index)
        group = self._distinct.get(found.lastindex or 0)
        return MatchResult(source, index, (found.group(group) or "") if group else "")

    def explain(self, text: str) -> MatchExplanation:
        """Like :meth:`match`, but says why not, and counts nothing."""
        rule = self.rule
        compiled = rule.compiled
        if not self._passes_prefilter(text):
            return MatchExplanation(
                "prefilter", f"the line contains none of the prefilter literals {rule.prefilter!r}"
            )
        if compiled.prefix is not None and compiled.prefix.match(text) is None:
            return MatchExplanation("prefix", "the prefix does not match at the start of the line")
        found = self._run(text)
        if found is None:
            return MatchExplanation("no-match", "no failregex matches")
        index, host_group = self._slots[found.lastindex or 0]
        host = found.group(host_group)
        for i, pattern in enumerate(compiled.ignores):
            if pattern.search(text) is not None:
                return MatchExplanation(
                    "ignored",
                    f"failregex[{index}] matches but ignoreregex[{i}] too",
                    pattern=index,
                    host=host,
                    ignore=i,
                )
        source = cached_address(self._addresses, host)
        if source is None:
            return MatchExplanation(
                "invalid-host",
                f"failregex[{index}] matches but {host!r} is not a valid IP address",
                index,
                host,
            )
        return MatchExplanation("hit", f"failregex[{index}] matches", index, host, source)
