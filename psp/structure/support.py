"""Whether the suite can prune a model, decided before any training or calibration starts.

Torch-Pruning traces almost any network, but tracing is not correctness: a construct it does not model (an in-place
slice assignment, a channel reshape) can yield a model that crashes, or silently computes something else, after
removal. So besides refusing constructs the methods do not handle (attention, recurrence), the check prunes a copy
of the model for real and holds it to the suite's invariants: the pruned model equals the dense model with the same
channels masked, and its measured MACs equal the cost model's prediction (which the target-MACs search relies on).
When that fails, the group at fault is found and named with the constructs it passes through.
"""

import copy
import re

import torch
from torch import nn

from psp.errors import UsageError
from psp.metrics import count_macs
from psp.modes import eval_mode
from psp.runtime import full_precision
from psp.structure.groups import ChannelGroup, build_graph, channel_groups
from psp.structure.removal import mask_channels, remove_channels
from psp.structure.selection import CostModel, Selection, select_by_ratio
from psp.structure.tp import tp

# Relative to the largest output magnitude. A wrong removal, even of one channel, moves the outputs by 4e-2 or more;
# float32 reorderings by 1e-6, a GPU's reduced-precision kernels (TF32, bfloat16) by about 1e-3 (both tested:
# tests/test_device.py). The probe runs with TF32 off, so on a GPU it is as exact as on a CPU.
TOLERANCE = 1e-2
_PROBE_RATIO = 0.5
_REFUSED_TYPES = (nn.MultiheadAttention, nn.RNNBase)
_PLAIN = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm)


class Unsupported(UsageError):
    """The model holds a construct the suite cannot prune correctly."""


def check_prunable(model: nn.Module, example: torch.Tensor, name: str) -> dict[str, int]:
    """Raise ``Unsupported`` (one line naming the model and the construct) unless ``model`` can be pruned with
    removal == masking and the MACs the cost model predicts. Returns the prunable groups (root -> channels), which
    the probe has traced anyway: what a run's removed channels are a fraction of."""
    check_module_types(model, name)
    try:
        groups, failure = _probe(model, example)
    except _Untraceable as e:
        raise Unsupported(f"model {name} cannot be pruned: Torch-Pruning cannot follow {_traced_construct(e.error)} "
                          f"({type(e.error).__name__}: {_first_line(e.error)})") from None
    if not groups:
        raise Unsupported(f"model {name} cannot be pruned: it has no prunable channel group")
    if failure is None:
        return {g.root: g.size for g in groups}
    for g in groups:
        alone = _probe(model, example, g.root)[1]
        if alone is not None:
            raise Unsupported(f"model {name} cannot be pruned: removing channels of {g.root} "
                              f"(through {_constructs(g)}) {alone}")
    raise Unsupported(f"model {name} cannot be pruned: removing channels of several groups together {failure}")


class _Untraceable(Exception):
    def __init__(self, error: Exception) -> None:
        self.error = error


def check_module_types(model: nn.Module, name: str) -> None:
    """The part of :func:`check_prunable` that reads module types alone: it holds on a model built on the meta device
    (no weights, no memory), so a model refused for a construct it contains need not be built at all."""
    refused = _refused_module(model)
    if refused:
        raise Unsupported(f"model {name} cannot be pruned: {refused} is not supported (attention-free CNNs only)")


def _refused_module(model: nn.Module) -> str | None:
    for path, m in model.named_modules():
        kind = type(m).__name__
        if isinstance(m, _REFUSED_TYPES) or "attention" in kind.lower():
            return f"{kind} (at {path})"
    return None


def _probe(model: nn.Module, example: torch.Tensor, root: str | None = None) -> tuple[list[ChannelGroup], str | None]:
    """Remove half of every group (or of group ``root`` only) from a copy of ``model``: the copy's groups, and what
    went wrong (None if nothing did)."""
    trial = copy.deepcopy(model)
    try:
        graph = build_graph(trial, example)
        groups = channel_groups(trial, example, graph)
    except Exception as e:  # Torch-Pruning's tracer raises anything on graphs it cannot follow
        raise _Untraceable(e) from None
    chosen = [g for g in groups if root in (None, g.root)]
    scores = {g.root: torch.rand(g.size, generator=torch.Generator().manual_seed(0)) for g in chosen}
    selection: Selection = select_by_ratio(scores, _PROBE_RATIO, "uniform",
                                           units={g.root: g.units for g in chosen})
    if not selection:
        return groups, None
    predicted = CostModel(trial, example, chosen).macs(selection)
    x = torch.randn((2, *example.shape[1:]), generator=torch.Generator().manual_seed(0)).to(example.device)
    try:
        with eval_mode(model), torch.no_grad(), full_precision():
            expected = mask_channels(copy.deepcopy(model), selection, example).eval()(x)
            pruned = remove_channels(trial, selection, example, graph).eval()
            got = pruned(x)
    except Exception as e:  # a broken removal surfaces as any error of any layer
        return groups, f"fails ({type(e).__name__}: {_first_line(e)})"
    if got.shape != expected.shape or output_difference(got, expected) > TOLERANCE:
        return groups, "changes the model's outputs beyond masking those channels"
    measured = count_macs(pruned, example)
    if abs(measured - predicted) > 1e-3 * measured:
        return groups, f"leaves {measured} MACs where the cost model predicts {predicted:.0f}"
    return groups, None


def output_difference(got: torch.Tensor, expected: torch.Tensor) -> float:
    """The largest difference between two outputs, relative to the largest magnitude of ``expected``."""
    return ((got - expected).abs().max() / expected.abs().max().clamp_min(1e-12)).item()


def _constructs(group: ChannelGroup) -> str:
    """The layer and operation kinds a group spans beyond plain layers and pointwise arithmetic."""
    kinds: dict[str, None] = {}
    for dep, _ in group.group:
        module = dep.target.module
        if isinstance(module, _PLAIN) and type(module).forward in {c.forward for c in _PLAIN}:
            continue
        if isinstance(module, tp.ops._ElementWiseOp):
            op = re.sub(r"Backward\d*$", "", str(module._grad_fn).removeprefix("torch::autograd::"))
            if op.lower() not in _POINTWISE:
                kinds.setdefault(op)
        else:
            kinds.setdefault(type(module).__name__.strip("_").removesuffix("Op"))
    return ", ".join(kinds) or "plain layers"


_POINTWISE = {"relu", "relu6", "add", "mul", "div", "sub", "sigmoid", "hardsigmoid", "hardswish", "silu", "gelu",
              "clamp", "tanh", "mean", "nativebatchnorm", "cudnnbatchnorm", "nativelayernorm", "t", "permute",
              "adaptiveavgpool2d", "avgpool2d", "maxpool2dwithindices", "leakyrelu", "elu", "mish", "neg", "exp",
              "softplus", "hardtanh", "cat", "clone", "addmm", "mm", "squeeze", "unsqueeze", "convolution",
              "mkldnnconvolution", "threshold"}


_TRACERS = {"update_reshape_index_mapping": "a reshape across channels (such as a channel shuffle)",
            "update_flatten_index_mapping": "a flatten", "update_concat_index_mapping": "a concatenation",
            "update_split_index_mapping": "a channel split", "update_slice_index_mapping": "a channel slice"}


def _traced_construct(e: Exception) -> str:
    """The construct Torch-Pruning's index mapping failed on, from the frames of its traceback."""
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name in _TRACERS:
            return _TRACERS[tb.tb_frame.f_code.co_name]
        tb = tb.tb_next
    return "its graph"


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [""])[0][:160]

