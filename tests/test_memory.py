"""Freed tensor memory stays in the process: a repeated network call reuses its pages, faulting in no new ones."""

from __future__ import annotations

import subprocess
import sys

import pytest

import core

# A fresh process (the allocator's state is per process) calls the default network on 64 images five times to
# settle, then prints the page faults per call of five more: about 25,000 under glibc's own policy, where each
# call's activations arrive in fresh pages; a few hundred, now and then a few thousand, with the memory kept.
CALLS = """
import resource, sys, torch, core
if sys.argv[1] == "keep":
    assert core.keep_freed_memory()
network, x, t = core.UNet(1, base_channels=32).eval(), torch.randn(64, 1, 28, 28), torch.full((64,), 500)
with torch.no_grad():
    for _ in range(5):
        network(x, t)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        network(x, t)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 5)
"""


def page_faults(policy: str) -> int:
    run = subprocess.run([sys.executable, "-c", CALLS, policy], capture_output=True, text=True, timeout=120, check=True)
    return int(run.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc policy")
def test_kept_memory_serves_the_next_calls_without_new_pages():
    kept, default = page_faults("keep"), page_faults("default")
    assert default > 10_000, default  # the C library's own policy maps fresh pages for every call
    assert kept < default / 10, (kept, default)


def test_every_computing_process_keeps_freed_memory():
    core.keep_freed_memory.cache_clear()
    with core.computing("test", threads=1):
        pass
    assert core.keep_freed_memory.cache_info().currsize == 1
    core.keep_freed_memory.cache_clear()
    core.configure_for_speed(core.resolve_device("cpu"))
    assert core.keep_freed_memory.cache_info().currsize == 1
