"""ONNX export of a (pruned or dense) model, checked against PyTorch in ONNX Runtime.

Export uses PyTorch's TorchScript-based exporter (``torch.onnx.export(dynamo=False)``), with a dynamic batch
dimension, so one file serves every batch size. PyTorch deprecates it in favour of the torch.export-based exporter,
which gave equivalent graphs here but took 12-16 s to export a pruned ResNet-56 against 0.7 s (one process on this
suite's 2-core machine, nothing else running): every ``psp prune`` that times latency exports twice, and the test
suite exports every registered model, so the pinned PyTorch's fast path is used. :func:`with_weights` lets a latency
job export each architecture once and give every run of it its own weights: a graph exported without constant
folding names its initializers after the model's parameters and buffers.

``onnx`` and ``onnxruntime`` are imported where they are used: importing onnx takes 0.9 s (its ``ml_dtypes``), which
every `psp prune` process paid whether or not it exported anything.
"""

from __future__ import annotations

import copy
import io
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from psp.modes import eval_mode

if TYPE_CHECKING:
    import onnxruntime as ort

INPUT, OUTPUT = "input", "logits"
# ONNX Runtime vs PyTorch: max |difference| of the outputs, relative to the largest PyTorch output magnitude (and
# absolute below magnitude 1). Float32 kernels fuse and reorder sums differently; 1e-3 leaves room for deep models
# on any CPU and still catches a wrong graph (a wrong channel map or weight moves outputs by O(1)).
TOLERANCE = 1e-3


class ExportFailed(RuntimeError):
    """The model could not be exported, or its export computes something else: a failure of the run, not bad input
    (the command exits 1, not 2)."""


def _on_cpu(model: nn.Module) -> nn.Module:
    """``model`` itself when it is on the CPU, else a CPU copy (the caller's model stays where it is)."""
    on_cpu = all(t.device.type == "cpu" for t in model.state_dict().values())
    return model if on_cpu else copy.deepcopy(model).cpu()


def export_onnx(model: nn.Module, example: torch.Tensor, optimize: bool = True) -> bytes:
    """The serialised ONNX model of ``model`` (in eval mode, on CPU), input ``input`` with a dynamic batch.

    ``optimize``: fold constants (BatchNorm into convolutions: a smaller file for deployment). Without it,
    initializers keep the parameter names that :func:`with_weights` needs; ONNX Runtime folds them at load anyway.
    """
    model = _on_cpu(model)
    buffer = io.BytesIO()
    with eval_mode(model), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice, once per call (see the module docstring)
        try:
            torch.onnx.export(model, (example[:1].cpu(),), buffer, dynamo=False, do_constant_folding=optimize,
                              input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
        except Exception as e:  # the exporter raises many types; the user needs the first line of why
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise ExportFailed(f"{type(model).__name__} cannot be exported to ONNX: {reason}") from None
    return buffer.getvalue()


def with_weights(onnx_bytes: bytes, model: nn.Module) -> bytes:
    """``onnx_bytes`` (exported with ``optimize=False`` from a model of the same architecture) holding ``model``'s
    parameters and buffers. Raises ValueError if an initializer named after a tensor has another shape."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(onnx_bytes)
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    for init in proto.graph.initializer:
        tensor = tensors.get(init.name)
        if tensor is None:
            continue
        array = tensor.detach().cpu().numpy()
        if tuple(init.dims) != array.shape:
            raise ValueError(f"initializer {init.name} has shape {tuple(init.dims)}, the model {array.shape}")
        init.CopyFrom(numpy_helper.from_array(array.astype(numpy_helper.to_array(init).dtype), init.name))
    return proto.SerializeToString()


class ArchitectureExports:
    """ONNX files for many models, exporting each architecture once (seconds each) and giving every model of that
    architecture its own weights (:func:`with_weights`, milliseconds). An architecture is the model's ``repr`` (its
    modules and their settings) plus the name and shape of every parameter and buffer."""

    def __init__(self) -> None:
        self._templates: dict[str, bytes] = {}
        self.exports = 0

    @staticmethod
    def key(model: nn.Module, example: torch.Tensor) -> str:
        """What makes two models the same architecture here (and, weights aside, the same computation)."""
        tensors = dict(model.named_parameters()) | dict(model.named_buffers())
        return repr(model) + repr([(n, tuple(t.shape)) for n, t in tensors.items()]) + repr(tuple(example.shape[1:]))

    def __call__(self, model: nn.Module, example: torch.Tensor) -> bytes:
        key = self.key(model, example)
        if key not in self._templates:
            self._templates[key] = export_onnx(model, example, optimize=False)
            self.exports += 1
        return with_weights(self._templates[key], model)


def with_metadata(onnx_bytes: bytes, metadata: dict[str, str]) -> bytes:
    """``onnx_bytes`` with ``metadata`` in the model's metadata_props (what the input expects, where it came from)."""
    import onnx

    proto = onnx.load_from_string(onnx_bytes)
    onnx.helper.set_model_props(proto, metadata)
    return proto.SerializeToString()


def ort_session(onnx_bytes: bytes, threads: int, profile_prefix: str | None = None) -> ort.InferenceSession:
    """A CPU session with ``threads`` intra-op threads (one inter-op thread), like ``torch.set_num_threads``. Its
    threads sleep between runs instead of spinning: two sessions timed in turn would otherwise compete for the cores
    (ONNX Runtime spins by default, which lowers batch-1 latency a little when one session has the machine)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if profile_prefix:  # ONNX Runtime's own per-operator profile, written by session.end_profiling()
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def onnx_difference(model: nn.Module, session: ort.InferenceSession, example: torch.Tensor, batch: int = 8,
                    seed: int = 0) -> float:
    """Max |ONNX Runtime − PyTorch| of the outputs on a random batch, relative to max(1, max |PyTorch output|)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *example.shape[1:], generator=generator)
    model = _on_cpu(model)
    with eval_mode(model), torch.no_grad():
        expected = model(x).numpy()
    got = session.run([OUTPUT], {INPUT: x.numpy()})[0]
    if got.shape != expected.shape:
        return float("inf")
    return float(np.abs(got - expected).max() / max(1.0, float(np.abs(expected).max())))


def checked_difference(model: nn.Module, session: ort.InferenceSession, example: torch.Tensor) -> float:
    """The relative difference of :func:`onnx_difference`; ExportFailed when it exceeds :data:`TOLERANCE`."""
    difference = onnx_difference(model, session, example)
    if not difference <= TOLERANCE:
        raise ExportFailed(f"ONNX Runtime's outputs differ from PyTorch's by {difference:.2e} (relative), more than "
                         f"the tolerance {TOLERANCE:g}: the export is wrong")
    return difference


def check_export(model: nn.Module, onnx_bytes: bytes, example: torch.Tensor, threads: int = 1) -> float:
    """:func:`checked_difference` of ``onnx_bytes`` in a fresh session."""
    return checked_difference(model, ort_session(onnx_bytes, threads), example)
