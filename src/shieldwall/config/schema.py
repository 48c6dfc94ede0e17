"""Configuration schemas. Pure: ``parse_*`` take decoded TOML text and return frozen values.

Unknown keys and bad values are :class:`~shieldwall.errors.ConfigError` naming the file, the
key and why (CrowdSec's ``KnownFields(true)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import msgspec

from shieldwall.errors import ConfigError, InvalidScope, ShieldwallError
from shieldwall.model import Scope, parse_scope
from shieldwall.treaty.terms import TreatyTerms
from shieldwall.wire import signing

Duration = int | float | str
_T = TypeVar("_T")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, None: 1}


def parse_duration(value: Duration, origin: str = "", key: str = "") -> float:
    """``30``, ``"30s"``, ``"10m"``, ``"4h"``, ``"1d"``, ``"250ms"`` → seconds (> 0)."""
    if isinstance(value, bool):
        raise ConfigError(origin, key, "a duration is a number of seconds or text like '4h'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(value)
        if m is None:
            raise ConfigError(origin, key, f"{value!r} is not a duration (like 30s, 10m, 4h, 1d)")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ConfigError(origin, key, "a duration must be positive")
    return seconds


def _scopes(values: list[str], origin: str, key: str) -> tuple[Scope, ...]:
    out = []
    for i, v in enumerate(values):
        try:
            out.append(parse_scope(v))
        except InvalidScope as exc:
            raise ConfigError(origin, f"{key}[{i}]", str(exc)) from exc
    return tuple(out)


# ---- council -------------------------------------------------------------------------


class _CouncilToml(msgspec.Struct, forbid_unknown_fields=True, rename="kebab"):
    data_dir: str
    listen: str = "127.0.0.1:8470"
    replay_window: Duration = "5m"
    store: str | None = None
    fanout: str = "inprocess://"
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    header_timeout: Duration = "10s"
    body_timeout: Duration = "60s"
    treaty: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class CouncilConfig:
    data_dir: str
    host: str
    port: int
    replay_window: float
    treaty: TreatyTerms
    origin: str = ""
    store: str = ""
    """The store's URL; empty: ``sqlite://<data-dir>/council.db``."""
    fanout: str = "inprocess://"
    tls_cert: str | None = None
    """The certificate chain (PEM) the council serves: with ``tls_key``, it speaks HTTPS."""
    tls_key: str | None = None
    tls_client_ca: str | None = None
    """Mutual TLS: every client must present a certificate this CA signed."""

    header_timeout: float = 10.0
    """Seconds a client has to send a request's headers (slowloris sockets are closed)."""
    body_timeout: float = 60.0
    """Seconds a client has to send a request's body once its headers are in."""

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def loopback(self) -> bool:
        """Listening on a loopback address only (nothing crosses a network)."""
        return self.host == "localhost" or self.host.startswith("127.") or self.host == "::1"

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite://{self.data_dir.rstrip('/')}/council.db"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


