"""The nftables enforcer: drops packets from blocked scopes with kernel-side timeouts.

Layout (one ``inet`` table, ``shieldwall`` by default)::

    set addr4 { type ipv4_addr; flags timeout; }            single IPv4 addresses (/32)
    set addr6 { type ipv6_addr; flags timeout; }            single IPv6 addresses (/128)
    set net4  { type ipv4_addr; flags interval, timeout; }  wider IPv4 networks
    set net6  { type ipv6_addr; flags interval, timeout; }  wider IPv6 networks
    chain input { type filter hook input priority -10; policy accept; }
        ip saddr @addr4 counter drop   (and the same for net4, addr6, net6)

Every element carries its own timeout (whole seconds left until the decision expires, rounded
*up*, at least 1 s), so blocks lapse in the kernel even if the agent dies. The chain has no
exception for established connections, so a ban also cuts those. Only ``input`` is hooked by
default; ``hooks=("input", "forward")`` also covers routed traffic (containers, VMs).

Why four sets — measured with nft 1.0.6 (kernel 6.18):

* An interval set refuses an element that overlaps one already present ("interval overlaps
  with an existing one"): an address inside a blocked CIDR, a CIDR covering a blocked address
  or a nested CIDR all fail, and a failing element aborts its whole transaction.
  ``auto-merge`` would accept them but merges them into ranges that cannot be deleted (or
  expire) piecewise. So single addresses — the overwhelming majority of bans — live in plain
  hash sets (``addr4``/``addr6``), which never conflict with anything.
* Networks are expected to be few (operator bans). Whenever a batch touches a network of one
  family, that family's network set is *rebuilt* in the same transaction (``flush set`` +
  ``add element``) from the enforcer's own view, as a partition: CIDRs are either disjoint or
  nested, and where they nest the inner one only needs its own element if it outlives the
  outer one; the outer one is then carved around it (``10.0.0.0/16`` minus ``10.0.1.0/24`` is
  eight disjoint CIDRs).
  No element ever overlaps another, every point gets the latest expiry of the networks that
  cover it, and a removed network disappears exactly.
* Whether re-adding an existing element replaces its timeout depends on the kernel (it does
  on the 6.18 kernel these notes were measured on: a 2 h ban can silently become 60 s), and
  deleting an absent element fails with ENOENT and aborts the batch (1.0.6 has no
  ``destroy``). So every touched address goes through ``add {e timeout 1s}`` (now surely
  present), ``delete {e}`` (now surely absent) and, if it should stay blocked,
  ``add {e timeout N}``: the same three statements work whatever the kernel holds, even when
  the enforcer's view is stale. "Extend only" is decided against that view (``known``) before
  anything is rendered.

Timeouts are written as ``1d2h3m4s`` (nft 1.0.6 refuses a bare count above 99,999,999 s) and
capped at :data:`MAX_TIMEOUT` (the kernel refuses about 213,504 days).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from shieldwall.enforce._libnftables import Backend, Nft, NftResult, NftUnavailable
from shieldwall.errors import EnforcerError
from shieldwall.model import Add, Change, Counters, Remove, Scope

log = logging.getLogger("shieldwall.enforce.nftables")

DEFAULT_TABLE: Final = "shieldwall"
DEFAULT_PRIORITY: Final = -10
MAX_TIMEOUT: Final = timedelta(days=36500)
"""Longest timeout given to an element (nft 1.0.6 refuses values around 213,504 days)."""

ADDR4: Final = "addr4"
ADDR6: Final = "addr6"
NET4: Final = "net4"
NET6: Final = "net6"
SETS: Final = (ADDR4, ADDR6, NET4, NET6)
HOOKS: Final = ("input", "forward")

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


# --------------------------------------------------------------------------- rendering (pure)


def _check_table(table: str) -> str:
    if not _NAME.fullmatch(table):
        raise ValueError(f"invalid nftables table name: {table!r}")
    return table


def set_for(scope: Scope) -> str:
    """The set that holds ``scope``: ``addr4``/``addr6`` for one address, else ``net4``/``net6``."""
    single = scope.num_addresses == 1
    if scope.version == 4:
        return ADDR4 if single else NET4
    return ADDR6 if single else NET6


def _element(scope: Scope) -> str:
    if scope.num_addresses == 1:
        return str(scope.network_address)
    return str(scope)


def format_timeout(seconds: int) -> str:
    """``90`` → ``1m30s``; ``86400`` → ``1d``. nft refuses a bare ``s`` count above 99999999."""
    seconds = max(1, seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n)


def remaining_seconds(expires: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``expires``, rounded up, at least 1, at most the cap."""
    left = min(expires - now, MAX_TIMEOUT).total_seconds()
    return max(1, math.ceil(left))


