"""Freed memory is kept for the next tensor within a run and handed back between runs (psp.runtime), and the
provenance says so."""

import platform
from pathlib import Path

import pytest
import torch

from psp import runtime

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or not Path("/proc/self/status").exists(),
                                reason="glibc's mallopt on Linux")


def _rss_mib() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_freed_memory_is_kept_within_a_run_and_released_between_runs():
    assert runtime.keep_freed_memory()
    runtime.release_freed_memory()
    before = _rss_mib()
    tensors = [torch.ones(2**21) for _ in range(32)]  # 32 × 8 MiB, every page touched
    del tensors
    kept = _rss_mib()
    assert kept - before > 128  # freed, but not handed back to the OS
    runtime.release_freed_memory()
    assert kept - _rss_mib() > 128


def test_provenance_records_it():
    runtime.configure(1, 0, "cpu")
    assert runtime.provenance(torch.device("cpu"))["freed_memory_kept"] is True
