"""A small synchronous client for operator commands (token-authenticated)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import click
import httpx

from shieldwall.config.load import load_council
from shieldwall.council.auth import TOKEN_FILE
from shieldwall.errors import ShieldwallError
from shieldwall.tls import client_context

DEFAULT_URL = "http://127.0.0.1:8470"


class Operator:
    def __init__(self, url: str, token: str, tls: ssl.SSLContext | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            timeout=15.0,
            headers={"Authorization": f"Bearer {token}"},
            verify=tls or client_context(),
        )

    def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        try:
            resp = self._http.request(
                method,
                path,
                json=json,
                params=params,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise click.ClickException(f"council at {self.url} unreachable: {exc}") from exc
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        if resp.status_code == 401:
            raise click.ClickException("the council refused the operator token")
        return resp.status_code, body


def operator_from(
    config: str | None,
    url: str | None,
    token: str | None,
    token_file: str | None,
    ca: str | None = None,
    cert: str | None = None,
    key: str | None = None,
) -> Operator:
    if config:
        try:
            cfg = load_council(config)
        except ShieldwallError as exc:
            raise click.ClickException(str(exc)) from exc
        url = url or cfg.url
        token_file = token_file or str(Path(cfg.data_dir) / TOKEN_FILE)
    url = url or os.environ.get("SHIELDWALL_COUNCIL") or DEFAULT_URL
    token = token or os.environ.get("SHIELDWALL_TOKEN")
    if not token and token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise click.ClickException(f"cannot read token file {token_file}: {exc}") from exc
    if not token:
        raise click.ClickException(
            "no operator token: pass --config COUNCIL.toml, --token-file, or set SHIELDWALL_TOKEN"
        )
    if (cert is None) != (key is None):
        raise click.ClickException("give --cert and --key together (mutual TLS)")
    try:
        tls = client_context(ca, cert, key, "--ca" if ca else "") if ca or cert else None
    except ShieldwallError as exc:
        raise click.ClickException(str(exc)) from exc
    return Operator(url, token, tls)


def operator_options(fn: Any) -> Any:
    fn = click.option(
        "--key", "key", type=click.Path(dir_okay=False), help="Client key (mutual TLS)."
    )(fn)
    fn = click.option(
        "--cert",
        "cert",
        type=click.Path(dir_okay=False),
        help="Client certificate, for a council that requires mutual TLS.",
    )(fn)
    fn = click.option(
        "--ca",
        "ca",
        envvar="SHIELDWALL_CA",
        type=click.Path(dir_okay=False),
        help="The only CA the council's certificate may chain to (default: the system's).",
    )(fn)
    fn = click.option("--token-file", help="File holding the operator token.")(fn)
    fn = click.option("--token", envvar="SHIELDWALL_TOKEN", help="Operator token.")(fn)
    fn = click.option(
        "--council",
        "url",
        envvar="SHIELDWALL_COUNCIL",
        help=f"Council URL (default {DEFAULT_URL}).",
    )(fn)
    fn = click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False),
        help="The council's config file (gives URL and token).",
    )(fn)
    return fn
