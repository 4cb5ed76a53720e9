"""The floating-point operations a method executes, counted as they run.

Every call of a convolution or linear layer anywhere in the process (the method's models, the original model's
target passes, evaluations, the dependency graph's tracing) adds its forward FLOPs, computed from the output it
produced: 2 per multiply-add, ``out.numel() × in_channels / groups × kernel`` (PyTorch's own formulas,
``torch.utils.flop_counter``, give the same numbers: tests/test_compute.py). When the call records a graph, a hook
on its output adds the backward FLOPs when, and each time, a backward pass goes through it: one forward's worth for
the weight gradient and one for the input gradient, each only if it is needed. Elementwise operators (BatchNorm,
activations, losses, optimiser steps) are not counted, as in every published FLOP figure: they are memory-bound and
a few percent of the arithmetic.

Why module hooks and not a dispatch mode (``FlopCounterMode``) that sees every ATen operator: that costs a Python
call per operator, a third of the time of a small model's run, against one per layer call here
(``benchmarks/flop_counter_cost.py`` measures it). What a dispatch mode would count besides (matrix products written
as functions, attention) the suite's models do not use.
"""

import math
from collections import Counter

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook

COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def forward_flops(module: nn.Module, output: torch.Tensor) -> int:
    """FLOPs of one call of a counted layer that produced ``output`` (bias additions not counted)."""
    if isinstance(module, nn.Linear):
        return 2 * output.numel() * module.in_features
    return 2 * output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)


class FlopCount:
    """``with FlopCount() as count: ...`` leaves ``count.total`` (FLOPs) and ``count.by_pass`` (forward, backward)."""

    def __init__(self) -> None:
        self.by_pass: Counter[str] = Counter()
        self._handle = None

    @property
    def total(self) -> int:
        return sum(self.by_pass.values())

    def __enter__(self) -> "FlopCount":
        self._handle = register_module_forward_hook(self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    def _count(self, module: nn.Module, inputs: tuple, output: object) -> None:
        if not isinstance(module, COUNTED) or not isinstance(output, torch.Tensor):
            return
        flops = forward_flops(module, output)
        self.by_pass["forward"] += flops
        if output.requires_grad:  # a graph was recorded: count its backward when one runs through it
            needed = int(module.weight.requires_grad) + int(bool(inputs) and inputs[0].requires_grad)
            output.register_hook(lambda grad: self.by_pass.update(backward=flops * needed))
