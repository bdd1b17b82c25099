"""The C allocator's two thresholds, fixed for a process that relays large bodies.

glibc moves both as a process runs: the size from which an allocation gets a mapping
of its own, and how much free memory may sit at the top of the heap before it is
given back to the kernel. A 2 MB image answer arrives in ~256 KB pieces (one per read
from the socket), kept until it is sent and then freed together: more than the moving
trim threshold, so glibc gave those pages back, and the next answer faulted them in
again, ~500 page faults per answer. That cost more CPU than the rest of relaying it
(bench/README.md). Fixed, the pieces come from the heap and its top stays mapped.

Only where the C library is glibc; elsewhere `tune` changes nothing.
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 * 1024 * 1024  # above any one piece of an answer: those come from the heap
TRIM_THRESHOLD = 64 * 1024 * 1024  # free at the heap's top kept mapped: what a busy minute reuses


def tune() -> bool:
    """Fix both thresholds; False where there is no glibc `mallopt` to do it with."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
