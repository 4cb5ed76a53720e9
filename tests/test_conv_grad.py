"""Input gradients of same convolutions as forward convolutions (psp.reconstruct.conv_grad): the gradients are the
backend's up to summation order, only eligible convolutions are changed, the block restores them, FLOPs are counted
as before, and auto picks the forward form on CPU in NCHW only."""

import pytest
import torch
from torch import nn

from psp.compute import FlopCount
from psp.errors import UsageError
from psp.reconstruct import conv_grad


def _grads(conv: nn.Conv2d, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    x = x.clone().requires_grad_()
    conv.zero_grad(set_to_none=True)
    conv(x).backward(g)
    return [x.grad] + [p.grad for p in conv.parameters()]


@pytest.mark.parametrize(("cin", "cout", "kernel", "bias"), [(9, 8, 3, False), (8, 11, 3, True), (5, 7, 1, True),
                                                               (4, 6, 5, False)])
def test_forward_input_gradients_equal_the_backends(cin, cout, kernel, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias).double()
    x, g = torch.randn(3, cin, 10, 9, dtype=torch.float64), torch.randn(3, cout, 10, 9, dtype=torch.float64)
    native = _grads(conv, x, g)
    with conv_grad.forward_input_gradients(conv):
        assert "_conv_forward" in vars(conv)
        forward = _grads(conv, x, g)
    assert "_conv_forward" not in vars(conv)  # restored
    assert len(forward) == len(native)
    for a, b in zip(forward, native, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_only_stride_1_same_dense_convolutions_are_eligible():
    assert conv_grad.is_same_conv(nn.Conv2d(4, 4, 3, padding=1))
    assert conv_grad.is_same_conv(nn.Conv2d(4, 4, 1))
    for other in [nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3, padding=1, groups=4),
                  nn.Conv2d(4, 4, 3, padding=2, dilation=2), nn.Conv2d(4, 4, 3, padding="same"),
                  nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), nn.Linear(4, 4)]:
        assert not conv_grad.is_same_conv(other)


def test_input_images_get_no_gradient_and_flops_are_counted_as_before():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, padding=1))
    x = torch.randn(2, 3, 8, 8)
    counts = []
    for how in ("native", "forward"):
        with conv_grad.input_gradients(model, how), FlopCount() as count:
            model(x).sum().backward()
        counts.append(dict(count.by_pass))
    assert counts[0] == counts[1] and counts[0]["backward"] > 0
    assert x.grad is None


def test_auto_is_forward_on_cpu_in_nchw_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert conv_grad.resolve_conv_input_grad("auto", cpu, "contiguous") == "forward"
    assert conv_grad.resolve_conv_input_grad("auto", cpu, "channels_last") == "native"
    assert conv_grad.resolve_conv_input_grad("auto", cuda, "contiguous") == "native"
    assert conv_grad.resolve_conv_input_grad("native", cpu, "contiguous") == "native"
    with pytest.raises(UsageError, match="transpose"):
        conv_grad.resolve_conv_input_grad("transpose", cpu, "contiguous")
