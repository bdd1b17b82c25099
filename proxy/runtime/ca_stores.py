"""aiohttp's CA stores, loaded beside start-up rather than in its way.

aiohttp builds its two default SSL contexts when it is imported, loading the system's
CA store into each: ~40 ms here, a tenth of `tollgate serve`'s start-up, spent inside
an import on the main thread (bench/README.md, *Start-up to ready*). `import_aiohttp`
imports it with those loads set aside, then runs them on a thread: OpenSSL releases
the GIL while it reads the store, so they overlap the imports and the config that
follow. `wait` returns once they are done; `serve` calls it before it accepts a
connection, so no request ever meets a context without its CAs.

The context aiohttp keeps for `ssl=False` requests does not verify (CERT_NONE): a CA
store has no use there, and is not loaded into it (~1 MB less). Tollgate never makes
such requests.
"""

from __future__ import annotations

import ssl
import sys
import threading

_loading: threading.Thread | None = None


def import_aiohttp() -> None:
    """Import aiohttp (if nothing has yet), its CA stores loading on a thread meanwhile."""
    global _loading
    if "aiohttp" in sys.modules:
        return
    importing = threading.get_ident()
    own = ssl.SSLContext.__dict__.get("set_default_verify_paths")  # None: _ssl._SSLContext's, inherited
    load = ssl.SSLContext.set_default_verify_paths
    set_aside: list[ssl.SSLContext] = []

    def load_later(context: ssl.SSLContext) -> None:
        if threading.get_ident() != importing:  # another thread's context, not aiohttp's: as asked
            load(context)
        elif context.verify_mode != ssl.CERT_NONE:
            set_aside.append(context)

    ssl.SSLContext.set_default_verify_paths = load_later  # type: ignore[method-assign]
    try:
        import aiohttp  # noqa: F401
    finally:
        if own is None:
            del ssl.SSLContext.set_default_verify_paths
        else:
            ssl.SSLContext.set_default_verify_paths = own  # type: ignore[method-assign]
    if set_aside:
        _loading = threading.Thread(
            target=lambda: [load(context) for context in set_aside], name="tollgate-ca-stores", daemon=True
        )
        _loading.start()


def wait() -> None:
    """Until the CA stores set aside by `import_aiohttp` are loaded."""
    if _loading is not None:
        _loading.join()
