"""The support check: what the suite cannot prune correctly is refused before any work, in one line naming the model
and the construct; what it can prune passes untouched."""

import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

from psp.data.spec import DataSpec
from psp.models import create_model
from psp.structure.support import Unsupported, check_prunable


class RawShuffle(nn.Module):
    """A channel shuffle written as reshape-transpose-reshape (what Torch-Pruning cannot follow)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 1), nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(x)
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.fc(self.b(x).mean((2, 3)))


class GroupNormed(nn.Module):
    """GroupNorm mixes channels within a group: removing one changes the statistics of the others."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.norm = nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8)
        self.b, self.fc = nn.Conv2d(8, 8, 1), nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.b(self.norm(self.a(x))).mean((2, 3)))


class Attending(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 10)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.a(x).flatten(2).transpose(1, 2)
        return self.fc(self.attention(tokens, tokens, tokens)[0].mean(1))


@pytest.mark.parametrize(("model", "construct"), [
    (RawShuffle, "through Reshape, Transpose"), (GroupNormed, "through GroupNorm"),
    (Attending, "MultiheadAttention (at attention)")])
def test_unsupported_constructs_are_named(model, construct):
    torch.manual_seed(0)
    with pytest.raises(Unsupported) as refused:
        check_prunable(model().eval(), torch.zeros(1, 3, 8, 8), "tiny")
    message = str(refused.value)
    assert message.startswith("model tiny cannot be pruned: ") and construct in message and "\n" not in message


@pytest.mark.parametrize("name", ["resnet8_tiny", "tv:shufflenet_v2_x0_5", "timm:regnetx_002"])
def test_supported_models_pass_untouched(name):
    torch.manual_seed(0)
    model = create_model(name, DataSpec("cifar10", 3, 32, 10)).eval()
    x = torch.randn(2, 3, 32, 32)
    before = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        y = model(x)
    model.train()
    check_prunable(model, x[:1], name)
    assert model.training, "the caller's mode is kept"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        assert torch.equal(model.eval()(x), y)


def test_train_refuses_before_training(tmp_path):
    out = tmp_path / "swin"
    result = subprocess.run([sys.executable, "-m", "psp", "train", "--model", "tv:swin_t", "--data", "mnist5k",
                             "--image-size", "64", "--epochs", "1", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "tv:swin_t" in lines[0] and "ShiftedWindowAttention" in lines[0]
    assert not out.exists()
