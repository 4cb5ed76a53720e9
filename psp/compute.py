"""The floating-point operations a method executes, counted as they run.

A dispatch mode sees every ATen operator the method calls, on any device and in every pass: forward, backward
(autograd carries the mode into its threads), no-grad target passes, evaluations and the dependency graph's
tracing. It adds up the operators that carry a CNN's arithmetic (convolutions with both backward products, matrix
products, attention) with PyTorch's own shape formulas (``torch.utils.flop_counter.flop_registry``: 2 FLOPs per
multiply-add). Elementwise operators (BatchNorm, activations, losses, optimiser steps) are not counted, as in every
published FLOP figure: they are memory-bound and a few percent of the arithmetic.

``torch.utils.flop_counter.FlopCounterMode`` would do the same and also attribute counts to modules, through
global module hooks on every call; counting the total alone costs one Python call per operator
(``benchmarks/flop_counter_cost.py`` measures it).
"""

from collections import Counter
from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


class FlopCount(TorchDispatchMode):
    """``with FlopCount() as count: ...`` leaves ``count.total`` (FLOPs) and ``count.by_op`` (per operator)."""

    def __init__(self) -> None:
        super().__init__()
        self.by_op: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.by_op.values())

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.by_op[str(func._overloadpacket)] += int(formula(*args, **kwargs, out_val=out))
        return out
