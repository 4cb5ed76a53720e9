"""One pass that gathers a batch's cached targets, subtracts the layer's output and sums the squares.

The holistic loss is bound by memory bandwidth (``psp.reconstruct.loss``). With ATen's operators a layer's term is
three passes: the batch's rows gathered from the cache into a buffer (read, write), the output subtracted in place
(two reads, a write), the squares summed (a read): six tensor-sized transfers. Fused, it is three (the target rows
and the output read, the difference written), with the square summed while the difference is in a register. On a
2-core Xeon this took 0.57 against 1.06 ms (128×32×16×16), 0.31 against 0.57 ms (128×64×8×8), 0.65 against 2.69 ms
(128×9×32×32). The kernel is compiled by Numba (the one thing the suite asks of it: ATen has no gather-subtract,
and a C++ extension would have to be built at install time) and cached on disk after the first process.

The difference is written exactly as ``torch.sub`` writes it (one rounding each), so the gradients do not change;
the sum of squares is taken in another order (in fp64, each row's in vector lanes), which only the
logged loss sees. Where the kernel does not apply (no Numba, not on CPU, not fp32/fp64, layouts that differ, a
target computed for this batch rather than gathered, a cache below ``FUSE_MIN_BYTES``) the three ATen operators
run.
"""

import importlib.util

import torch

from psp.reconstruct import layout

# Below this much cached target data a run does not import Numba: importing it and loading the cached kernel costs
# about 0.6 s a process (compiling it, the first time, 2.5 s), while the kernel saves about 40 ms a step on a ResNet-56
# (2 GiB of targets for 512 images) and little on the small models of the embedded default.
FUSE_MIN_BYTES = 256 * 2**20

_kernel = None


def _compiled():
    """The Numba kernel, compiled (or loaded from its cache) on first use; None without Numba."""
    global _kernel
    if _kernel is None and importlib.util.find_spec("numba") is not None:
        import numba
        import numpy as np

        @numba.njit(parallel=True, fastmath={"reassoc"}, cache=True, nogil=True)
        def gather_subtract_square(cached, idx, out, residual):  # pragma: no cover - compiled
            rows, width = out.shape
            sums = np.zeros(rows, dtype=np.float64)
            for i in numba.prange(rows):
                source = cached[idx[i]]
                total = 0.0
                for j in range(width):
                    d = source[j] - out[i, j]
                    residual[i, j] = d
                    total += d * d
                sums[i] = total
            return sums.sum()

        _kernel = gather_subtract_square
    return _kernel


def _rows(t: torch.Tensor) -> torch.Tensor | None:
    """``t`` as a matrix of one row per sample in its memory order, if its memory is one dense run."""
    t = layout.in_memory_order(t)
    return t.reshape(len(t), -1) if t.is_contiguous() else None


def fusable(cached: torch.Tensor, out: torch.Tensor) -> bool:
    """The kernel applies: CPU, fp32 or fp64, the same layout and dtype on both sides, Numba importable."""
    return (cached.device.type == "cpu" and out.device.type == "cpu" and cached.dtype == out.dtype
            and cached.dtype in (torch.float32, torch.float64) and layout.is_channels_last(cached)
            == layout.is_channels_last(out) and _rows(cached) is not None and _rows(out) is not None
            and _compiled() is not None)


@torch.no_grad()
def gathered_residual(cached: torch.Tensor, idx: torch.Tensor, out: torch.Tensor, residual: torch.Tensor,
                      fused: bool = True) -> torch.Tensor:
    """Write ``cached[idx] - out`` into ``residual`` (laid out like ``cached``) and return its squared norm, in one
    pass where ``fused`` and the kernel applies."""
    if fused and fusable(cached, out):
        total = _compiled()(_rows(cached).numpy(), idx.numpy(), _rows(out.detach()).numpy(),
                            _rows(residual).numpy())
        return torch.tensor(total, dtype=out.dtype, device=out.device)
    return subtract(layout.index_select(cached, 0, idx.to(cached.device), out=residual), out)


def squared_norm(t: torch.Tensor) -> torch.Tensor:
    """``||t||²`` of a dense tensor in any layout, as one dot product over its memory."""
    flat = layout.in_memory_order(t).reshape(-1)
    return torch.dot(flat, flat)


@torch.no_grad()
def subtract(target: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Write ``target - out`` into ``target`` and return its squared norm (ATen's operators, for any device)."""
    return squared_norm(torch.sub(target, out, out=target))
