"""Latency of models in two runtimes: eager PyTorch and ONNX Runtime (CPU execution provider).

Every figure is the median seconds of one forward pass of a batch after warm-up, with the threads the process runs
with (``torch.get_num_threads()``, also given to ONNX Runtime). Eager PyTorch is timed in both memory formats,
contiguous (NCHW) and channels-last (NHWC), and the faster one is kept and named (``torch_format_bN``): a deploying
user picks the faster format for their model, and which one wins depends on the layer widths and the batch.

Models timed together (a pruned model and its dense model) are timed in alternating rounds: on a shared or virtual
machine the speed drifts within seconds, and a block of dense passes followed by a block of pruned passes turns
that drift into speed-ups off by 2x either way (seen on this suite's machine). Each runtime is timed on its own,
PyTorch first, and ONNX Runtime's threads sleep between runs instead of spinning, so that no idle thread of one
model or runtime takes the cores from another.

ONNX Runtime always runs on the CPU, also when PyTorch runs on a GPU: the ``*_ort`` figures are what a CPU deployment
of the exported file would see.
"""

import copy
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from psp.export import INPUT, OUTPUT, ArchitectureExports, checked_difference, ort_session

BATCHES = (1, 64)
FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
ROUNDS = 5


def interleaved(forwards: dict[str, Callable[[], object]], repeats: int, warmup: int = 5,
                sync: Callable[[], None] = lambda: None, rounds: int = ROUNDS) -> dict[str, float]:
    """Median seconds per call of each forward, timed in ``rounds`` alternating rounds of ``repeats / rounds``
    calls each, after ``warmup`` untimed calls of each."""
    for forward in forwards.values():
        for _ in range(warmup):
            forward()
    sync()
    times: dict[str, list[float]] = {name: [] for name in forwards}
    per_round = max(1, math.ceil(repeats / rounds))
    for _ in range(rounds):
        for name, forward in forwards.items():
            for _ in range(per_round):
                start = time.perf_counter()
                forward()
                sync()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _repeats(batch: int, repeats: int) -> int:
    """Large batches take 10-100x longer per pass; fewer passes keep their medians as cheap as batch 1's."""
    return repeats if batch < 16 else max(ROUNDS, repeats // 4)


def _torch_forward(model: nn.Module, example: torch.Tensor, batch: int, memory_format: torch.memory_format
                   ) -> Callable[[], object]:
    device = next(model.parameters()).device
    if memory_format != torch.contiguous_format:
        model = copy.deepcopy(model).to(memory_format=memory_format)
    model.eval()
    x = example[:1].to(device).expand(batch, *example.shape[1:]).contiguous(memory_format=memory_format)

    def forward() -> None:
        with torch.no_grad():
            model(x)
    return forward


def time_models(models: dict[str, nn.Module], example: torch.Tensor, exports: ArchitectureExports,
                repeats: int = 20, batches: tuple[int, ...] = BATCHES) -> dict[str, float | str]:
    """The latency figures of each model, keys suffixed with its name in ``models`` (``""`` for none):
    ``latency_bN`` and ``torch_format_bN`` (eager PyTorch, the faster memory format), ``latency_bN_ort`` and
    ``onnx_difference`` (ONNX Runtime on the model's export; ExportFailed when its outputs differ from
    PyTorch's by more than the export tolerance)."""
    device = next(next(iter(models.values())).parameters()).device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    result: dict[str, float | str] = {}
    for b in batches:
        forwards = {(name, fmt): _torch_forward(model, example, b, memory_format)
                    for name, model in models.items() for fmt, memory_format in FORMATS.items()}
        timed = interleaved(forwards, _repeats(b, repeats), sync=sync)
        for name in models:
            fastest = min(FORMATS, key=lambda fmt, name=name: timed[name, fmt])
            result |= {f"latency_b{b}{name}": timed[name, fastest], f"torch_format_b{b}{name}": fastest}
    sessions = {}
    for name, model in models.items():
        sessions[name] = ort_session(exports(model, example), torch.get_num_threads())
        result[f"onnx_difference{name}"] = checked_difference(model, sessions[name], example)
    for b in batches:
        x = example[:1].cpu().expand(b, *example.shape[1:]).contiguous().numpy()
        forwards = {name: (lambda s=session, x=x: s.run([OUTPUT], {INPUT: x})) for name, session in sessions.items()}
        result |= {f"latency_b{b}_ort{name}": t for name, t in interleaved(forwards, _repeats(b, repeats)).items()}
    return result


def latency_profile(model: nn.Module, example: torch.Tensor, batches: tuple[int, ...] = BATCHES,
                    repeats: int = 20) -> dict[str, float | str]:
    """One model in both runtimes: ``latency_bN``, ``torch_format_bN``, ``latency_bN_ort``, ``onnx_difference``."""
    return time_models({"": model}, example, ArchitectureExports(), repeats, batches)


def untimed(batches: tuple[int, ...] = BATCHES) -> dict[str, None]:
    """The keys of :func:`latency_profile`, all None: for a run that another job times."""
    keys = [k for b in batches for k in (f"latency_b{b}", f"torch_format_b{b}", f"latency_b{b}_ort")]
    return dict.fromkeys([*keys, "onnx_difference"])


def time_pair(dense: nn.Module, pruned: nn.Module, example: torch.Tensor, exports: ArchitectureExports,
              repeats: int = 20, batches: tuple[int, ...] = BATCHES) -> dict[str, float | str]:
    """A pruned model and its dense model timed together (alternating rounds) in both runtimes: the keys of
    :func:`latency_profile` for the pruned model, the same with ``_dense``, and the speed-ups dense / pruned
    ``speedup_bN`` and ``speedup_bN_ort``."""
    result = time_models({"_dense": dense, "": pruned}, example, exports, repeats, batches)
    for b in batches:
        result[f"speedup_b{b}"] = result[f"latency_b{b}_dense"] / result[f"latency_b{b}"]
        result[f"speedup_b{b}_ort"] = result[f"latency_b{b}_ort_dense"] / result[f"latency_b{b}_ort"]
    return result
