"""The error of a GPU's reduced-precision kernels, put on a CPU computation.

TF32 and bfloat16 round a convolution's operands to 10 or 7 mantissa bits, and cuDNN picks different kernels (so a
different rounding) for a layer of another width. Two computations that agree to float32 rounding on a CPU (a model
with channels removed, and the same model with those channels masked) then differ on a GPU by about 1e-3 of their
outputs. Inside ``output_noise(relative)`` every convolution and linear layer's output is off by that much, drawn
afresh at every call, so that checks meant to survive GPU numerics are tested against them on a CPU.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

TF32_RELATIVE = 1e-3  # the relative error TF32 convolutions leave on layer outputs


@contextmanager
def output_noise(relative: float = TF32_RELATIVE, seed: int = 0) -> Iterator[None]:
    """Every ``nn.Conv2d`` and ``nn.Linear`` output, of any model, multiplied by ``1 + relative * e``, e ~ N(0, 1)
    per element."""
    generator = torch.Generator().manual_seed(seed)

    def perturb(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            return None
        e = torch.randn(output.shape, generator=generator, dtype=output.dtype).to(output.device)
        return output * (1 + relative * e)

    handle = nn.modules.module.register_module_forward_hook(perturb)
    try:
        yield
    finally:
        handle.remove()
