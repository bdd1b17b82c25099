"""aiohttp's CA stores load on a thread beside start-up (proxy/runtime/ca_stores.py):
once `wait` returns, the context that verifies holds the same CAs as one made the
usual way, and `ssl` is as it was. In a fresh interpreter: aiohttp must not be
imported yet."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import json, ssl, threading
from proxy.runtime import ca_stores

ca_stores.import_aiohttp()
from aiohttp import connector  # the contexts are private to aiohttp: this test would notice a change
ca_stores.wait()
print(json.dumps({
    "verified": connector._SSL_CONTEXT_VERIFIED.cert_store_stats(),
    "usual": ssl.create_default_context().cert_store_stats(),
    "unverified_mode": int(connector._SSL_CONTEXT_UNVERIFIED.verify_mode),
    "ssl_restored": "set_default_verify_paths" not in ssl.SSLContext.__dict__,
    "threads": [thread.name for thread in threading.enumerate()],
}))
"""


def test_the_verifying_context_holds_the_usual_cas_once_loaded_and_ssl_is_restored():
    found = json.loads(subprocess.run([sys.executable, "-c", CHILD], capture_output=True, check=True).stdout)
    assert found["verified"] == found["usual"]
    assert found["unverified_mode"] == 0  # ssl.CERT_NONE: no CA store needed, none loaded
    assert found["ssl_restored"]
    assert found["threads"] == ["MainThread"]  # the loading thread has ended
