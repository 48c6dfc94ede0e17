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
  ``destroy``). So an address the enforcer's view holds (``known``) — one being extended,
  shortened or removed — goes through ``add {e timeout 1s}`` (now surely present),
  ``delete {e}`` (now surely absent) and, if it should stay blocked, ``add {e timeout N}``:
  the same three statements work whatever the kernel holds, even when the view is stale.
  An address the view does not hold — every address of a bulk import — is one ``add``: one
  statement per element, so 100k new bans are one transaction of 100k elements. A removal
  always takes the robust path (it is rare, and the view may be stale). "Extend only" is
  decided against the view before anything is rendered.

Timeouts are written as ``1d2h3m4s`` (nft 1.0.6 refuses a bare count above 99,999,999 s) and
capped at :data:`MAX_TIMEOUT` (the kernel refuses about 213,504 days).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from shieldwall.blocklist import Diff
from shieldwall.enforce._libnftables import Backend, Nft, NftResult, NftUnavailable
from shieldwall.errors import EnforcerError
from shieldwall.model import Counters, Scope, parse_scope
from shieldwall.net import V6, summarize

log = logging.getLogger("shieldwall.enforce.nftables")

DEFAULT_TABLE: Final = "shieldwall"
DEFAULT_PRIORITY: Final = -10
MAX_TIMEOUT: Final = 36500 * 86400.0
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
    single = scope.is_host
    if scope.version == 4:
        return ADDR4 if single else NET4
    return ADDR6 if single else NET6


def format_timeout(seconds: int) -> str:
    """``90`` → ``1m30s``; ``86400`` → ``1d``. nft refuses a bare ``s`` count above 99999999."""
    seconds = max(1, seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n)


def remaining_seconds(expires: float, now: float) -> int:
    """Whole seconds from ``now`` to ``expires`` (epoch seconds), rounded up, at least 1, at
    most the cap."""
    left = min(expires - now, MAX_TIMEOUT)
    return max(1, math.ceil(left))


class _Timeouts(dict[float, str]):
    """expiry → its nft timeout text at one ``now`` (a bulk import shares one expiry)."""

    def __init__(self, now: float) -> None:
        super().__init__()
        self.now = now

    def __missing__(self, expires: float) -> str:
        text = self[expires] = format_timeout(remaining_seconds(expires, self.now))
        return text


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


def _sort_key(scope: Scope) -> int:
    """Version, then address, then prefix length: a Net's own order as an int."""
    return int(scope)


def _within(inner: Scope, outer: Scope) -> bool:
    return inner.subnet_of(outer)


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
    expires: float
    holes: list[Scope]


def partition(nets: Mapping[Scope, float]) -> list[tuple[Scope, float]]:
    """Disjoint CIDRs covering ``nets``, each with the latest expiry among those covering it.

    CIDRs are either disjoint or nested. A nested network that expires no later than the one
    containing it adds nothing; one that outlives it is carved out of it:
    ``{10.0.0.0/16: 1 h, 10.0.1.0/24: 2 h}`` becomes the /24 until 2 h plus the rest of the /16
    (eight disjoint CIDRs) until 1 h.
    """
    # stack of (network, effective expiry, index of the carve it falls in)
    stack: list[tuple[Scope, float, int]] = []
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
    body = ", ".join(f"{scope.text()} timeout {timeout}" for scope, timeout in items)
    return f"add element inet {table} {set_name} {{ {body} }}" if body else None


def _net_lines(
    table: str, set_name: str, nets: Mapping[Scope, float], timeouts: _Timeouts
) -> list[str]:
    lines = [f"flush set inet {table} {set_name}"]
    add = _add_line(table, set_name, [(s, timeouts[e]) for s, e in partition(nets)])
    return lines + ([add] if add else [])


