"""CIFAR ResNet-20/32/44/56/110 with option-A shortcuts.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv:1512.03385), section 4.2. The layout
and state-dict keys follow the public checkpoints of github.com/akamaster/pytorch_resnet_cifar10 (BSD-2-Clause),
so those load as they are; the zero-padding shortcut is a ``ChannelPadShortcut`` module so that it can be pruned.
"""

from torch import Tensor, nn
from torch.nn import functional as F

from psp.data.spec import DataSpec
from psp.models._registry import register_model
from psp.models.shortcut import ChannelPadShortcut

__all__ = ["CifarResNetA"]


class BasicBlockA(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = ChannelPadShortcut(in_planes, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNetA(nn.Module):
    """Three stages of ``depth`` BasicBlocks at widths ``(w, 2w, 4w)``, global average pooling, linear head."""

    def __init__(self, depth: int, in_channels: int = 3, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"option-A CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        planes = width
        self.layer1 = self._stage(planes, width, n, 1)
        self.layer2 = self._stage(width, 2 * width, n, 2)
        self.layer3 = self._stage(2 * width, 4 * width, n, 2)
        self.linear = nn.Linear(4 * width, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    @staticmethod
    def _stage(in_planes: int, planes: int, n: int, stride: int) -> nn.Sequential:
        blocks = [BasicBlockA(in_planes, planes, stride)]
        blocks += [BasicBlockA(planes, planes, 1) for _ in range(n - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def _create(depth: int, data: DataSpec, width: int = 16) -> CifarResNetA:
    return CifarResNetA(depth, data.in_channels, data.num_classes, width)


@register_model(normalize="imagenet", tiny={"width": 4})
def resnet20(data: DataSpec, width: int = 16) -> CifarResNetA:
    """ResNet-20, option A (0.27 M parameters at width 16)."""
    return _create(20, data, width)


@register_model(normalize="imagenet", tiny={"width": 4})
def resnet32(data: DataSpec, width: int = 16) -> CifarResNetA:
    """ResNet-32, option A."""
    return _create(32, data, width)


@register_model(normalize="imagenet", tiny={"width": 4})
def resnet44(data: DataSpec, width: int = 16) -> CifarResNetA:
    """ResNet-44, option A."""
    return _create(44, data, width)


@register_model(normalize="imagenet", tiny={"width": 4})
def resnet56(data: DataSpec, width: int = 16) -> CifarResNetA:
    """ResNet-56, option A (0.85 M parameters at width 16)."""
    return _create(56, data, width)


@register_model(normalize="imagenet", tiny={"width": 4})
def resnet110(data: DataSpec, width: int = 16) -> CifarResNetA:
    """ResNet-110, option A."""
    return _create(110, data, width)


@register_model
def resnet8_tiny(data: DataSpec, width: int = 8) -> CifarResNetA:
    """A tiny option-A ResNet-8 (one block per stage, widths 8/16/32) for the embedded default and tests."""
    return _create(8, data, width)
