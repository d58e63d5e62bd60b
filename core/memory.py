"""Keeping freed tensor memory in the process, so that a step's tensors reuse the last step's pages.

A training or sampling step frees and allocates the same activations over and over. PyTorch's CPU tensors
come from the C library's ``malloc``. glibc's serves a block above a threshold that adapts (128 KiB, rising to
the largest block freed so far) straight from the OS, and hands the heap's free top back to the OS once it
exceeds twice that threshold. Every step's large tensors then arrive as fresh pages that the OS must map and
zero on first touch: about 4,000 page faults in a training step of the default network at batch 32, 16,000 at
batch 128 and 4,700 in a sampling call on 64 images. With the memory kept, those steps take 1/1.08, 1/1.12 and
1/1.26 of the time (``benchmarks/kept_memory.py``, docs/speed.md).
"""

from __future__ import annotations

import ctypes
import functools
import sys

# mallopt's parameters (glibc's malloc.h) and their values here: blocks below 32 MiB, the largest threshold glibc
# accepts, come from the heap, and the heap's free top goes back to the OS only above 1 GiB.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's ``malloc`` to serve blocks under :data:`MMAP_THRESHOLD` from its heap and to keep the heap's
    free memory up to :data:`TRIM_THRESHOLD`, once per process; whether it was set (False elsewhere than on
    Linux with glibc, where the C library's own policy stays)."""
    if sys.platform != "linux":
        return False
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
