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
    tried more than one user name. At most ``size`` ids are kept, first in first out, each
    for at most five minutes — as fail2ban keeps them (100, FIFO, 300 s): a larger, LRU or
    unexpiring cache holds on to old connections whose process id comes back, and their user
    names would turn a later successful login into a failure ("more than one user name").
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

__all__ = ["FailureCache", "Groups", "LineBuffer"]

Groups = dict[str, object]

DEFAULT_CACHE_SIZE: Final = 100
DEFAULT_MAX_AGE: Final = 300.0


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
    """Groups of multi-line failures by id (see the module doc), as fail2ban's
    ``Utils.Cache(maxCount=100, maxTime=300)``: first in first out, and an id is forgotten
    ``max_age`` seconds after it was first cached — on the clock the detector is given
    (``now`` of the batch: the wall clock in the agent, fixed in a replay), not the log's."""

    __slots__ = ("_entries", "max_age", "size")

    def __init__(self, size: int = DEFAULT_CACHE_SIZE, max_age: float = DEFAULT_MAX_AGE) -> None:
        self.size = size
        self.max_age = max_age
        self._entries: OrderedDict[str, tuple[Groups, float]] = OrderedDict()

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

    def _get(self, mlfid: str, now: float | None) -> Groups | None:
        item = self._entries.get(mlfid)
        if item is None:
            return None
        if now is not None and item[1] <= now:  # expired
            del self._entries[mlfid]
            return None
        return item[0]

    def _set(self, mlfid: str, groups: Groups, now: float | None) -> None:
        entries = self._entries
        if len(entries) >= self.size:  # fail2ban: drop from the front, expired ones and one more
            while entries:
                _, (_, expires) = entries.popitem(last=False)
                if (now is None or expires > now) and len(entries) < self.size:
                    break
        entries[mlfid] = (groups, float("inf") if now is None else now + self.max_age)

    def merge(self, mlfid: str, groups: Groups, now: float | None = None) -> Groups:
        """Merge the groups of one line into its failure; returns the merged groups.
        ``now`` (epoch seconds) expires old ids; ``None``: nothing expires.

        The result has ``nofail`` set when the line is no failure (a helper, a success). A
        failure seen earlier without an address (``mlfpending``, set by the caller) makes
        the next line of the same id a failure even if it is a helper: the helper brings the
        address the failure was waiting for.
        """
        gained = bool(groups.get("mlfgained"))
        if gained and not groups.get("nofail"):
            groups["nofail"] = groups["mlfgained"]
        forget = bool(groups.pop("mlfforget", None))
        entry = self._get(mlfid, now)
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
            self._set(mlfid, groups, now)
        if groups.pop("mlfpending", 0) or (users is not None and len(users) > 1):
            groups.pop("nofail", None)
            groups.pop("mlfgained", None)
        return groups

    def pending(self, mlfid: str) -> None:
        """Mark the failure ``mlfid`` (just merged) as waiting for its address: the next line
        of the same id is a failure even if it is a helper (see :meth:`merge`). Nothing
        happens if the id is not cached (the line ended it)."""
        item = self._entries.get(mlfid)
        if item is not None:
            item[0]["mlfpending"] = 1
