"""Multi-line state of a fail2ban filter: the ``maxlines`` buffer and the ``F-MLFID`` cache.

Two small pieces of state, owned by one :class:`~shieldwall.detect.fail2ban.engine.Fail2banEngine`
(that is, by one rule inside one :class:`~shieldwall.detect.detector.Detector`), fed in line
order:

:class:`LineBuffer`
    the last ``maxlines`` lines (dates already cut out). A multi-line failregex is searched in
    them joined by newlines; the lines it matched (except those taken by ``<SKIPLINES>``) are
    removed from the buffer, so one line never makes two failures.
:class:`FailureCache`
    what is known about each multi-line failure id (``<F-MLFID>``, usually the
    ``host daemon[pid]:`` prefix, i.e. one connection): the groups of its earlier lines, so
    that a later line without an address (``Disconnecting: Too many authentication
    failures``) is attributed to the address an earlier line of the same connection gave.
    ``<F-NOFAIL>`` lines only feed the cache; ``<F-MLFFORGET>`` ends the entry;
    ``<F-MLFGAINED>`` (a successful login) makes the line no failure unless the connection
    tried more than one user name. At most ``size`` ids are kept, first in first out — as
    fail2ban keeps them (100, FIFO): a larger or LRU cache holds on to old connections whose
    process id comes back, and their user names would turn a later successful login into a
    failure ("more than one user name").
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

__all__ = ["FailureCache", "Groups", "LineBuffer"]

Groups = dict[str, object]

DEFAULT_CACHE_SIZE: Final = 100


class LineBuffer:
    """The last ``size`` lines."""

    __slots__ = ("lines", "size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("maxlines must be at least 1")
        self.size = size
        self.lines: list[str] = []

    def push(self, line: str) -> list[str]:
        """Add ``line``; the buffer as it is now."""
        if self.size == 1:
            self.lines = [line]
        else:
            self.lines.append(line)
            if len(self.lines) > self.size:
                del self.lines[: len(self.lines) - self.size]
        return self.lines

    def keep(self, lines: list[str]) -> None:
        """Replace the buffer by ``lines`` (what a match left unmatched)."""
        self.lines = lines

    def clear(self) -> None:
        self.lines = []


def matched_lines(
    buffer: list[str], text: str, start: int, end: int, skipped: list[str]
) -> tuple[list[str], list[str]]:
    """Split ``buffer`` into (matched, unmatched) for a match at ``start:end`` of ``text``
    (the buffer joined by newlines, plus a final newline); ``skipped`` lines were taken by
    ``<SKIPLINES>`` and count as unmatched."""
    if len(buffer) <= 1:
        return list(buffer), []
    first = text.count("\n", 0, text.rfind("\n", 0, start + 1) + 1)
    last_end = text.find("\n", max(end - 1, 0))
    last = text.count("\n", 0, last_end + 1) if last_end >= 0 else len(buffer)
    matched = list(buffer[first:last])
    unmatched = list(buffer[:first])
    for line in skipped:
        if line in matched:
            matched.remove(line)
            unmatched.append(line)
    unmatched += buffer[last:]
    return matched, unmatched


class FailureCache:
    """Groups of multi-line failures by id (see the module doc)."""

    __slots__ = ("_entries", "size")

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, Groups] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    @staticmethod
    def _add_user(groups: Groups, user: object) -> set[str] | None:
        if not user:
            return None
        users = groups.get("users")
        if not isinstance(users, set):
            users = set()
            groups["users"] = users
        users.add(str(user))
        return users

    def merge(self, mlfid: str, groups: Groups) -> Groups:
        """Merge the groups of one line into its failure; returns the merged groups.

        The result has ``nofail`` set when the line is no failure (a helper, a success). A
        failure seen earlier without an address (``mlfpending``, set by the caller) makes
        the next line of the same id a failure even if it is a helper: the helper brings the
        address the failure was waiting for.
        """
        gained = bool(groups.get("mlfgained"))
        if gained and not groups.get("nofail"):
            groups["nofail"] = groups["mlfgained"]
        forget = bool(groups.pop("mlfforget", None))
        entry = self._entries.get(mlfid)
        users: set[str] | None = None
        if entry is not None:
            users = self._add_user(entry, groups.get("user"))
            entry.pop("nofail", None)
            entry.pop("mlfgained", None)
            if gained:
                entry.pop("mlfpending", None)  # a success resets the pending failures
            entry.update((key, value) for key, value in groups.items() if value is not None)
            groups = entry
            if forget:
                del self._entries[mlfid]
        elif not forget:
            users = self._add_user(groups, groups.get("user"))
            self._entries[mlfid] = groups
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        if groups.pop("mlfpending", 0) or (users is not None and len(users) > 1):
            groups.pop("nofail", None)
            groups.pop("mlfgained", None)
        return groups