def render_setup(
    table: str = DEFAULT_TABLE,
    priority: int = DEFAULT_PRIORITY,
    *,
    hooks: Sequence[str] = ("input",),
) -> str:
    """The idempotent script that creates the table, its four sets and the drop chain(s).

    ``add`` leaves existing objects (and the sets' elements) alone; the chain is flushed and its
    rules re-added, so running it again never duplicates rules. A chain that already exists
    with another priority makes it fail (nft cannot change a base chain's priority).
    """
    t = _check_table(table)
    if not hooks or any(h not in HOOKS for h in hooks) or len(set(hooks)) != len(hooks):
        raise ValueError(f"hooks must be distinct values among {HOOKS}, got {tuple(hooks)}")
    lines = [
        f"add table inet {t}",
        f"add set inet {t} {ADDR4} {{ type ipv4_addr; flags timeout; }}",
        f"add set inet {t} {ADDR6} {{ type ipv6_addr; flags timeout; }}",
        f"add set inet {t} {NET4} {{ type ipv4_addr; flags interval, timeout; }}",
        f"add set inet {t} {NET6} {{ type ipv6_addr; flags interval, timeout; }}",
    ]
    for hook in hooks:
        lines += [
            f"add chain inet {t} {hook} {{ type filter hook {hook} priority {int(priority)}; "
            "policy accept; }",
            f"flush chain inet {t} {hook}",
            f"add rule inet {t} {hook} ip saddr @{ADDR4} counter drop",
            f"add rule inet {t} {hook} ip saddr @{NET4} counter drop",
            f"add rule inet {t} {hook} ip6 saddr @{ADDR6} counter drop",
            f"add rule inet {t} {hook} ip6 saddr @{NET6} counter drop",
        ]
    return "\n".join(lines) + "\n"


def _sort_key(scope: Scope) -> tuple[int, int, int]:
    return (scope.version, int(scope.network_address), scope.prefixlen)


def _within(inner: Scope, outer: Scope) -> bool:
    if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        return inner.subnet_of(outer)
    return False


def _subtract(net: Scope, holes: list[Scope]) -> list[Scope]:
    """``net`` minus the disjoint subnets ``holes``, as disjoint CIDRs in address order."""
    if not holes:
        return [net]
    if any(h == net for h in holes):
        return []
    low, high = net.subnets()
    return _subtract(low, [h for h in holes if _within(h, low)]) + _subtract(
        high, [h for h in holes if _within(h, high)]
    )


@dataclass(slots=True)
class _Carve:
    """A network that gets its own elements: itself minus the carves nested in it."""

    net: Scope
    expires: datetime
    holes: list[Scope]


def partition(nets: Mapping[Scope, datetime]) -> list[tuple[Scope, datetime]]:
    """Disjoint CIDRs covering ``nets``, each with the latest expiry among those covering it.

    CIDRs are either disjoint or nested. A nested network that expires no later than the one
    containing it adds nothing; one that outlives it is carved out of it:
    ``{10.0.0.0/16: 1 h, 10.0.1.0/24: 2 h}`` becomes the /24 until 2 h plus the rest of the /16
    (eight disjoint CIDRs) until 1 h.
    """
    # stack of (network, effective expiry, index of the carve it falls in)
    stack: list[tuple[Scope, datetime, int]] = []
    carves: list[_Carve] = []
    for net, expires in sorted(nets.items(), key=lambda kv: _sort_key(kv[0])):
        while stack and not _within(net, stack[-1][0]):
            stack.pop()
        if stack and expires <= stack[-1][1]:
            stack.append((net, stack[-1][1], stack[-1][2]))
            continue
        if stack:
            carves[stack[-1][2]].holes.append(net)
        carves.append(_Carve(net, expires, []))
        stack.append((net, expires, len(carves) - 1))
    out = [(piece, c.expires) for c in carves for piece in _subtract(c.net, c.holes)]
    out.sort(key=lambda kv: _sort_key(kv[0]))
    return out


