"""ResNet-18 and ResNet-50 with a CIFAR stem (3×3 conv, no max-pool) and 1×1-conv projection shortcuts.

He et al., CVPR 2016, in the CIFAR adaptation used by the PSP paper and most pruning papers (the layout of the
widely used ``kuangliu/pytorch-cifar`` models). ``width`` scales every stage for tiny test models.
"""

from torch import Tensor, nn
from torch.nn import functional as F

from psp.data.spec import DataSpec
from psp.models._registry import register_model

__all__ = ["CifarResNet"]


def _projection(in_planes: int, planes: int, stride: int) -> nn.Module:
    if stride == 1 and in_planes == planes:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _projection(in_planes, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.shortcut = _projection(in_planes, planes * 4, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, block: type[BasicBlock | Bottleneck], blocks: tuple[int, ...], data: DataSpec,
                 width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(data.in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        in_planes, stages = width, []
        for i, n in enumerate(blocks):
            planes, stride = width * 2**i, 1 if i == 0 else 2
            layers = []
            for s in [stride] + [1] * (n - 1):
                layers.append(block(in_planes, planes, s))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(in_planes, data.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register_model(tiny={"width": 4})
def resnet18_cifar(data: DataSpec, width: int = 64) -> CifarResNet:
    """ResNet-18, CIFAR stem, projection shortcuts (11.2 M parameters at width 64)."""
    return CifarResNet(BasicBlock, (2, 2, 2, 2), data, width)


@register_model(tiny={"width": 4})
def resnet50_cifar(data: DataSpec, width: int = 64) -> CifarResNet:
    """ResNet-50, CIFAR stem, bottleneck blocks (23.5 M parameters at width 64)."""
    return CifarResNet(Bottleneck, (3, 4, 6, 3), data, width)
