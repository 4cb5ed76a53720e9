"""Latency of a model in two runtimes: eager PyTorch and ONNX Runtime (CPU execution provider).

Every figure is the median seconds of one forward pass of a batch after warm-up, with the threads the process runs
with (``torch.get_num_threads()``, also given to ONNX Runtime). Eager PyTorch is timed in both memory formats,
contiguous (NCHW) and channels-last (NHWC), and the faster one is kept and named (``torch_format_bN``): a deploying
user picks the faster format for their model, and which one wins depends on the layer widths and the batch.

ONNX Runtime always runs on the CPU, also when PyTorch runs on a GPU: the ``*_ort`` figures are what a CPU deployment
of the exported file would see.
"""

import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from psp.export import INPUT, OUTPUT, TOLERANCE, ArchitectureExports, export_onnx, onnx_difference, ort_session

BATCHES = (1, 64)
FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def _median_seconds(forward: Callable[[], object], repeats: int, warmup: int, sync: Callable[[], None]) -> float:
    for _ in range(warmup):
        forward()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _repeats(batch: int, repeats: int) -> int:
    """Large batches take 10-100x longer per pass; fewer passes keep their medians as cheap as batch 1's."""
    return repeats if batch < 16 else max(3, repeats // 4)


@torch.no_grad()
def latency(model: nn.Module, example: torch.Tensor, batch: int, repeats: int = 20, warmup: int = 5,
            memory_format: torch.memory_format = torch.contiguous_format) -> float:
    """Median seconds of one eager forward pass at ``batch`` in ``memory_format``, synchronising CUDA each pass."""
    device = next(model.parameters()).device
    if memory_format != torch.contiguous_format:
        model = copy.deepcopy(model).to(memory_format=memory_format)
    model.eval()
    x = example[:1].to(device).expand(batch, *example.shape[1:]).contiguous(memory_format=memory_format)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    return _median_seconds(lambda: model(x), repeats, warmup, sync)


def torch_profile(model: nn.Module, example: torch.Tensor, batches: tuple[int, ...] = BATCHES,
                  repeats: int = 20) -> dict[str, float | str]:
    """``latency_bN`` (the faster memory format) and ``torch_format_bN`` (which one) for each batch size."""
    result: dict[str, float | str] = {}
    for b in batches:
        timed = {name: latency(model, example, b, _repeats(b, repeats), memory_format=fmt)
                 for name, fmt in FORMATS.items()}
        fastest = min(timed, key=timed.get)
        result |= {f"latency_b{b}": timed[fastest], f"torch_format_b{b}": fastest}
    return result


def ort_profile(onnx_bytes: bytes, example: torch.Tensor, batches: tuple[int, ...] = BATCHES, repeats: int = 20,
                threads: int | None = None, warmup: int = 5) -> dict[str, float]:
    """``latency_bN_ort``: ONNX Runtime's median seconds per pass for each batch size."""
    session = ort_session(onnx_bytes, threads or torch.get_num_threads())
    result = {}
    for b in batches:
        x = example[:1].cpu().expand(b, *example.shape[1:]).contiguous().numpy()
        result[f"latency_b{b}_ort"] = _median_seconds(lambda x=x: session.run([OUTPUT], {INPUT: x}),
                                                      _repeats(b, repeats), warmup, lambda: None)
    return result


def latency_profile(model: nn.Module, example: torch.Tensor, batches: tuple[int, ...] = BATCHES,
                    repeats: int = 20) -> dict[str, float | str]:
    """Both runtimes: eager PyTorch (``latency_bN``, ``torch_format_bN``), then ONNX Runtime on the exported model
    (``latency_bN_ort``) and the export's relative output difference (``onnx_difference``)."""
    result = torch_profile(model, example, batches, repeats)
    onnx_bytes = export_onnx(model, example, optimize=False)  # the graph time_pair times, for the same figures
    difference = onnx_difference(model, ort_session(onnx_bytes, 1), example)
    return result | ort_profile(onnx_bytes, example, batches, repeats) | {"onnx_difference": difference}


def untimed(batches: tuple[int, ...] = BATCHES) -> dict[str, None]:
    """The keys of :func:`latency_profile`, all None: for a run that another job times."""
    keys = [k for b in batches for k in (f"latency_b{b}", f"torch_format_b{b}", f"latency_b{b}_ort")]
    return dict.fromkeys([*keys, "onnx_difference"])


def time_pair(dense: nn.Module, pruned: nn.Module, example: torch.Tensor, exports: ArchitectureExports,
              repeats: int = 20, batches: tuple[int, ...] = BATCHES) -> dict[str, float | str]:
    """A pruned model and its dense model timed back to back in both runtimes, and their speed-ups.

    Eager PyTorch times both models, then ONNX Runtime does, so that no runtime's idle threads compete with the
    other's. Keys: ``latency_bN``, ``torch_format_bN``, ``latency_bN_ort`` (pruned), the same with ``_dense``,
    ``speedup_bN`` and ``speedup_bN_ort`` (dense / pruned), and ``onnx_difference`` (pruned). Raises ValueError
    when ONNX Runtime's outputs differ from PyTorch's by more than the export tolerance.
    """
    result: dict[str, float | str] = {}
    for suffix, model in (("_dense", dense), ("", pruned)):
        result |= {f"{k}{suffix}": v for k, v in torch_profile(model, example, batches, repeats).items()}
    for suffix, model in (("_dense", dense), ("", pruned)):
        onnx_bytes = exports(model, example)
        difference = onnx_difference(model, ort_session(onnx_bytes, 1), example)
        if not difference <= TOLERANCE:
            raise ValueError(f"ONNX Runtime's outputs differ from PyTorch's by {difference:.2e} (relative), more "
                             f"than the tolerance {TOLERANCE:g}")
        result |= {f"{k}{suffix}": v for k, v in ort_profile(onnx_bytes, example, batches, repeats).items()}
        result[f"onnx_difference{suffix}"] = difference
    for b in batches:
        result[f"speedup_b{b}"] = result[f"latency_b{b}_dense"] / result[f"latency_b{b}"]
        result[f"speedup_b{b}_ort"] = result[f"latency_b{b}_ort_dense"] / result[f"latency_b{b}_ort"]
    return result