def _add_line(table: str, set_name: str, items: Iterable[tuple[Scope, str]]) -> str | None:
    body = ", ".join(f"{_element(scope)} timeout {timeout}" for scope, timeout in items)
    return f"add element inet {table} {set_name} {{ {body} }}" if body else None


def _net_lines(
    table: str, set_name: str, nets: Mapping[Scope, datetime], now: datetime
) -> list[str]:
    lines = [f"flush set inet {table} {set_name}"]
    items = [(s, format_timeout(remaining_seconds(e, now))) for s, e in partition(nets)]
    add = _add_line(table, set_name, items)
    return lines + ([add] if add else [])


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What :func:`plan_batch` decided: the script, the view after it, and what it skipped."""

    text: str
    known: dict[Scope, datetime]
    blocked: int  # scopes (re)added
    unblocked: int  # scopes removed
    skipped_expired: int  # Adds whose expiry had already passed
    skipped_not_extended: int  # Adds that would not have extended a present block


def plan_batch(
    changes: Sequence[Change],
    now: datetime,
    known: Mapping[Scope, datetime],
    table: str = DEFAULT_TABLE,
) -> BatchPlan:
    """Plan one transaction for ``changes`` given the enforcer's view ``known`` (scope → expiry).

    Changes are taken in order. An ``Add`` is skipped when its expiry has passed or is not later
    than the one already held (extend only). A ``Remove`` always renders (robust even if
    ``known`` is stale). Entries of ``known`` that have expired are dropped from the view.
    """
    t = _check_table(table)
    state = {s: e for s, e in known.items() if e > now}
    touched: dict[Scope, None] = {}
    expired = not_extended = 0
    for change in changes:
        scope = change.scope
        if isinstance(change, Add):
            if change.expires <= now:
                expired += 1
                continue
            held = state.get(scope)
            if held is not None and held >= change.expires:
                not_extended += 1
                continue
            state[scope] = change.expires
        elif isinstance(change, Remove):
            state.pop(scope, None)
        else:  # pragma: no cover - Change is a closed union
            raise TypeError(f"not a Change: {change!r}")
        touched[scope] = None

    lines: list[str] = []
    for set_name in (ADDR4, ADDR6):
        addrs = sorted((s for s in touched if set_for(s) == set_name), key=_sort_key)
        if not addrs:
            continue
        lines.append(_add_line(t, set_name, [(s, "1s") for s in addrs]) or "")
        elems = ", ".join(_element(s) for s in addrs)
        lines.append(f"delete element inet {t} {set_name} {{ {elems} }}")
        items = [(s, format_timeout(remaining_seconds(state[s], now))) for s in addrs if s in state]
        add = _add_line(t, set_name, items)
        if add:
            lines.append(add)
    for set_name in (NET4, NET6):
        if any(set_for(s) == set_name for s in touched):
            nets = {s: e for s, e in state.items() if set_for(s) == set_name}
            lines += _net_lines(t, set_name, nets, now)

    return BatchPlan(
        text="\n".join(lines) + "\n" if lines else "",
        known=state,
        blocked=sum(1 for s in touched if s in state),
        unblocked=sum(1 for s in touched if s not in state),
        skipped_expired=expired,
        skipped_not_extended=not_extended,
    )


def render_batch(
    changes: Sequence[Change],
    now: datetime,
    known: Mapping[Scope, datetime],
    table: str = DEFAULT_TABLE,
) -> str:
    """One nft transaction for a batch of changes (empty string when there is nothing to do)."""
    return plan_batch(changes, now, known, table).text


def render_sync(active: Mapping[Scope, datetime], now: datetime, table: str = DEFAULT_TABLE) -> str:
    """One transaction that empties the four sets and re-adds every still-active scope."""
    t = _check_table(table)
    live = {s: e for s, e in active.items() if e > now}
    lines = [f"flush set inet {t} {name}" for name in SETS]
    for set_name in (ADDR4, ADDR6):
        addrs = sorted((s for s in live if set_for(s) == set_name), key=_sort_key)
        add = _add_line(
            t, set_name, [(s, format_timeout(remaining_seconds(live[s], now))) for s in addrs]
        )
        if add:
            lines.append(add)
    for set_name in (NET4, NET6):
        nets = {s: e for s, e in live.items() if set_for(s) == set_name}
        items = [(s, format_timeout(remaining_seconds(e, now))) for s, e in partition(nets)]
        add = _add_line(t, set_name, items)
        if add:
            lines.append(add)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- reading back


def _scopes_of(val: Any) -> list[Scope]:
    if isinstance(val, str):
        return [ipaddress.ip_network(val)]
    if isinstance(val, dict):
        if "prefix" in val:
            prefix = val["prefix"]
            return [ipaddress.ip_network(f"{prefix['addr']}/{prefix['len']}")]
        if "range" in val:
            low, high = (ipaddress.ip_address(a) for a in val["range"])
            return list(ipaddress.summarize_address_range(low, high))
        if "elem" in val:
            return _scopes_of(val["elem"].get("val"))
    raise ValueError(f"unexpected nft set element: {val!r}")


def parse_elements(doc: str, table: str = DEFAULT_TABLE) -> dict[str, dict[Scope, int | None]]:
    """Parse ``nft -j list table inet TABLE`` into set → scope → seconds until it expires."""
    result: dict[str, dict[Scope, int | None]] = {name: {} for name in SETS}
    for item in json.loads(doc).get("nftables", []):
        entry = item.get("set") if isinstance(item, dict) else None
        if not entry or entry.get("table") != table or entry.get("name") not in result:
            continue
        elements = result[entry["name"]]
        for elem in entry.get("elem", []):
            expires: int | None = None
            if isinstance(elem, dict) and "elem" in elem:
                expires = elem["elem"].get("expires")
            for scope in _scopes_of(elem):
                elements[scope] = expires
    return result


# --------------------------------------------------------------------------- the enforcer


class NftEnforcer:
    """Blocks scopes in an nftables ``inet`` table (see the module docstring for the layout).

    One transaction per :meth:`apply` batch, run in a worker thread. If a batch fails, the
    table is re-created and re-filled from the enforcer's view and the batch retried once; if
    it still fails, its changes are applied one by one, and those that fail are logged and
    counted (``nft.change_failed``). Only a failing setup raises
    :class:`~shieldwall.errors.EnforcerError`.
    """

    name = "nftables"

    def __init__(
        self,
        table: str = DEFAULT_TABLE,
        priority: int = DEFAULT_PRIORITY,
        *,
        hooks: Sequence[str] = ("input",),
        backend: Backend | None = None,
    ) -> None:
        self.table = _check_table(table)
        self.priority = int(priority)
        self._setup_text = render_setup(self.table, self.priority, hooks=hooks)
        self._backend: Backend | None = backend
        self._nft: Nft | None = None
        self._ready = False
        self._known: dict[Scope, datetime] = {}
        self._lock = threading.Lock()  # one operation at a time on the view and the context
        self.counters = Counters()

    @property
    def known(self) -> Mapping[Scope, datetime]:
        """The enforcer's view: scope → expiry of what it believes the kernel holds."""
        return dict(self._known)

    @property
    def backend(self) -> Backend | None:
        """``libnftables`` or ``subprocess`` once the first call has run."""
        return self._nft.backend if self._nft is not None else None

    # -- blocking helpers (run in a worker thread) --

    def _run(self, text: str, *, json_output: bool = False) -> NftResult:
        if self._nft is None:
            try:
                self._nft = Nft(self._backend)
            except NftUnavailable as exc:
                raise EnforcerError(f"nftables unavailable: {exc}") from exc
        return self._nft.run(text, json=json_output)

    def _setup(self) -> None:
        result = self._run(self._setup_text)
        if result.rc != 0:
            self._ready = False
            raise EnforcerError(f"nft setup of table inet {self.table} failed: {_err(result)}")
        self._ready = True
        log.info("nft.setup table=%s priority=%d", self.table, self.priority)

    def _ensure_setup(self) -> None:
        if not self._ready:
            self._setup()

    def _apply_blocking(self, changes: Sequence[Change], now: datetime) -> None:
        with self._lock:
            self._apply_locked(changes, now)

    def _apply_locked(self, changes: Sequence[Change], now: datetime) -> None:
        self._ensure_setup()
        plan = plan_batch(changes, now, self._known, self.table)
        self._count_skips(plan)
        if not plan.text:
            self._known = plan.known
            return
        result = self._run(plan.text)
        if result.rc == 0:
            self._known = plan.known
            log.info(
                "nft.applied blocked=%d unblocked=%d skipped=%d",
                plan.blocked,
                plan.unblocked,
                plan.skipped_expired + plan.skipped_not_extended,
            )
            return
        self.counters.inc("nft.batch_failed")
        log.warning("nft.batch_failed changes=%d error=%s", len(changes), _err(result))
        # The table may have been flushed away (a firewall reload): re-create it, re-assert our
        # view and retry once.
        if self._restore(now):
            plan = plan_batch(changes, now, self._known, self.table)
            if not plan.text or self._run(plan.text).rc == 0:
                self._known = plan.known
                log.info("nft.applied_after_restore changes=%d", len(changes))
                return
        self._apply_one_by_one(changes, now)

    def _restore(self, now: datetime) -> bool:
        self._setup()
        result = self._run(render_sync(self._known, now, self.table))
        if result.rc != 0:
            log.warning("nft.restore_failed error=%s", _err(result))
            return False
        self._known = {s: e for s, e in self._known.items() if e > now}
        return True

    def _apply_one_by_one(self, changes: Sequence[Change], now: datetime) -> None:
        failed = 0
        for change in changes:
            plan = plan_batch([change], now, self._known, self.table)
            if not plan.text:
                self._known = plan.known
                continue
            result = self._run(plan.text)
            if result.rc == 0:
                self._known = plan.known
            else:
                failed += 1
                log.error("nft.change_failed change=%r error=%s", change, _err(result))
        if failed:
            self.counters.inc("nft.change_failed", failed)
        log.info("nft.applied_one_by_one changes=%d failed=%d", len(changes), failed)

    def _count_skips(self, plan: BatchPlan) -> None:
        if plan.skipped_expired:
            self.counters.inc("nft.skipped_expired", plan.skipped_expired)
        if plan.skipped_not_extended:
            self.counters.inc("nft.skipped_not_extended", plan.skipped_not_extended)

    def _sync_blocking(self, active: Mapping[Scope, datetime], now: datetime) -> None:
        with self._lock:
            self._sync_locked(active, now)

    def _sync_locked(self, active: Mapping[Scope, datetime], now: datetime) -> None:
        self._ensure_setup()
        result = self._run(render_sync(active, now, self.table))
        if result.rc == 0:
            self._known = {s: e for s, e in active.items() if e > now}
            log.info("nft.synced scopes=%d", len(self._known))
            return
        self.counters.inc("nft.sync_failed")
        log.warning("nft.sync_failed scopes=%d error=%s", len(active), _err(result))
        self._setup()
        flushed = self._run(render_sync({}, now, self.table))
        if flushed.rc != 0:
            raise EnforcerError(f"nft cannot flush the sets of inet {self.table}: {_err(flushed)}")
        self._known = {}
        self._apply_one_by_one([Add(s, e) for s, e in active.items() if e > now], now)

    def list_elements(self) -> dict[str, dict[Scope, int | None]]:
        """Read the four sets back (JSON output): set name → scope → seconds left."""
        with self._lock:
            result = self._run(f"list table inet {self.table}", json_output=True)
        if result.rc != 0:
            raise EnforcerError(f"nft cannot list table inet {self.table}: {_err(result)}")
        return parse_elements(result.out, self.table)

    # -- the Enforcer protocol --

    async def apply(self, changes: Sequence[Change], now: datetime) -> None:
        if not changes:
            return
        await asyncio.to_thread(self._apply_blocking, list(changes), now)

    async def sync(self, active: Mapping[Scope, datetime], now: datetime) -> None:
        await asyncio.to_thread(self._sync_blocking, dict(active), now)

    async def close(self) -> None:
        await asyncio.to_thread(self._close_blocking)

    def _close_blocking(self) -> None:
        with self._lock:
            if self._nft is not None:
                self._nft.close()
                self._nft = None
            self._ready = False


def _err(result: NftResult) -> str:
    return (
        " | ".join(line.strip() for line in result.err.strip().splitlines()[:3])
        or f"rc={result.rc}"
    )
