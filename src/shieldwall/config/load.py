"""The only module that reads configuration files."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from shieldwall.config.schema import AgentConfig, CouncilConfig, parse_agent, parse_council
from shieldwall.errors import ConfigError


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), "", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), "", "not valid UTF-8") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), "", f"not valid TOML: {exc}") from exc


def _resolve(base: Path, value: str) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p))


def load_council(path: str | Path) -> CouncilConfig:
    cfg = parse_council(read_toml(path), str(path))
    base = Path(path).resolve().parent
    store = cfg.store
    if store.startswith("sqlite://"):
        db = store.removeprefix("sqlite://")
        if db != ":memory:":  # a relative path is relative to the config file
            store = "sqlite://" + _resolve(base, db)
    return replace(
        cfg,
        data_dir=_resolve(base, cfg.data_dir),
        store=store,
        tls_cert=_maybe(base, cfg.tls_cert),
        tls_key=_maybe(base, cfg.tls_key),
        tls_client_ca=_maybe(base, cfg.tls_client_ca),
    )


def _maybe(base: Path, value: str | None) -> str | None:
    return None if value is None else _resolve(base, value)


def load_agent(path: str | Path) -> AgentConfig:
    cfg = parse_agent(read_toml(path), str(path))
    base = Path(path).resolve().parent
    return replace(
        cfg,
        key_file=_resolve(base, cfg.key_file),
        state_dir=_resolve(base, cfg.state_dir),
        council_ca=_maybe(base, cfg.council_ca),
        tls_cert=_maybe(base, cfg.tls_cert),
        tls_key=_maybe(base, cfg.tls_key),
        watch=tuple(
            replace(
                w,
                path=_resolve(base, w.path) if w.kind == "file" else w.path,
                journal_directory=_resolve(base, w.journal_directory)
                if w.journal_directory
                else None,
            )
            for w in cfg.watch
        ),
        enforcers=tuple(
            replace(e, path=_resolve(base, e.path) if e.path else None) for e in cfg.enforcers
        ),
    )
