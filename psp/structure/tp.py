"""Torch-Pruning, imported without timm: ``from psp.structure.tp import tp``.

Torch-Pruning's FLOP counter imports timm, inside try/except, only to count timm's attention layers, which the suite
neither uses (it counts MACs itself) nor prunes (attention is refused). Through timm that import pulls torchvision's
detection operators and ``torch._dynamo``: about 2 of the 4 s that every pruning process spends importing. Hiding
timm while Torch-Pruning loads skips it; timm stays importable for the models that need it.
"""

import sys

if "torch_pruning" not in sys.modules and "timm" not in sys.modules:
    sys.modules["timm"] = None  # makes `import timm` raise ImportError, which Torch-Pruning's counter expects
    try:
        import torch_pruning  # noqa: F401  (loaded here, with timm hidden)
    finally:
        del sys.modules["timm"]

import torch_pruning as tp  # noqa: E402

__all__ = ["tp"]
