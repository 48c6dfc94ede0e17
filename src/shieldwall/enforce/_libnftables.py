"""A small ctypes wrapper over ``libnftables.so.1``, with an ``nft -f -`` fallback.

One call runs one nft *script* (any number of commands, one kernel transaction for the
ruleset-changing ones) and returns ``(rc, out, err)``. Nothing here knows about shieldwall's
tables; see :mod:`shieldwall.enforce.nftables`.

* The library is tried first (``libnftables.so.1``, then ``ctypes.util.find_library``). It is
  ~30x cheaper than a process per call, and batches of 100 k elements go through in one call.
* When it cannot be loaded, every call becomes one ``nft -f -`` process with the script on
  stdin (``nft -j -f FILE`` for JSON output: 1.0.6 prints nothing for ``-j -f -``). Never one
  process per address: callers put a whole batch in one script.
* A libnftables context is not thread-safe; calls on one :class:`Nft` are serialised by a lock,
  so it can be used from ``asyncio.to_thread``. The context's netlink socket belongs to the
  network namespace the process was in when the context was created.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import shutil
import subprocess
import tempfile
import threading
from typing import Final, Literal, NamedTuple

log = logging.getLogger("shieldwall.enforce.nftables")

LIBRARY_NAME: Final = "libnftables.so.1"
NFT_CTX_DEFAULT: Final = 0
NFT_CTX_OUTPUT_JSON: Final = 1 << 4
SUBPROCESS_TIMEOUT: Final = 120.0

Backend = Literal["libnftables", "subprocess"]


class NftResult(NamedTuple):
    rc: int
    out: str
    err: str


class NftUnavailable(RuntimeError):
    """Neither libnftables nor an ``nft`` executable is available."""


def _load_library() -> ctypes.CDLL | None:
    names = [LIBRARY_NAME]
    found = ctypes.util.find_library("nftables")
    if found and found not in names:
        names.append(found)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            _declare(lib)
        except AttributeError:  # an unrelated library with that name
            continue
        return lib
    return None


def _declare(lib: ctypes.CDLL) -> None:
    p = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_new.restype = p
    lib.nft_ctx_free.argtypes = [p]
    lib.nft_ctx_free.restype = None
    lib.nft_ctx_buffer_output.argtypes = [p]
    lib.nft_ctx_buffer_output.restype = ctypes.c_int
    lib.nft_ctx_buffer_error.argtypes = [p]
    lib.nft_ctx_buffer_error.restype = ctypes.c_int
    lib.nft_ctx_get_output_buffer.argtypes = [p]
    lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_error_buffer.argtypes = [p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_output_get_flags.argtypes = [p]
    lib.nft_ctx_output_get_flags.restype = ctypes.c_uint
    lib.nft_ctx_output_set_flags.argtypes = [p, ctypes.c_uint]
    lib.nft_ctx_output_set_flags.restype = None
    lib.nft_run_cmd_from_buffer.argtypes = [p, ctypes.c_char_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


class Nft:
    """Runs nft scripts through libnftables, or ``nft -f -`` when the library is missing.

    ``backend`` forces one (``"subprocess"`` is useful in tests); ``None`` picks the library
    when it loads. Raises :class:`NftUnavailable` when nothing usable is found.
    """

    def __init__(self, backend: Backend | None = None, *, nft_path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._lib: ctypes.CDLL | None = None
        self._ctx: int | None = None
        self._nft_path = nft_path
        if backend in (None, "libnftables"):
            self._lib = _load_library()
            if self._lib is not None:
                ctx = self._lib.nft_ctx_new(NFT_CTX_DEFAULT)
                if not ctx:
                    self._lib = None
                else:
                    self._ctx = int(ctx)
                    if self._lib.nft_ctx_buffer_output(ctx) or self._lib.nft_ctx_buffer_error(ctx):
                        self._lib.nft_ctx_free(ctx)
                        self._lib, self._ctx = None, None
            if self._lib is None and backend == "libnftables":
                raise NftUnavailable(f"cannot load {LIBRARY_NAME}")
        if self._lib is None:
            self._nft_path = nft_path or shutil.which("nft")
            if self._nft_path is None:
                raise NftUnavailable(f"neither {LIBRARY_NAME} nor an nft executable was found")
        self.backend: Backend = "libnftables" if self._lib is not None else "subprocess"

    def run(self, text: str, *, json: bool = False) -> NftResult:
        """Run ``text`` (one nft script) and return ``(rc, out, err)``; rc 0 is success."""
        with self._lock:
            if self._closed:
                raise NftUnavailable("this Nft is closed")
            if self._lib is not None and self._ctx is not None:
                return self._run_library(self._lib, self._ctx, text, json)
            return self._run_subprocess(text, json)

    def _run_library(self, lib: ctypes.CDLL, ctx: int, text: str, json: bool) -> NftResult:
        flags = int(lib.nft_ctx_output_get_flags(ctx))
        wanted = flags | NFT_CTX_OUTPUT_JSON if json else flags & ~NFT_CTX_OUTPUT_JSON
        if wanted != flags:
            lib.nft_ctx_output_set_flags(ctx, wanted)
        rc = int(lib.nft_run_cmd_from_buffer(ctx, text.encode("utf-8")))
        out = _text(lib.nft_ctx_get_output_buffer(ctx))
        err = _text(lib.nft_ctx_get_error_buffer(ctx))
        return NftResult(rc, out, err)

    def _run_subprocess(self, text: str, json: bool) -> NftResult:
        nft = self._nft_path
        if nft is None:
            return NftResult(-1, "", "no nft executable")
        if not json:
            return self._exec([nft, "-f", "-"], text)
        # nft 1.0.6 with -j first tries to parse the script as JSON, which consumes stdin, and
        # then sees nothing: give it a file instead.
        with tempfile.NamedTemporaryFile("w", suffix=".nft", encoding="utf-8") as script:
            script.write(text)
            script.flush()
            return self._exec([nft, "-j", "-f", script.name], None)

    @staticmethod
    def _exec(argv: list[str], stdin: str | None) -> NftResult:
        try:
            proc = subprocess.run(
                argv,
                input=stdin,
                stdin=subprocess.DEVNULL if stdin is None else None,
                capture_output=True,
                text=True,
                timeout=SUBPROCESS_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return NftResult(-1, "", f"{argv[0]}: {exc}")
        return NftResult(proc.returncode, proc.stdout, proc.stderr)

    def close(self) -> None:
        with self._lock:
            if self._lib is not None and self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
            self._lib, self._ctx = None, None
            self._closed = True

    def __enter__(self) -> Nft:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_default: Nft | None = None
_default_lock = threading.Lock()


def run(text: str, *, json: bool = False) -> tuple[int, str, str]:
    """Run one nft script on a process-wide :class:`Nft`; returns ``(rc, out, err)``."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Nft()
        nft = _default
    return nft.run(text, json=json)
