"""The fused gather-subtract-square: the difference exactly as ATen writes it, its squared norm within rounding, and
ATen's operators wherever the kernel does not apply."""

import pytest
import torch

from psp.reconstruct import layout, residual
from psp.reconstruct.residual import fusable, gathered_residual

CL = torch.channels_last


def _reference(cached: torch.Tensor, idx: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return cached.index_select(0, idx) - out


@pytest.mark.parametrize("fmt", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gathered_residual_is_atens_difference(fmt, dtype):
    torch.manual_seed(0)
    cached = layout.to_layout(torch.randn(20, 7, 5, 6, dtype=dtype), fmt)
    out = layout.to_layout(torch.randn(6, 7, 5, 6, dtype=dtype), fmt).requires_grad_()
    idx = torch.tensor([19, 3, 3, 0, 11, 7])
    buffer = layout.empty_rows(cached, 6)
    assert fusable(cached, out)  # numba is a dependency: the kernel runs here
    squared = gathered_residual(cached, idx, out, buffer)
    expected = _reference(cached, idx, out.detach())
    assert torch.equal(buffer, expected) and layout.is_channels_last(buffer) == (fmt == "channels_last")
    assert squared.item() == pytest.approx(expected.double().pow(2).sum().item(), rel=1e-6)


def test_atens_operators_run_where_the_kernel_does_not_apply(monkeypatch):
    torch.manual_seed(1)
    cached = torch.randn(10, 4, 3, 3).contiguous(memory_format=CL)
    idx = torch.tensor([2, 9, 4])
    nchw_out = torch.randn(3, 4, 3, 3)  # another layout than the cache's
    assert not fusable(cached, nchw_out)
    buffer = layout.empty_rows(cached, 3)
    squared = gathered_residual(cached, idx, nchw_out, buffer)
    assert torch.equal(buffer, _reference(cached, idx, nchw_out))
    assert squared.item() == pytest.approx(_reference(cached, idx, nchw_out).pow(2).sum().item(), rel=1e-6)
    assert not fusable(cached.half(), nchw_out.half().contiguous(memory_format=CL))
    monkeypatch.setattr(residual, "_compiled", lambda: None)  # Numba not importable
    out = torch.randn(3, 4, 3, 3).contiguous(memory_format=CL)
    assert not fusable(cached, out)
    gathered_residual(cached, idx, out, buffer)
    assert torch.equal(buffer, _reference(cached, idx, out))


def test_a_psp_run_with_the_kernel_trains_exactly_as_one_without(fresh_base, make_context, monkeypatch):
    """The differences, hence the gradients, are ATen's bit for bit: the pruned models are equal; only the logged
    losses (another order of the squares' sum) may differ in their last bits."""
    from psp.methods import get_method

    settings = {"target_macs": 2.0, "samples": 32, "batch_size": 16, "penalty_epochs": 2, "rec_epochs": 2}
    runs = {}
    for threshold in (2**62, 0):  # no run's cache reaches the first; every run's the second
        monkeypatch.setattr("psp.reconstruct.targets.FUSE_MIN_BYTES", threshold)
        torch.manual_seed(0)
        runs[threshold] = get_method("psp").run(make_context(fresh_base(), **settings))
    plain, fused = runs[2**62], runs[0]
    assert not plain.extra["fused_residual"] and fused.extra["fused_residual"]
    for p, q in zip(plain.model.state_dict().values(), fused.model.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    assert [r["loss"] for r in fused.tables["losses"]] == pytest.approx([r["loss"] for r in plain.tables["losses"]],
                                                                        rel=1e-5)