@dataclass(slots=True)
class NftView:
    """What the enforcer believes the kernel holds: addresses and networks, scope → expiry
    (epoch seconds). Kept apart so that rebuilding a network set reads the networks only."""

    hosts: dict[Scope, float] = field(default_factory=dict)
    nets: dict[Scope, float] = field(default_factory=dict)

    @classmethod
    def of(cls, blocks: Mapping[Scope, float]) -> NftView:
        view = cls()
        for scope, expires in blocks.items():
            (view.hosts if scope.is_host else view.nets)[scope] = expires
        return view

    def get(self, scope: Scope) -> float | None:
        return (self.hosts if scope.is_host else self.nets).get(scope)

    def update(self, updates: Mapping[Scope, float | None]) -> None:
        """Take a batch's changes (None: the scope is gone)."""
        for scope, expires in updates.items():
            held = self.hosts if scope.is_host else self.nets
            if expires is None:
                held.pop(scope, None)
            else:
                held[scope] = expires

    def prune(self, now: float) -> None:
        """Forget what lapsed in the kernel (O(n): called once per n changes or so)."""
        self.hosts = {s: e for s, e in self.hosts.items() if e > now}
        self.nets = {s: e for s, e in self.nets.items() if e > now}

    def blocks(self) -> dict[Scope, float]:
        return {**self.hosts, **self.nets}

    def __len__(self) -> int:
        return len(self.hosts) + len(self.nets)


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What :func:`plan_batch` decided: the script, the view's changes once it ran (scope →
    expiry, None: gone), and what it skipped."""

    text: str
    updates: dict[Scope, float | None]
    blocked: int  # scopes (re)added
    unblocked: int  # scopes removed
    skipped_expired: int  # blocks whose expiry had already passed
    skipped_not_extended: int  # blocks that would not have extended a present one


def plan_batch(
    diff: Diff,
    now: float,
    view: NftView | Mapping[Scope, float],
    table: str = DEFAULT_TABLE,
) -> BatchPlan:
    """Plan one transaction for ``diff`` given the enforcer's ``view`` (scope → expiry).

    ``diff.unblock`` is taken first, then ``diff.block``. A block is skipped when its expiry
    has passed, or when it is not later than the one the view holds (extend only) and its
    scope is not being unblocked. An unblock always renders (robust even if the view is
    stale). Costs what the diff holds, plus the networks of a family whose networks change.
    """
    t = _check_table(table)
    if not isinstance(view, NftView):
        view = NftView.of(view)
    updates: dict[Scope, float | None] = dict.fromkeys(diff.unblock)
    expired = not_extended = 0
    held_hosts, held_nets = view.hosts, view.nets
    for scope, expires in diff.block.items():
        if expires <= now:
            expired += 1
            continue
        if scope not in updates:
            held = held_hosts.get(scope)
            if held is None:
                held = held_nets.get(scope)
            if held is not None and held > now and held >= expires:
                not_extended += 1
                continue
        updates[scope] = expires

    # one pass sorts the changes into the four sets (a Net is an int: version, then prefix)
    by_set: dict[str, list[Scope]] = {ADDR4: [], ADDR6: [], NET4: [], NET6: []}
    a4, a6, n4, n6 = by_set[ADDR4], by_set[ADDR6], by_set[NET4], by_set[NET6]
    for s in updates:
        if s >= V6:
            (a6 if s & 0xFF == 128 else n6).append(s)
        else:
            (a4 if s & 0xFF == 32 else n4).append(s)

    timeouts = _Timeouts(now)
    lines: list[str] = []
    for set_name in (ADDR4, ADDR6):
        addrs = by_set[set_name]
        if not addrs:
            continue
        addrs.sort()
        # held by the view, or being removed: the robust add-1s / delete / add
        robust = [s for s in addrs if updates[s] is None or s in held_hosts]
        if robust:
            lines.append(_add_line(t, set_name, [(s, "1s") for s in robust]) or "")
            elems = ", ".join(s.text() for s in robust)
            lines.append(f"delete element inet {t} {set_name} {{ {elems} }}")
        body = ", ".join(
            [f"{s.text()} timeout {timeouts[e]}" for s in addrs if (e := updates[s]) is not None]
        )
        if body:
            lines.append(f"add element inet {t} {set_name} {{ {body} }}")
    for set_name in (NET4, NET6):
        touched = by_set[set_name]
        if touched:
            nets = {s: e for s, e in held_nets.items() if set_for(s) == set_name and e > now}
            for s in touched:
                e = updates[s]
                if e is None:
                    nets.pop(s, None)
                else:
                    nets[s] = e
            lines += _net_lines(t, set_name, nets, timeouts)

    return BatchPlan(
        text="\n".join(lines) + "\n" if lines else "",
        updates=updates,
        blocked=sum(1 for e in updates.values() if e is not None),
        unblocked=sum(1 for e in updates.values() if e is None),
        skipped_expired=expired,
        skipped_not_extended=not_extended,
    )


def render_batch(
    diff: Diff,
    now: float,
    view: NftView | Mapping[Scope, float],
    table: str = DEFAULT_TABLE,
) -> str:
    """One nft transaction for a diff (empty string when there is nothing to do)."""
    return plan_batch(diff, now, view, table).text


def render_sync(active: Mapping[Scope, float], now: float, table: str = DEFAULT_TABLE) -> str:
    """One transaction that empties the four sets and re-adds every still-active scope."""
    t = _check_table(table)
    live = {s: e for s, e in active.items() if e > now}
    timeouts = _Timeouts(now)
    lines = [f"flush set inet {t} {name}" for name in SETS]
    for set_name in (ADDR4, ADDR6):
        addrs = sorted(s for s in live if set_for(s) == set_name)
        add = _add_line(t, set_name, [(s, timeouts[live[s]]) for s in addrs])
        if add:
            lines.append(add)
    for set_name in (NET4, NET6):
        nets = {s: e for s, e in live.items() if set_for(s) == set_name}
        items = [(s, timeouts[e]) for s, e in partition(nets)]
        add = _add_line(t, set_name, items)
        if add:
            lines.append(add)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- reading back


def _scopes_of(val: Any) -> list[Scope]:
    if isinstance(val, str):
        return [parse_scope(val)]
    if isinstance(val, dict):
        if "prefix" in val:
            prefix = val["prefix"]
            return [parse_scope(f"{prefix['addr']}/{prefix['len']}")]
        if "range" in val:
            low, high = (parse_scope(a) for a in val["range"])
            return summarize(low.version, low.value, high.value)
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

    One transaction per :meth:`apply` diff, run in a worker thread. If a batch fails, the
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
        self._view = NftView()
        self._since_prune = 0
        self._lock = threading.Lock()  # one operation at a time on the view and the context
        self.counters = Counters()

    @property
    def known(self) -> dict[Scope, float]:
        """The enforcer's view: scope → expiry of what it believes the kernel holds."""
        return self._view.blocks()

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

    def _apply_blocking(self, diff: Diff, now: float) -> None:
        with self._lock:
            self._apply_locked(diff, now)
            self._since_prune += len(diff)
            if self._since_prune > len(self._view) + 1024:  # amortised: O(1) per change
                self._view.prune(now)
                self._since_prune = 0

    def _take(self, plan: BatchPlan) -> None:
        self._view.update(plan.updates)

    def _apply_locked(self, diff: Diff, now: float) -> None:
        self._ensure_setup()
        plan = plan_batch(diff, now, self._view, self.table)
        self._count_skips(plan)
        if not plan.text:
            return
        result = self._run(plan.text)
        if result.rc == 0:
            self._take(plan)
            log.info(
                "nft.applied blocked=%d unblocked=%d skipped=%d",
                plan.blocked,
                plan.unblocked,
                plan.skipped_expired + plan.skipped_not_extended,
            )
            return
        self.counters.inc("nft.batch_failed")
        log.warning("nft.batch_failed changes=%d error=%s", len(diff), _err(result))
        # The table may have been flushed away (a firewall reload): re-create it, re-assert our
        # view and retry once.
        if self._restore(now):
            plan = plan_batch(diff, now, self._view, self.table)
            if not plan.text or self._run(plan.text).rc == 0:
                self._take(plan)
                log.info("nft.applied_after_restore changes=%d", len(diff))
                return
        self._apply_one_by_one(diff, now)

    def _restore(self, now: float) -> bool:
        self._setup()
        result = self._run(render_sync(self._view.blocks(), now, self.table))
        if result.rc != 0:
            log.warning("nft.restore_failed error=%s", _err(result))
            return False
        self._view.prune(now)
        return True

    def _apply_one_by_one(self, diff: Diff, now: float) -> None:
        failed = 0
        singles = [Diff({}, (s,)) for s in diff.unblock if s not in diff.block]
        singles += [Diff({s: e}, (s,) if s in diff.unblock else ()) for s, e in diff.block.items()]
        for one in singles:
            plan = plan_batch(one, now, self._view, self.table)
            if not plan.text:
                continue
            result = self._run(plan.text)
            if result.rc == 0:
                self._take(plan)
            else:
                failed += 1
                log.error("nft.change_failed change=%r error=%s", one, _err(result))
        if failed:
            self.counters.inc("nft.change_failed", failed)
        log.info("nft.applied_one_by_one changes=%d failed=%d", len(singles), failed)

    def _count_skips(self, plan: BatchPlan) -> None:
        if plan.skipped_expired:
            self.counters.inc("nft.skipped_expired", plan.skipped_expired)
        if plan.skipped_not_extended:
            self.counters.inc("nft.skipped_not_extended", plan.skipped_not_extended)

    def _sync_blocking(self, active: Mapping[Scope, float], now: float) -> None:
        with self._lock:
            self._sync_locked(active, now)

    def _sync_locked(self, active: Mapping[Scope, float], now: float) -> None:
        self._ensure_setup()
        live = {s: e for s, e in active.items() if e > now}
        result = self._run(render_sync(live, now, self.table))
        if result.rc == 0:
            self._view = NftView.of(live)
            log.info("nft.synced scopes=%d", len(live))
            return
        self.counters.inc("nft.sync_failed")
        log.warning("nft.sync_failed scopes=%d error=%s", len(active), _err(result))
        self._setup()
        flushed = self._run(render_sync({}, now, self.table))
        if flushed.rc != 0:
            raise EnforcerError(f"nft cannot flush the sets of inet {self.table}: {_err(flushed)}")
        self._view = NftView()
        self._apply_one_by_one(Diff(live), now)

    def list_elements(self) -> dict[str, dict[Scope, int | None]]:
        """Read the four sets back (JSON output): set name → scope → seconds left."""
        with self._lock:
            result = self._run(f"list table inet {self.table}", json_output=True)
        if result.rc != 0:
            raise EnforcerError(f"nft cannot list table inet {self.table}: {_err(result)}")
        return parse_elements(result.out, self.table)

    # -- the Enforcer protocol --

    async def apply(self, diff: Diff, now: float) -> None:
        if not diff:
            return
        await asyncio.to_thread(self._apply_blocking, diff, now)

    async def sync(self, active: Mapping[Scope, float], now: float) -> None:
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
