"""glibc's malloc tuned for batch work (Linux only; elsewhere a no-op).

By default glibc serves every allocation above 128 KiB – 32 MiB (its threshold adapts) with a fresh ``mmap`` and
returns it with ``munmap`` on free, and trims the heap top above twice that. A benchmark loop allocates the same
few large buffers (a float batch of 64 images of 224² is 38 MiB, of 256 images 154 MiB) again and again, so each
of them is page-faulted and zeroed by the kernel on every call: on 2 CPU cores that is up to half the time of a
cheap corruption (``perf/corruption_throughput.py``). ``tune_malloc`` raises both thresholds so that freed
buffers are reused from the heap instead: what ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` do when set
before start-up. The ``robustbench`` command and the ``perf/`` scripts call it (``SSL_ROBUSTBENCH_DEFAULT_MALLOC=1``
leaves glibc's defaults); a library user may call it once in their own process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

#: mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: allocations up to this size come from (and go back to) the heap: a batch of 256 float images of 224² fits.
#: The cost: up to this much freed memory may stay with the process instead of going back to the system
THRESHOLD = 256 << 20


@functools.cache
def tune_malloc(threshold: int = THRESHOLD) -> bool:
    """Sets glibc's mmap and trim thresholds to ``threshold`` bytes; True where it took effect (glibc found and
    both calls accepted), False elsewhere (macOS, Windows, musl) or with ``SSL_ROBUSTBENCH_DEFAULT_MALLOC=1``."""
    if os.environ.get("SSL_ROBUSTBENCH_DEFAULT_MALLOC") == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold))
