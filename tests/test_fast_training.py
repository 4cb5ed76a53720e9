"""Training at device speed without changing CPU results: augmentation drawn on the CPU generator as before and
applied where the batch lives, one host read of the loss per epoch, channels-last and autocast resolved per device."""

import json

import pytest
import torch

from psp.data.datasets import TensorImages
from psp.data.loaders import apply_augmentation, batches, draw_augmentation
from psp.data.normalization import normalizer
from psp.train import TrainSettings, resolve_settings, train_model

pytestmark = pytest.mark.timeout(120)


def _old_augment(x: torch.Tensor, generator: torch.Generator, pad: int) -> torch.Tensor:
    """psp.data.loaders._augment as of commit 4f822f0, the reference for bit-identical CPU results."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, x.shape[1], h, w + 2 * pad)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(n, x.shape[1], h, w)
    out = out.gather(3, cols)
    if x.shape[1] == 3:
        flip = torch.rand(n, generator=generator) < 0.5
        out[flip] = out[flip].flip(3)
    return out


def _old_batches(dataset: TensorImages, batch_size: int, normalize, seed: int, indices=None):
    """The in-memory training path of psp.data.loaders.batches as of commit 4f822f0 (shuffle and augment on)."""
    mean, std = normalize
    generator = torch.Generator().manual_seed(seed)
    idx = torch.tensor(indices) if indices is not None else torch.arange(len(dataset))
    idx = idx[torch.randperm(len(idx), generator=generator)]
    for start in range(0, len(idx), batch_size):
        chunk = idx[start:start + batch_size]
        x = dataset.images_at(chunk)
        x = _old_augment(x, generator, pad=4 if x.shape[-1] >= 32 else 2)
        yield (x - mean) / std, dataset.labels[chunk]


def _colour_images(n: int = 300, side: int = 32) -> TensorImages:
    g = torch.Generator().manual_seed(1)
    return TensorImages(torch.randint(0, 256, (n, 3, side, side), generator=g, dtype=torch.uint8),
                        torch.randint(0, 10, (n,), generator=g))


@pytest.mark.parametrize("seed", [0, 7])
def test_mnist5k_training_batches_bit_identical_to_before(mnist, seed):
    """A whole shuffled, augmented epoch of mnist5k (grey: crops only) equals the old loader's, bit for bit."""
    norm = normalizer("mnist", 1)
    subset = list(range(0, 4000, 3))
    for indices in (None, subset):
        old = list(_old_batches(mnist.train, 128, norm, seed, indices))
        new = list(batches(mnist.train, 128, norm, shuffle=True, seed=seed, augment=True, indices=indices))
        assert len(new) == len(old)
        for (xo, yo), (xn, yn) in zip(old, new, strict=True):
            assert torch.equal(xo, xn) and torch.equal(yo, yn)


def test_colour_augmentation_bit_identical_to_before():
    """Colour images (crops and flips, pad 4) augment exactly as before, batch after batch."""
    data = _colour_images()
    norm = normalizer("cifar10", 3)
    old = list(_old_batches(data, 64, norm, seed=3))
    new = list(batches(data, 64, norm, shuffle=True, seed=3, augment=True))
    for (xo, yo), (xn, yn) in zip(old, new, strict=True):
        assert torch.equal(xo, xn) and torch.equal(yo, yn)


def test_draw_then_apply_equals_old_augment():
    """The split into drawing (CPU generator) and applying (batch's device) consumes the generator as before."""
    x = _colour_images(50).images.float() / 255
    for pad in (2, 4):
        old_gen, new_gen = torch.Generator().manual_seed(pad), torch.Generator().manual_seed(pad)
        expected = _old_augment(x, old_gen, pad)
        assert torch.equal(apply_augmentation(x, draw_augmentation(len(x), 3, new_gen, pad)), expected)
        assert torch.equal(old_gen.get_state(), new_gen.get_state())


def test_loss_read_once_per_epoch(mnist, monkeypatch):
    """No step waits for the device: the loss goes to the host once per epoch, and the history keeps its meaning."""
    from psp.models import create_model

    model = create_model("resnet8_tiny", mnist.spec)
    reads = []
    real = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda t: reads.append(1) or real(t))
    history = train_model(model, mnist.train, normalizer("mnist", 1), TrainSettings(epochs=2, subset=640,
                                                                                     batch_size=64), 0, "cpu")
    assert len(reads) == 2
    assert [r["epoch"] for r in history] == [1, 2] and all(0 < r["loss"] < 5 for r in history)


def test_channels_last_training_hands_back_a_contiguous_model(mnist):
    """Channels-last, forced on CPU, trains to nearly the same loss and leaves the model in the default layout."""
    from psp.models import create_model

    losses = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        model = create_model("resnet8_tiny", mnist.spec)
        settings = TrainSettings(epochs=1, subset=256, batch_size=64, channels_last=channels_last)
        losses.append(train_model(model, mnist.train, normalizer("mnist", 1), settings, 0, "cpu")[0]["loss"])
        assert all(p.is_contiguous() for p in model.parameters())
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)


def test_resolve_settings_per_device():
    """Autocast runs only on CUDA; channels-last defaults to on for CUDA and off on CPU; explicit values stay."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert (resolve_settings(TrainSettings(amp=True), cpu).amp, resolve_settings(TrainSettings(), cpu).channels_last
            ) == (False, False)
    assert (resolve_settings(TrainSettings(amp=True), cuda).amp, resolve_settings(TrainSettings(), cuda).channels_last
            ) == (True, True)
    assert resolve_settings(TrainSettings(channels_last=False), cuda).channels_last is False
    assert resolve_settings(TrainSettings(channels_last=True), cpu).channels_last is True


def test_train_command_records_what_ran(tmp_path):
    """psp train's metrics.json holds the resolved settings: on CPU autocast is off whatever --amp says."""
    from psp.cli import main

    for flags, expected in ((["--amp"], (False, False)), (["--no-amp", "--channels-last"], (False, True))):
        out = tmp_path / "_".join(flags)
        assert main(["train", "--model", "resnet8_tiny", "--data", "mnist5k", "--epochs", "0", "--out", str(out),
                     "--device", "cpu", "--threads", "1", "--latency-repeats", "0", *flags]) == 0
        settings = json.loads((out / "metrics.json").read_text())["settings"]
        assert (settings["amp"], settings["channels_last"]) == expected
