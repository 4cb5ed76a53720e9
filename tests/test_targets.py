"""The reconstruction targets: a cache written batch by batch equals targets recomputed per batch, and a store built
with the surviving channels equals the full store restricted to them (psp_fast and psp_no_penalty build the former)."""

import pytest
import torch

from psp.reconstruct.taps import reconstruction_layers
from psp.reconstruct.targets import TargetStore


@pytest.fixture
def original(fresh_base):
    return fresh_base()


@pytest.fixture
def images(make_context, original):
    return make_context(original, samples=80, target_macs=2.0).calibration()


def _keep(original, layers) -> dict[str, torch.Tensor]:
    """Every other output channel of the first half of the layers."""
    outputs = {n: m.weight.shape[0] for n, m in original.named_modules() if n in layers and hasattr(m, "weight")}
    return {n: torch.arange(0, c, 2) for n, c in list(outputs.items())[: len(outputs) // 2]}


def test_cache_equals_recomputed_targets(original, images):
    layers = reconstruction_layers(original)
    cached = TargetStore(original, images, layers, 2**40, batch_size=32)
    fresh = TargetStore(original, images, layers, 0, batch_size=32)
    assert cached.cached is not None and fresh.cached is None
    idx = torch.tensor([70, 3, 41, 12, 79, 0])
    b1, b2 = cached.batch(idx), fresh.batch(idx)
    for n in layers:
        (t1, d1), (t2, d2) = b1.take(n), b2.take(n)
        torch.testing.assert_close(t1, t2, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(d1, d2, rtol=1e-4, atol=1e-4)


def test_store_built_with_keep_equals_restricted_store(original, images):
    layers = reconstruction_layers(original)
    keep = _keep(original, layers)
    restricted = TargetStore(original, images, layers, 2**40, batch_size=32).restrict(keep)
    direct = TargetStore(original, images, layers, 2**40, batch_size=32, keep=keep)
    assert set(direct.cached) == set(layers)
    for n in layers:
        assert torch.equal(direct.cached[n], restricted.cached[n]), n
        assert torch.equal(direct.sqnorms[n], restricted.sqnorms[n]), n
    some = next(iter(keep))
    assert direct.cached[some].shape[1] == len(keep[some])


def test_targets_computed_per_batch_serve_each_layer_once(original, images):
    layers = reconstruction_layers(original)
    batch = TargetStore(original, images, layers, 0, batch_size=32).batch(torch.tensor([1, 2]))
    batch.take(layers[0])
    with pytest.raises(RuntimeError, match="ran twice"):
        batch.take(layers[0])
    cached = TargetStore(original, images, layers, 2**40, batch_size=32).batch(torch.tensor([1, 2]))
    first = cached.take(layers[0])[0].clone()
    cached.take(layers[0])[0].zero_()  # a cache gathers the rows again
    assert torch.equal(cached.take(layers[0])[0], first)


@pytest.mark.parametrize("cache_bytes", [2**40, 0])
def test_targets_are_the_outputs_as_made_when_a_later_operation_changes_them_in_place(cache_bytes):
    """VGG's BatchNorms feed nn.ReLU(inplace=True): their targets are their outputs, not the activations the ReLU
    leaves in the same tensor, so a copy of the original model reproduces every target exactly (zero loss)."""
    from psp.data.spec import DataSpec
    from psp.models.vgg_cifar import vgg_tiny
    from psp.reconstruct.loss import HolisticLoss

    torch.manual_seed(0)
    original = vgg_tiny(DataSpec("synthetic", 3, 16, 10)).eval()
    layers = reconstruction_layers(original)
    images = torch.randn(12, 3, 16, 16)
    store = TargetStore(original, images, layers, cache_bytes, batch_size=6)
    norms = [n for n in layers if isinstance(original.get_submodule(n), torch.nn.BatchNorm2d)]
    assert norms and store.copies == set(norms)  # the ReLUs change exactly those in place
    copy = vgg_tiny(DataSpec("synthetic", 3, 16, 10)).eval()
    copy.load_state_dict(original.state_dict())
    idx = torch.tensor([7, 2, 11, 0, 5, 9])
    with HolisticLoss(copy, layers, store.batch(idx)) as terms:
        copy(images[idx])
    assert terms.total().item() == 0.0
    assert all(terms.terms[n].item() == 0.0 for n in norms)