def _listen(value: str, origin: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(origin, "listen", f"{value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def parse_treaty(table: dict[str, Any], origin: str) -> TreatyTerms:
    """The ``[treaty]`` table through :meth:`TreatyTerms.from_mapping` (``docs/treaty.md``);
    its ValueError (``treaty.KEY: why``) becomes a ConfigError naming the file and the key."""
    try:
        return TreatyTerms.from_mapping(table)
    except ValueError as exc:
        text = str(exc)
        key, sep, why = text.partition(": ")
        if not sep or not key.startswith("treaty"):
            key, why = "treaty", text
        raise ConfigError(origin, key, why) from exc


def parse_council(data: dict[str, Any], origin: str) -> CouncilConfig:
    raw = _convert(data, _CouncilToml, origin)
    host, port = _listen(raw.listen, origin)
    treaty = parse_treaty(raw.treaty, origin)
    for key, url in (("store", raw.store), ("fanout", raw.fanout)):
        if url is not None and "://" not in url:
            raise ConfigError(origin, key, f"{url!r} is not a URL (scheme://…)")
    if (raw.tls_cert is None) != (raw.tls_key is None):
        missing = "tls-key" if raw.tls_key is None else "tls-cert"
        raise ConfigError(origin, missing, "give tls-cert and tls-key together")
    if raw.tls_client_ca is not None and raw.tls_cert is None:
        raise ConfigError(origin, "tls-client-ca", "mutual TLS needs tls-cert and tls-key")
    return CouncilConfig(
        data_dir=raw.data_dir,
        host=host,
        port=port,
        replay_window=parse_duration(raw.replay_window, origin, "replay-window"),
        treaty=treaty,
        origin=origin,
        store=raw.store or "",
        fanout=raw.fanout,
        tls_cert=raw.tls_cert,
        tls_key=raw.tls_key,
        tls_client_ca=raw.tls_client_ca,
        header_timeout=parse_duration(raw.header_timeout, origin, "header-timeout"),
        body_timeout=parse_duration(raw.body_timeout, origin, "body-timeout"),
    )


# ---- agent ---------------------------------------------------------------------------


class _WatchToml(msgspec.Struct, forbid_unknown_fields=True, rename="kebab"):
    rules: list[str]
    path: str | None = None
    journal: list[str] | None = None  # journalctl matches, e.g. ["_SYSTEMD_UNIT=ssh.service"]
    journal_directory: str | None = None
    stdin: bool = False
    from_end: bool = False


class _EnforcerToml(msgspec.Struct, forbid_unknown_fields=True, rename="kebab"):
    kind: Literal["nftables", "log"]
    path: str | None = None  # log: file to write (default: the agent's log)
    table: str = "shieldwall"  # nftables: table name


class _AgentToml(msgspec.Struct, forbid_unknown_fields=True, rename="kebab"):
    member: str
    key_file: str
    council: str
    state_dir: str
    council_key: str | None = None
    council_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    timezone: str = "UTC"
    poll_interval: Duration = 0.05
    rotate_grace: Duration = "5s"
    local_ban: bool = True
    local_ban_duration: Duration = "4h"
    protect_private: bool = True
    allowlist: list[str] = []
    watch: list[_WatchToml] = []
    enforcer: list[_EnforcerToml] = []


@dataclass(frozen=True, slots=True)
class Watch:
    """One log source and the rules run on it: a file (``path``), the systemd journal
    (``journal`` matches), or standard input (``stdin``)."""

    path: str
    rules: tuple[str, ...]
    from_end: bool
    kind: str = "file"  # file | journal | stdin
    journal: tuple[str, ...] = ()
    journal_directory: str | None = None

    @property
    def key(self) -> str:
        """Where the agent stores this source's read position."""
        if self.kind == "journal":
            return (
                "journal:"
                + " ".join(self.journal)
                + (f" @{self.journal_directory}" if self.journal_directory else "")
            )
        return self.path


@dataclass(frozen=True, slots=True)
class EnforcerSpec:
    kind: str
    path: str | None
    table: str


@dataclass(frozen=True, slots=True)
class AgentConfig:
    member: str
    key_file: str
    council: str
    state_dir: str
    timezone: str
    poll_interval: float
    local_ban: bool
    local_ban_duration: float
    protect_private: bool
    allowlist: tuple[Scope, ...]
    watch: tuple[Watch, ...]
    enforcers: tuple[EnforcerSpec, ...]
    origin: str = ""
    rotate_grace: float = 5.0
    """After a rename rotation, the old file is read until it has been quiet this long."""
    council_key: str | None = None
    """The council's public key (``shieldwall council key``): every stream message must be
    signed by it. None: the key the council presents first is pinned (and warned about)."""
    council_ca: str | None = None
    """The only CA the council's certificate may chain to (None: the system's CAs)."""
    tls_cert: str | None = None
    tls_key: str | None = None
    """A client certificate for a council that requires mutual TLS."""


_NFT_TABLE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_member_name(name: str, origin: str = "", key: str = "member") -> str:
    if not _NAME.match(name):
        raise ConfigError(
            origin, key, f"{name!r} is not a member name (letters, digits, '.', '_', '-'; ≤ 64)"
        )
    return name


def parse_agent(data: dict[str, Any], origin: str) -> AgentConfig:
    raw = _convert(data, _AgentToml, origin)
    check_member_name(raw.member, origin)
    if not raw.council.startswith(("http://", "https://")):
        raise ConfigError(origin, "council", f"{raw.council!r} is not an http(s) URL")
    watches = []
    for i, w in enumerate(raw.watch):
        if not w.rules:
            raise ConfigError(origin, f"watch[{i}].rules", "name at least one rule")
        given = [k for k, v in (("path", w.path), ("journal", w.journal), ("stdin", w.stdin)) if v]
        if len(given) != 1:
            raise ConfigError(
                origin, f"watch[{i}]", "give exactly one of path, journal or stdin = true"
            )
        kind = "file" if given == ["path"] else given[0]
        if w.journal_directory and kind != "journal":
            raise ConfigError(origin, f"watch[{i}].journal-directory", "only with journal")
        watches.append(
            Watch(
                path=w.path or ("-" if kind == "stdin" else ""),
                rules=tuple(w.rules),
                from_end=w.from_end,
                kind=kind,
                journal=tuple(w.journal or ()),
                journal_directory=w.journal_directory,
            )
        )
    if sum(w.kind == "stdin" for w in watches) > 1:
        raise ConfigError(origin, "watch", "standard input can be watched once")
    for i, e in enumerate(raw.enforcer):
        if e.kind == "nftables" and not _NFT_TABLE.match(e.table):
            raise ConfigError(
                origin,
                f"enforcer[{i}].table",
                f"{e.table!r} is not an nftables table name (a letter, then letters, digits "
                "or '_'; at most 32)",
            )
    if raw.council_key is not None:
        try:
            signing.verify_key(raw.council_key)
        except ShieldwallError as exc:
            raise ConfigError(
                origin,
                "council-key",
                f"not a public key ({exc}): copy what "
                "`shieldwall council key --config council.toml` prints",
            ) from exc
    if (raw.council_ca or raw.tls_cert) and not raw.council.startswith("https://"):
        key = "council-ca" if raw.council_ca else "tls-cert"
        raise ConfigError(origin, key, f"the council URL {raw.council!r} is not https://")
    if (raw.tls_cert is None) != (raw.tls_key is None):
        missing = "tls-key" if raw.tls_key is None else "tls-cert"
        raise ConfigError(origin, missing, "give tls-cert and tls-key together")
    return AgentConfig(
        member=raw.member,
        key_file=raw.key_file,
        council=raw.council.rstrip("/"),
        state_dir=raw.state_dir,
        timezone=raw.timezone,
        poll_interval=parse_duration(raw.poll_interval, origin, "poll-interval"),
        rotate_grace=parse_duration(raw.rotate_grace, origin, "rotate-grace"),
        local_ban=raw.local_ban,
        local_ban_duration=parse_duration(raw.local_ban_duration, origin, "local-ban-duration"),
        protect_private=raw.protect_private,
        allowlist=_scopes(raw.allowlist, origin, "allowlist"),
        watch=tuple(watches),
        enforcers=tuple(EnforcerSpec(e.kind, e.path, e.table) for e in raw.enforcer),
        origin=origin,
        council_key=raw.council_key,
        council_ca=raw.council_ca,
        tls_cert=raw.tls_cert,
        tls_key=raw.tls_key,
    )


def _convert(data: dict[str, Any], cls: type[_T], origin: str) -> _T:
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        key = ""
        m = re.search(r"at `\$\.?([^`]*)`", msg)
        if m:
            key = m.group(1)
            msg = msg[: m.start()].rstrip(" -")
        m2 = re.search(r"unknown field `([^`]+)`", msg)
        if m2:
            key = f"{key}.{m2.group(1)}" if key else m2.group(1)
            msg = "unknown key"
        m3 = re.search(r"missing required field `([^`]+)`", msg)
        if m3:
            key = f"{key}.{m3.group(1)}" if key else m3.group(1)
            msg = "required key is missing"
        raise ConfigError(origin, key, msg) from exc
