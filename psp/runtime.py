"""Process-level settings and provenance: threads, seeds, device, atomic writes, and what produced a result."""

import ctypes
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import torch

import psp
from psp.errors import choice_error
from psp.options import DEVICES

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling on 64-bit: larger blocks are always mapped and unmapped
_glibc: ctypes.CDLL | None = None
_freed_memory_kept = False


def _libc() -> ctypes.CDLL | None:
    global _glibc
    if _glibc is None and platform.libc_ver()[0] == "glibc":
        _glibc = ctypes.CDLL(None)
    return _glibc


def keep_freed_memory() -> bool:
    """Keep the memory a freed tensor held for the next tensor, instead of handing it back to the OS.

    By default glibc unmaps freed blocks above a threshold and trims the heap's top, so each training step faults its
    activations, gradients and loss buffers in again, 4 KiB at a time, each page zeroed by the kernel. That cost a
    fifth of a step of PSP's reconstruction here (a VM, where faults are dear): allocating and freeing 60 tensors of
    8 MiB took 150-180 ms, 58 ms with this. Blocks up to 32 MiB now come from the heap and its top is kept; between
    the runs of a batch :func:`release_freed_memory` hands it back, so each run's peak memory is its own. Numbers are
    unchanged. Returns whether it applied (glibc only; elsewhere nothing changes)."""
    global _freed_memory_kept
    libc = _libc()
    _freed_memory_kept = libc is not None and bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _freed_memory_kept


def release_freed_memory() -> None:
    """Hand the memory :func:`keep_freed_memory` kept back to the OS (glibc's ``malloc_trim``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def configure(threads: int | None, seed: int, device: str = "auto") -> torch.device:
    """Pin CPU threads, seed torch, keep freed memory for reuse (:func:`keep_freed_memory`) and pick the device
    (``auto``: CUDA when visible). On CUDA, cuDNN's autotuner is on: it picks the fastest kernels, at the price of
    bit-for-bit repeatability (README, "Reliability")."""
    if device not in DEVICES:
        raise choice_error("device", device, DEVICES)
    keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    resolved = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                            "cpu" if device == "auto" else device)
    if resolved.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return resolved


def import_what_optimizers_import() -> None:
    """Import ``torch._dynamo`` now, before a clock starts. Every ``torch.optim`` step imports it (for a graph break
    under ``torch.compile``): 1.1-1.4 s on first use here, which the first run of a batch counted as its method's
    ``seconds`` (l1 on resnet8_tiny: 2.8 s at its first target, 1.2 s at the others)."""
    import torch._dynamo  # noqa: F401


@contextmanager
def full_precision() -> Iterator[None]:
    """float32 computed as float32 on a GPU (TF32 off for convolutions and matrix products), for checks that compare
    two computations: cuDNN picks other kernels for layers of other widths, and in TF32 they differ by about 1e-3."""
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags


def reset_peak_memory() -> None:
    """Start a new high-water mark of this process's resident memory, so that each run of a batch reports its own
    peak (Linux: writing 5 to /proc/self/clear_refs resets VmHWM; elsewhere nothing happens)."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_mib() -> float | None:
    """Peak resident memory of this process since the last :func:`reset_peak_memory` (MiB; None off Linux)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return None if line is None else int(line.split()[1]) / 1024


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it into place: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: str | Path, obj: object) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(device: torch.device) -> dict:
    """Versions, commit, device and threads: enough to trace a result row back to what made it."""
    from importlib.metadata import version

    return {
        "psp_bench_version": psp.__version__,
        "git_commit": _git_commit(),
        "torch_version": torch.__version__,
        "torch_pruning_version": version("torch-pruning"),
        "python_version": platform.python_version(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "freed_memory_kept": _freed_memory_kept,
    }
