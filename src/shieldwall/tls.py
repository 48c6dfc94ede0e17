"""TLS for the council and its clients: one context per setting, per process.

Clients (agents, operator commands) verify the council's certificate against the system's
CAs (OpenSSL's default paths: ``/etc/ssl/certs`` on Debian, ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` when set) or, when given, against one CA file only (``council-ca``,
``--ca``: a private CA is pinned, the public ones no longer count). A client certificate
(``tls-cert`` / ``tls-key``) is presented to a council that asks for one (mutual TLS).

Building a context loads a CA bundle (about 50 ms of CPU): a process that talks to the
council from many clients — the load of ``bench/volume.py``, a test starting fifty agents,
an operator command — builds each one once.
"""

from __future__ import annotations

import functools
import ssl

from shieldwall.errors import ConfigError, os_reason


@functools.cache
def client_context(
    ca: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    origin: str = "",
) -> ssl.SSLContext:
    """A verifying client context (hostname checked); ``ca``: the only CA trusted;
    ``cert``/``key``: the client certificate for mutual TLS. Raises ConfigError naming the
    file that cannot be used (``origin``: the config file the setting came from)."""
    try:
        ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(origin, "council-ca", f"cannot use {ca}: {_why(exc)}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        _load_chain(ctx, cert, key, origin, "tls-cert")
    return ctx


def server_context(
    cert: str, key: str, client_ca: str | None = None, origin: str = ""
) -> ssl.SSLContext:
    """The council's context: its certificate chain and key; with ``client_ca``, every
    client must present a certificate that CA signed (mutual TLS)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, cert, key, origin, "tls-cert")
    if client_ca:
        try:
            ctx.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                origin, "tls-client-ca", f"cannot use {client_ca}: {_why(exc)}"
            ) from exc
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def reload_chain(ctx: ssl.SSLContext, cert: str, key: str, origin: str = "") -> None:
    """Load a renewed certificate into a live context: new connections get it, open ones
    (members' streams) keep theirs. Raises ConfigError; the context is unchanged then."""
    _load_chain(ctx, cert, key, origin, "tls-cert")


def _load_chain(ctx: ssl.SSLContext, cert: str, key: str | None, origin: str, name: str) -> None:
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        files = cert if not key else f"{cert} / {key}"
        raise ConfigError(
            origin, name, f"cannot use {files}: {_why(exc)} (a PEM certificate chain and its key)"
        ) from exc


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return os_reason(exc)
    return str(exc) or type(exc).__name__
