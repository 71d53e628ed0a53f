"""Keep freed memory in the process for reuse while simulating (glibc only).

The vectorised kernels make and drop arrays of a few megabytes at every step. By default glibc
hands such blocks back to the system when they are freed and the next one is faulted in page by
page again, which costs as much time as the arithmetic. Simulation processes (the command line's
simulation commands and the workers of :func:`trialkit.engine.run_replicates`) therefore raise
glibc's thresholds so that freed blocks stay in the heap; a library caller's own process is left
as it is. Elsewhere (macOS, musl, Windows) nothing changes.
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 2**20  # blocks larger than this still come straight from the system
TRIM_THRESHOLD = 512 * 2**20  # free memory at the top of the heap kept for reuse
_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True when they were set.

    Results do not change: only where freed memory goes does.
    """
    global _done
    if _done:
        return True
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
