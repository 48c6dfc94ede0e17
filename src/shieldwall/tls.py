"""One TLS context per process for every HTTP client shieldwall makes.

httpx builds a context (loading the whole CA bundle: about 50 ms of CPU) for every client
it creates, twice for an async one, even for ``http://`` URLs. A process that talks to the
council from many clients — the load of ``bench/volume.py``, a test starting fifty agents,
an operator command — pays that once instead.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_context() -> ssl.SSLContext:
    """The verifying context httpx would build (certifi, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` when set), built on first use and shared."""
    return httpx.create_ssl_context(trust_env=True)
