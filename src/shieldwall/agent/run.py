"""The agent: sources → detector → local bans + outbox → council; council stream → enforcers.

Wiring and supervision only; what to block is decided by the detector (alerts), the agent's
protected set, and the council's decision log.

Besides alerts, every batch's hits are counted per (source, rule) as *sightings* (failures,
and successes from ``kind = "success"`` rules, which are never bucketed) and reported for
alliance-wide detection; a bounded in-memory index of recent sightings answers the
council's consultations (Article 4) with a signed report carrying ``answers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
import sys
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from shieldwall.agent.client import (
    CouncilClient,
    ForgedStream,
    StreamBatch,
    StreamSnapshot,
    new_report_id,
)
from shieldwall.agent.control import ControlServer
from shieldwall.agent.recent import RecentIndex
from shieldwall.agent.sources.base import Batch
from shieldwall.agent.sources.file import FileSource, Position
from shieldwall.agent.sources.journald import JournalBatch, JournalPosition, JournalSource
from shieldwall.agent.sources.stdin import StdinSource
from shieldwall.agent.state import AgentState, SightingRow
from shieldwall.blocklist import BlockList, Claim
from shieldwall.clock import Clock, SystemClock
from shieldwall.config.schema import AgentConfig, EnforcerSpec, Watch
from shieldwall.detect import Detector, builtin_rule, load_rule
from shieldwall.detect.bucket import BucketRow
from shieldwall.detect.detector import Tally, tally_of
from shieldwall.detect.fail2ban.rules import load_fail2ban_rule
from shieldwall.detect.rule import Rule
from shieldwall.enforce.base import Enforcer
from shieldwall.enforce.log import LogEnforcer
from shieldwall.errors import ConfigError, CouncilError, InvalidScope, ShieldwallError
from shieldwall.lockfile import DirLock
from shieldwall.model import (
    Alert,
    EventKind,
    Hit,
    Scope,
    address_scope,
    parse_address,
    parse_scope,
    scope_str,
)
from shieldwall.tls import client_context
from shieldwall.treaty.protect import Protected
from shieldwall.wire import signing
from shieldwall.wire.messages import (
    WireAnswer,
    WireConsult,
    WireLift,
    WireProtect,
    alert_to_wire,
)

log = logging.getLogger("shieldwall.agent")

AnyBatch = Batch | JournalBatch

PRUNE_EVERY = timedelta(minutes=1)
SIGHTING_DELAY = 1.0
"""Seconds pending sightings wait for a batch with alerts before they get their own report."""
MISSING_WARN_EVERY = timedelta(minutes=1)
"""How often the agent repeats that a watched file does not exist."""
STALE_WARN_EVERY = timedelta(minutes=10)
"""How often, at most, the agent warns that it read failures too old to be news."""
COUNCIL_KEY_FILE = "council.pub"
"""The council key pinned on first contact (state-dir), when agent.toml names none."""
MAX_ANSWERED = 10_000
"""Consultations remembered as answered (each is answered once)."""
JOURNAL_MIN = 10_000
"""Events the view's journal may hold before it is compacted into a snapshot (it is also
compacted once it holds more events than there are active decisions)."""
LOG_EACH = 20
"""A stream batch of at most this many events is logged event by event; larger ones in one
line."""


_F2B_OPTIONS = re.compile(r"^(?P<path>[^\[]+\.conf)(?:\[(?P<options>[^\]]*)\])?$")


def load_rules(
    names: Sequence[str], origin: str, ignoreip: list[Scope] | None = None
) -> list[Rule]:
    """Rule names are shipped rules (``sshd``), paths to native ``.toml`` files, or fail2ban
    filter files, optionally with options as in a jail: ``/etc/fail2ban/filter.d/sshd.conf``,
    ``…/sshd.conf[mode=aggressive, maxretry=3]``. A jail option ``ignoreip`` (addresses and
    networks, space-separated) is added to ``ignoreip``: the member never bans those."""
    rules = []
    for name in names:
        try:
            f2b = _F2B_OPTIONS.match(name.strip())
            if f2b is not None:
                options = {}
                for item in (f2b.group("options") or "").split(","):
                    if item.strip():
                        key, sep, value = item.partition("=")
                        if not sep:
                            raise ConfigError(origin, "watch.rules", f"{name}: {item!r} is not k=v")
                        options[key.strip()] = value.strip()
                rule, _, jail = load_fail2ban_rule(f2b.group("path"), options)
                rules.append(rule)
                if ignoreip is not None:
                    ignoreip += jail.ignoreip
            elif name.endswith(".toml") or "/" in name:
                rules.append(load_rule(name))
            else:
                rules.append(builtin_rule(name))
        except ConfigError:
            raise
        except (ShieldwallError, OSError, ValueError) as exc:
            raise ConfigError(origin, "watch.rules", f"{name}: {exc}") from exc
    return rules


def sightings_of(
    found: Iterable[Hit] | Tally, kind: str, protected: Protected, recent: RecentIndex
) -> list[SightingRow]:
    """Hits counted per (source, rule) — given as hits or as a detector's tally — one
    sighting each, with the first and last time. Protected sources are left out (the
    council would not track them); every counted hit also goes into ``recent`` (the
    consultation index)."""
    tally = found if isinstance(found, dict) else tally_of(found)
    out: list[SightingRow] = []
    success = kind == "success"
    kind = "success" if success else "failure"
    for entry in tally.values():
        scope = address_scope(entry.source)
        if protected.reason_for(scope) is not None:  # remembered per address
            continue
        n = entry.count
        last = datetime.fromtimestamp(entry.last, UTC)
        recent.add(scope, last, failures=0 if success else n, successes=n if success else 0)
        out.append(SightingRow(scope.text(), entry.rule, kind, n, entry.first, entry.last))
    return out


def make_enforcer(spec: EnforcerSpec, state_dir: str) -> Enforcer:
    if spec.kind == "log":
        return LogEnforcer(spec.path)
    if spec.kind == "nftables":
        from shieldwall.enforce.nftables import NftEnforcer

        return NftEnforcer(table=spec.table)
    raise ConfigError("", "enforcer.kind", f"unknown enforcer {spec.kind!r}")


def council_addresses(url: str) -> list[Scope]:
    """The addresses the council's URL names (resolved once, at start): a decision covering
    one would cut this member off from the council, and from the unban."""
    host = urlsplit(url).hostname or ""
    try:
        return [address_scope(parse_address(host))]
    except InvalidScope:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        log.warning("council.unresolved host=%s %s: its addresses are not protected", host, exc)
        return []
    out: list[Scope] = []
    for info in infos:
        with contextlib.suppress(InvalidScope):
            scope = address_scope(parse_address(str(info[4][0])))
            if scope not in out:
                out.append(scope)
    return out


def read_key(path: str) -> str:
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(path, "key-file", f"cannot read: {exc.strerror or exc}") from exc
    try:
        signing.signing_key(text)
    except ShieldwallError as exc:
        raise ConfigError(path, "key-file", str(exc)) from exc
    return text


@dataclass(slots=True)
class Enforcement:
    """The member's enforcers, fed the block list's diffs (one ``apply`` per diff each)."""

    enforcers: list[Enforcer]

    async def sync(self, target: dict[Scope, float], now: float) -> None:
        for e in self.enforcers:
            await e.sync(target, now)

    async def apply(self, blocks: BlockList, now: float) -> int:
        """Apply what changed in ``blocks`` since the last call; returns the diff's size."""
        changes = blocks.take_diff(now)
        if not changes:
            return 0
        for e in self.enforcers:
            try:
                await e.apply(changes, now)
            except ShieldwallError:
                log.exception("enforce.failed enforcer=%s", e.name)
        return len(changes)


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Clock | None = None,
        enforcers: list[Enforcer] | None = None,
        client: CouncilClient | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._dir_lock = DirLock(config.state_dir, "agent", config.origin, "state-dir")
        """No second agent on this state-dir (it would report the same lines twice)."""
        self.state = AgentState(config.state_dir)
        key = read_key(config.key_file)
        self.client = client or CouncilClient(
            config.council,
            config.member,
            key,
            self.clock,
            council_key=config.council_key,
            tls=client_context(config.council_ca, config.tls_cert, config.tls_key, config.origin)
            if config.council.startswith("https://")
            else None,
        )
        self.enforcement = Enforcement(
            enforcers
            if enforcers is not None
            else [make_enforcer(s, config.state_dir) for s in config.enforcers]
        )
        ignoreip: list[Scope] = []
        self._watches = [(w, load_rules(w.rules, config.origin, ignoreip)) for w in config.watch]
        self.protected = Protected.build(
            allowlist=config.allowlist,
            protect_private=config.protect_private,
            council=council_addresses(config.council),
            ignoreip=ignoreip,
        )
        """What this member never blocks, whatever the council says: its allowlist, private
        ranges (unless told otherwise) and its council's addresses."""
        self.council_protected = Protected.build(protect_private=False)
        """What the council protects (its allowlist, members' addresses): never banned
        locally (its own decisions the council has checked against it already)."""
        try:
            self.tz = ZoneInfo(config.timezone)
        except Exception as exc:
            raise ConfigError(
                config.origin, "timezone", f"unknown zone {config.timezone!r}"
            ) from exc
        self.blocks = BlockList()
        """The council's decisions and this member's own bans: what the enforcers hold."""
        self.seq = 0
        """The last decision-log sequence number applied."""
        self._wake_outbox = asyncio.Event()
        self._stop = asyncio.Event()
        self.connected = asyncio.Event()
        self.recent = RecentIndex()
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._refused_logged = False
        self._stale_warned = datetime.min.replace(tzinfo=UTC)

    # -- lifecycle -----------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        now = self.clock.now()
        self.seq, claims = self.state.view()
        self.blocks.reset(self._admit(claims))
        local = self.state.local_bans(now)
        for scope, expires in local.items():
            self.blocks.ban(scope, expires.timestamp())
        self.blocks.take_diff(now.timestamp())  # the sync below sends the whole set
        await self.enforcement.sync(self.blocks.target(now.timestamp()), now.timestamp())
        log.info(
            "agent.started member=%s seq=%d decisions=%d local=%d",
            self.config.member,
            self.seq,
            len(claims),
            len(local),
        )
        tasks = [
            asyncio.create_task(self._follow(), name="follow"),
            asyncio.create_task(self._deliver(), name="deliver"),
            asyncio.create_task(self._housekeep(), name="housekeep"),
        ]
        tasks += [
            asyncio.create_task(self._tail(w, rules), name=f"tail:{w.key}")
            for w, rules in self._watches
        ]
        stop = asyncio.create_task(self._stop.wait())
        control = ControlServer(self.config.state_dir, self._control)
        await control.start()
        try:
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stop and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            for t in [stop, *tasks]:
                t.cancel()
            await asyncio.gather(stop, *tasks, return_exceptions=True)
            await control.close()
            for e in self.enforcement.enforcers:
                await e.close()
            await self.client.close()
            self.state.close()
            self._dir_lock.close()

    async def _enforce(self) -> None:
        await self.enforcement.apply(self.blocks, self.clock.now().timestamp())

    # -- logs → detection → local bans + outbox --------------------------------------

    async def _tail(self, watch: Watch, all_rules: list[Rule]) -> None:
        # one detector for all rules; success rules only count hits (no bucket, no alert)
        detector = Detector(all_rules, tz=self.tz, live=True)  # old lines are history
        successes = frozenset(r.name for r in all_rules if r.kind == "success")
        rule_names = {r.name for r in all_rules if r.kind != "success"}
        detector.restore(
            BucketRow.from_data(rule, source, data)
            for rule, source, data in self.state.buckets()
            if rule in rule_names
        )
        detector.take_rows()  # start tracking changes from here
        key = watch.key
        saved = self.state.position(key) if watch.kind != "stdin" else None
        pruned = self.clock.now()

        async def handle(batch: AnyBatch) -> None:
            nonlocal pruned
            if (now := self.clock.now()) - pruned > PRUNE_EVERY:
                detector.prune(now)  # idle buckets go; their rows are deleted next commit
                pruned = now
            await self._handle_batch(key, detector, batch, successes)

        if watch.kind == "file":
            start = Position.from_dict(saved) if saved else None
            source = FileSource(
                watch.path,
                start,
                from_end=watch.from_end and start is None,
                rotate_grace=self.config.rotate_grace,
            )
            last = start
            never = warned = datetime.min.replace(tzinfo=UTC)
            shown = ""
            try:
                while True:
                    batch = source.poll()
                    health = "missing" if source.missing else "reading"
                    if health != shown:
                        shown = health
                        self.state.set_health(f"watch:{key}", health, self.clock.now())
                        if health == "reading" and warned != never:
                            warned = never
                            log.info("watch.found path=%s", watch.path)
                    if source.missing and (now := self.clock.now()) - warned > MISSING_WARN_EVERY:
                        warned = now
                        log.warning(
                            "watch.missing path=%s: no such file; nothing is read from it until "
                            "it appears (on journald-only hosts such as Debian 12, watch the "
                            'journal: journal = ["_SYSTEMD_UNIT=ssh.service"])',
                            watch.path,
                        )
                    if batch is None:
                        await asyncio.sleep(self.config.poll_interval)
                        continue
                    if not batch.count and not batch.skipped and batch.position == last:
                        continue
                    await handle(batch)
                    last = batch.position
                    await asyncio.sleep(0)  # a flood must not starve delivery and the stream
            finally:
                source.close()
        elif watch.kind == "journal":
            journal = JournalSource(
                matches=watch.journal,
                start=JournalPosition.from_dict(saved) if saved else None,
                directory=watch.journal_directory,
                from_end=watch.from_end,
            )
            async with contextlib.aclosing(journal.batches(self.config.poll_interval)) as jb:
                async for jbatch in jb:
                    await handle(jbatch)
                    await asyncio.sleep(0)
        else:
            stdin = StdinSource(sys.stdin.buffer)
            async with contextlib.aclosing(stdin.batches()) as sb:
                async for sbatch in sb:
                    await handle(sbatch)
                    await asyncio.sleep(0)
            log.info("stdin.ended lines=%d", stdin.counters.get("lines"))
            await asyncio.Event().wait()  # input ended; keep following the council

    async def _handle_batch(
        self,
        path: str,
        detector: Detector,
        batch: AnyBatch,
        successes: frozenset[str] = frozenset(),
    ) -> None:
        now = self.clock.now()
        before = dict(detector.counters.values)
        # a file or stdin batch read as one block is scanned as it is (no split, no join)
        lines = batch.line_block if isinstance(batch, Batch) else batch.lines
        detection = detector.feed_many(lines, now, hits=False, tally=True)
        alerts: list[Alert] = detection.alerts
        failures: Tally = {}
        logins: Tally = {}
        for key, entry in (detection.tally or {}).items():
            (logins if entry.rule in successes else failures)[key] = entry
        sightings = sightings_of(failures, "failure", self.protected, self.recent)
        if logins:
            sightings += sightings_of(logins, "success", self.protected, self.recent)
        after = detector.counters.values
        counters = {k: v - before.get(k, 0) for k, v in after.items()}
        counters["lines.read"] = len(lines)
        counters["lines.skipped"] = batch.skipped
        if counters.get("stale") and now - self._stale_warned > STALE_WARN_EVERY:
            self._stale_warned = now
            log.warning(
                "hits.stale count=%d path=%s: failures older than their rule's findtime were "
                "read now and counted as history, not alerted (a first start on an old log, "
                "or a timezone mismatch: if the log is being written now, check timezone in "
                "%s)",
                counters["stale"],
                path,
                self.config.origin or "agent.toml",
            )
        counters["successes"] = sum(entry.count for entry in logins.values())
        if counters["successes"]:  # the detector counts them as hits too: hits are failures
            counters["hits"] = counters.get("hits", 0) - counters["successes"]
        bans: dict[Scope, datetime] = {}
        reportable = []
        for a in alerts:
            scope = address_scope(a.source)
            why = self.protected.reason_for(scope) or self.council_protected.reason_for(scope)
            if why is not None:
                counters[f"alerts.refused.{why.split(':')[1]}"] = (
                    counters.get(f"alerts.refused.{why.split(':')[1]}", 0) + 1
                )
                log.warning("alert.protected source=%s reason=%s", a.source, why)
                continue
            reportable.append(alert_to_wire(a))
            if self.config.local_ban:
                duration = a.bantime or self.config.local_ban_duration
                bans[scope] = max(bans.get(scope, now), now + timedelta(seconds=duration))
        report_id = new_report_id() if reportable else None
        self.state.commit_batch(
            path=path,
            position=batch.position.to_dict(),
            buckets=detector.take_rows(),
            counters=counters,
            local_bans=bans,
            report_id=report_id,
            alerts=reportable,
            now=now,
            sightings=sightings,
        )
        if bans:
            for i, (scope, expires) in enumerate(bans.items()):
                self.blocks.ban(scope, expires.timestamp())
                if i < LOG_EACH:
                    log.info("ban.local scope=%s until=%s", scope_str(scope), expires.isoformat())
            if len(bans) > LOG_EACH:
                log.info("ban.local more=%d", len(bans) - LOG_EACH)
            await self._enforce()
        if reportable:
            self._wake_outbox.set()

    # -- outbox → council ------------------------------------------------------------

    async def _deliver(self) -> None:
        backoff = 0.1
        while True:
            self.state.flush_sightings(new_report_id(), self.clock.now(), SIGHTING_DELAY)
            items = self.state.outbox(50)
            if not items:
                self._wake_outbox.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_outbox.wait(), SIGHTING_DELAY / 2)
                continue
            for item in items:
                try:
                    answer = await self.client.send_report(
                        item.report_id, item.alerts, item.sightings, item.answers
                    )
                except CouncilError as exc:
                    if exc.permanent:  # the reports wait on disk until an operator acts
                        await self._refused(exc, "reports")
                        break
                    if exc.status == 400:  # will never be accepted: keep it out of the way
                        log.error("report.rejected id=%s %s", item.report_id, exc)
                        self.state.outbox_done(item.id, "reports.rejected")
                        continue
                    self.state.outbox_attempted(item.id)
                    log.warning("report.retry id=%s in=%.1fs %s", item.report_id, backoff, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    break
                backoff = 0.1
                self.state.outbox_done(item.id, "reports.sent")
                if self._lift_refused(answer):
                    await self._enforce()

    # -- council stream → enforcers ---------------------------------------------------

    async def _follow(self) -> None:
        backoff = 0.1
        while True:
            since = self.seq if self.seq > 0 else None
            try:
                if self.client.council_key is None:
                    await self._pin_council_key()
                async for item in self.client.stream(since):
                    if not self.connected.is_set():
                        log.info("stream.connected since=%s", since)
                        self.connected.set()
                        self.state.set_health("stream", "connected", self.clock.now())
                    backoff = 0.1
                    if isinstance(item, WireConsult):
                        self._answer(item)
                        continue
                    if isinstance(item, WireProtect):
                        self._council_protects(item)
                        await self._enforce()
                        continue
                    if isinstance(item, WireLift):
                        self._lift_inside(_scopes(item.scopes), "an operator's unban")
                        await self._enforce()
                        continue
                    if isinstance(item, StreamSnapshot):
                        self._apply_snapshot(item)
                    else:
                        self._apply_batch(item)
                    await self._enforce()
            except ForgedStream as exc:
                self.state.bump({"stream.forged": 1})
                self.state.set_health(
                    "stream", f"refused a forged message: {exc}", self.clock.now()
                )
                log.error(
                    "stream.forged since=%s retry_in=%.1fs %s: refused, nothing of it applied "
                    "(someone between this member and its council, or a council with another "
                    "key: council-key in %s)",
                    since,
                    backoff,
                    exc,
                    self.config.origin or "agent.toml",
                )
            except CouncilError as exc:
                if exc.permanent:
                    self.connected.clear()
                    self.state.set_health("stream", f"refused by the council: {exc.reason}",
                                          self.clock.now())  # fmt: skip
                    await self._refused(exc, "stream")
                    continue
                log.warning("stream.lost since=%s retry_in=%.1fs %s", since, backoff, exc)
                self.state.set_health("stream", f"lost: {str(exc)[:200]}", self.clock.now())
            self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _refused(self, exc: CouncilError, what: str) -> None:
        """The council refuses this member for good (revoked, unknown, another key): say so
        once, in one ERROR, and stop asking (local defence goes on; reports stay on disk).
        Only a restart, after an operator acted, tries again."""
        self.state.bump({f"council.refused.{exc.reason}": 1})
        if not self._refused_logged:
            self._refused_logged = True
            log.error(
                "council.refused reason=%s member=%s: the council refuses this member (%s); "
                "the agent stops asking and keeps defending this host alone. Fix it at the "
                "council (shieldwall members add/rekey) or in %s (member, key-file), then "
                "restart the agent",
                exc.reason,
                self.config.member,
                exc,
                self.config.origin or "agent.toml",
            )
        else:
            log.debug("council.refused %s: %s", what, exc)
        await asyncio.Event().wait()  # for good: until the agent stops

    async def _pin_council_key(self) -> None:
        """No ``council-key`` in agent.toml: pin the one saved at first contact, or the one
        the council presents now (and save it), loudly. Anything else is refused after."""
        path = Path(self.config.state_dir) / COUNCIL_KEY_FILE
        try:
            saved = path.read_text().strip()
        except FileNotFoundError:
            saved = ""
        if saved:
            self.client.pin(saved)
            return
        key = await self.client.presented_key()
        path.write_text(key + "\n")
        self.client.pin(key)
        log.warning(
            "council.key.pinned key=%s saved=%s: trusted on first contact; set council-key = "
            "%r in %s (what `shieldwall council key` prints on the council) so that no one "
            "between this member and its council can be trusted instead",
            key,
            path,
            key,
            self.config.origin or "agent.toml",
        )

    async def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        """A request on the control socket (``shieldwall agent unban``)."""
        if request.get("op") != "unban":
            raise ValueError(f"unknown op {request.get('op')!r}")
        scope = parse_scope(str(request["scope"]))
        lifted = self._lift_inside([scope], "unbanned at this host by an operator")
        await self._enforce()
        held = self.blocks.blocked(scope, self.clock.now().timestamp()) is not None
        return {"lifted": lifted, "council": held}

    def _council_protects(self, message: WireProtect) -> None:
        """The council's protected set (its allowlist, members' addresses): never banned
        locally from now on; a local ban inside it is lifted."""
        scopes = _scopes(text for text, _why in message.scopes)
        self.council_protected = Protected.build(allowlist=scopes, protect_private=False)
        self._lift_inside(scopes, "the council protects it")
        log.info("council.protects scopes=%d", len(scopes))

    def _lift_refused(self, answer: Mapping[str, object]) -> int:
        """The council refused some of this member's alerts as protected (its allowlist,
        a member's address): the local bans on them are lifted."""
        refused = answer.get("refused")
        if not isinstance(refused, list):
            return 0
        lifted = 0
        for r in refused:
            if isinstance(r, dict) and str(r.get("reason", "")).startswith("protected:"):
                why = f"the council refused it: {r['reason']}"
                lifted += self._lift_inside(_scopes([str(r.get("scope"))]), why)
        return lifted

    def _lift_inside(self, nets: Sequence[Scope], why: str) -> int:
        """Lift this member's local bans inside any of ``nets``."""
        if not nets:
            return 0
        inside = Protected.build(allowlist=nets, protect_private=False)
        lifted = 0
        for scope in list(self.blocks.local_bans()):
            if inside.reason_for(scope, remember=False) is not None:
                self.blocks.lift(scope)
                self.state.drop_local_ban(scope)
                lifted += 1
                if lifted <= LOG_EACH:
                    log.warning("ban.lifted scope=%s: %s", scope_str(scope), why)
        if lifted:
            self.state.bump({"bans.lifted": lifted})
        return lifted

    def _admit(self, claims: Iterable[Claim]) -> Iterator[Claim]:
        """The claims this member may enforce: one overlapping what it protects (its own
        ranges, its council) is refused whatever the council says, counted and logged."""
        reason_for = self.protected.reason_for
        refused: list[tuple[Claim, str]] = []
        for claim in claims:
            why = reason_for(claim[1])
            if why is None:
                yield claim
            else:
                refused.append((claim, why))
        self._not_enforced(refused)

    def _not_enforced(self, refused: Sequence[tuple[Claim, str]]) -> None:
        """Log and count council decisions refused as protected."""
        for (decision_id, scope, _), why in refused[:LOG_EACH]:
            log.warning(
                "decision.protected id=%s scope=%s reason=%s: not enforced",
                decision_id,
                scope_str(scope),
                why,
            )
        if refused:
            self.state.bump({"decisions.protected": len(refused)})

    def _apply_snapshot(self, snap: StreamSnapshot) -> None:
        self.blocks.reset(self._admit(snap.claims))
        self.seq = snap.seq
        self.state.save_snapshot(snap.seq, snap.claims)
        if snap.malformed:
            self.state.bump({"stream.malformed": snap.malformed})
        log.info("stream.snapshot seq=%d active=%d", snap.seq, len(snap.claims))

    def _apply_batch(self, batch: StreamBatch) -> None:
        """Apply a batch of log events to the block list and journal it: costs what the batch
        holds (the journal is compacted once it outgrows the active set)."""
        fresh = [e for e in batch.events if e.seq > self.seq]
        lifted: list[Scope] = []
        blocks = self.blocks
        reason_for = self.protected.reason_for
        protected: list[tuple[Claim, str]] = []
        for e in fresh:
            if e.kind is EventKind.ADD:
                if (why := reason_for(e.scope)) is not None:
                    protected.append(((e.decision_id, e.scope, e.expires), why))
                    continue
                blocks.claim(e.decision_id, e.scope, e.expires)
            elif blocks.release(e.decision_id, lift_local=e.kind is EventKind.REVOKE):
                # an operator's unban lifts this member's own ban on that scope too
                lifted.append(e.scope)
        if batch.malformed:
            self.state.bump({"stream.malformed": batch.malformed})
        self._not_enforced(protected)
        if not fresh:
            return
        self.seq = fresh[-1].seq
        for scope in lifted:
            self.state.drop_local_ban(scope)
        journaled = self.state.journal(self.seq, fresh, batch.raw)
        if journaled > max(JOURNAL_MIN, blocks.claims):
            self.state.save_snapshot(self.seq, blocks.items())
        if len(fresh) <= LOG_EACH:
            for e in fresh:
                log.info("decision.%s seq=%d scope=%s", e.kind.value, e.seq, scope_str(e.scope))
        else:
            counts = {k.value: sum(1 for e in fresh if e.kind is k) for k in EventKind}
            log.info(
                "decisions.applied seq=%d..%d %s",
                fresh[0].seq,
                self.seq,
                " ".join(f"{k}={n}" for k, n in counts.items() if n),
            )

    def _answer(self, consult: WireConsult) -> None:
        """Answer a consultation from the recent-sightings index, once, if this member saw
        the source (an answer with nothing seen is not sent)."""
        now = self.clock.now()
        if consult.concern in self._answered or consult.expires <= now:
            return
        self._answered[consult.concern] = None
        while len(self._answered) > MAX_ANSWERED:
            self._answered.popitem(last=False)
        try:
            source = parse_address(consult.source)
        except InvalidScope:
            return
        failures, successes = self.recent.answer(source, consult.lookback, now)
        if not failures and not successes:
            self.state.bump({"consults.unseen": 1})
            return
        answer = WireAnswer(concern=consult.concern, failures=failures, successes=successes)
        self.state.queue_answers(new_report_id(), [answer], now)
        self.state.bump({"consults.answered": 1})
        log.info(
            "consult.answered concern=%s source=%s failures=%d successes=%d",
            consult.concern,
            source,
            failures,
            successes,
        )
        self._wake_outbox.set()

    async def _housekeep(self) -> None:
        pruned = self.clock.now()
        while True:
            await asyncio.sleep(1.0)
            now = self.clock.now()
            self.blocks.expire(now.timestamp())  # local bans that ran out (a heap: no scan)
            if now - pruned > PRUNE_EVERY:
                self.state.local_bans(now)  # deletes the expired rows
                pruned = now
            await self._enforce()


def _scopes(texts: Iterable[str]) -> list[Scope]:
    """The scopes among ``texts`` (what the council sent); anything else is left out."""
    out: list[Scope] = []
    for text in texts:
        with contextlib.suppress(InvalidScope):
            out.append(parse_scope(text))
    return out


def check_runnable(config: AgentConfig) -> None:
    """Refuse, in one line, an agent that would protect nothing in silence."""
    origin = config.origin or "agent.toml"
    if not config.watch:
        raise ConfigError(origin, "watch", "no [[watch]]: the agent would read nothing")
    if not config.enforcers:
        raise ConfigError(
            origin,
            "enforcer",
            'no [[enforcer]]: the agent would block nothing (kind = "nftables"; "log" for a '
            "dry run)",
        )
    for i, w in enumerate(config.watch):
        if w.kind == "file" and Path(w.path).is_dir():
            raise ConfigError(
                origin, f"watch[{i}].path", f"{w.path} is a directory: name the log file"
            )


def run_agent(config: AgentConfig) -> None:
    """Run until SIGINT/SIGTERM."""
    check_runnable(config)

    async def main() -> None:
        agent = Agent(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, agent.stop)
        await agent.run()

    asyncio.run(main())
