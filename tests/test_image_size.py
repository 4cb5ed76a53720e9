"""Image sizes: a model that cannot run on the data's size is refused before any work, naming the smallest size
that runs; ``--image-size N`` resizes the images on load, and a checkpoint made at N is run at N again."""

import json

import onnx
import pytest
import torch
from torch import nn

from psp.cli import main
from psp.data.spec import DataSpec
from psp.errors import UsageError
from psp.models.input_size import check_input_size

pytestmark = pytest.mark.timeout(120)

SPEC = DataSpec("digits", 1, 16, 10)


@pytest.fixture(autouse=True)
def _cached_mnist(mnist, monkeypatch):
    """In-process runs reuse the session's mnist5k instead of decoding it again."""
    from psp import pipeline

    real = pipeline.load_data
    monkeypatch.setattr(pipeline, "load_data", lambda arg, download=False: mnist if arg == "mnist5k" else
                        real(arg, download))


class Needs(nn.Module):
    """Runs only on sizes ``ok(size)`` accepts, counting its forward passes."""

    def __init__(self, ok) -> None:
        super().__init__()
        self.ok, self.calls, self.conv = ok, 0, nn.Conv2d(1, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if not self.ok(x.shape[-1]):
            raise AssertionError(f"Wrong image height! Got {x.shape[-1]}\nsecond line")
        return self.conv(x)


def _one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def test_runs_once_and_keeps_mode():
    """A model that runs costs one forward pass of one image; its training mode is given back."""
    model = Needs(lambda s: True).train()
    check_input_size(model, SPEC, "fits")
    assert model.calls == 1 and model.training


def test_unpadded_convs_name_the_smallest_size():
    """Two unpadded 11x11 convs need 21 pixels: found by the search and named with both sizes on one line."""
    model = nn.Sequential(nn.Conv2d(1, 4, 11), nn.Conv2d(4, 4, 11), nn.Flatten())
    with pytest.raises(UsageError) as error:
        check_input_size(model, SPEC, "two_convs")
    assert _one_line(error) == ("model two_convs cannot run on 16x16 images (data digits): it needs at least 21x21; "
                                "pass --image-size 21 to resize the images on load")
    assert model.training, "mode restored after a refusal too"


@pytest.mark.parametrize(("ok", "needed"), [(lambda s: s == 224, 224), (lambda s: s >= 999, 999),
                                            (lambda s: s == 50 or s >= 64, 64)], ids=["exact", "odd", "gaps"])
def test_smallest_size_that_ran(ok, needed):
    """An exact-size model (ViT at 224) and sizes between the candidates are found by bisection; where sizes are not
    monotone, the size reported is one that ran."""
    with pytest.raises(UsageError, match=f"at least {needed}x{needed}; pass --image-size {needed} "):
        check_input_size(Needs(ok), SPEC, "picky")


def test_no_size_runs():
    """A model that runs at no size up to 1024 is named with the first line of its error."""
    with pytest.raises(UsageError) as error:
        check_input_size(Needs(lambda s: False), SPEC, "broken")
    assert _one_line(error) == ("model broken cannot run on 16x16 images (data digits), nor on any size up to "
                                "1024x1024: Wrong image height! Got 16")


def test_densenet121_refused_at_28(tmp_path, capsys):
    """psp train of tv:densenet121 on 28x28 digits exits 2 before training, with one line naming 28 and the 29 it
    needs, and creates no output folder."""
    out = tmp_path / "D"
    rc = main(["train", "--model", "tv:densenet121", "--data", "mnist5k", "--epochs", "1", "--out", str(out),
               "--threads", "1"])
    torch.set_num_threads(1)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.splitlines() == ["psp: error: model tv:densenet121 cannot run on 28x28 images (data mnist5k): it "
                                "needs at least 29x29; pass --image-size 29 to resize the images on load"]
    assert not out.exists()


def test_resized_bundle_reads_resized_images(mnist):
    """Every way the loaders, calibration and labeled controls read images gives N x N images in [0, 1]; labels
    and the stored data are untouched."""
    from psp.data.loaders import batches, calibration_images, calibration_labels
    from psp.data.normalization import normalizer
    from psp.data.resize import ResizedImages, resize_bundle

    bundle = resize_bundle(mnist, 20)
    assert bundle.spec == DataSpec("mnist5k", 1, 20, 10) and bundle.native_size == 28 and mnist.native_size == 28
    assert resize_bundle(mnist, 28) is mnist and resize_bundle(mnist, None) is mnist
    train = bundle.train
    assert len(train) == 4000 and train.image(3).shape == (1, 20, 20) and train[3][1] == mnist.train.label(3)
    assert train.images_at(torch.tensor([0, 5])).shape == (2, 1, 20, 20)
    assert torch.equal(train[3][0], train.image(3)) and 0 <= train.image(3).min() <= train.image(3).max() <= 1
    x, y = next(batches(bundle.test, 64, normalizer("none", 1)))
    assert x.shape == (64, 1, 20, 20) and torch.equal(y, mnist.test.labels[:64])
    assert calibration_images(train, [1, 2], normalizer("none", 1)).shape == (2, 1, 20, 20)
    assert calibration_labels(train, [1, 2]).tolist() == [mnist.train.label(1), mnist.train.label(2)]
    assert mnist.train.image(3).shape == (1, 28, 28)
    folder = ResizedImages(_Folder(), 12)
    assert folder.image(1).shape == folder[1][0].shape == (3, 12, 12) and len(folder) == 2
    assert folder.label(1) == folder[1][1] == 7


class _Folder(torch.utils.data.Dataset):
    """Stands in for an ImageFolder split: images read one by one."""

    def __len__(self) -> int:
        return 2

    def image(self, i: int) -> torch.Tensor:
        return torch.full((3, 30, 30), i / 2)

    def label(self, i: int) -> int:
        return 7

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.image(i), self.label(i)


@pytest.fixture(scope="module")
def at_20(tmp_path_factory):
    """vgg_tiny trained (zero epochs) with --image-size 20 on the 28x28 digits."""
    out = tmp_path_factory.mktemp("at_20")
    rc = main(["train", "--model", "vgg_tiny", "--data", "mnist5k", "--epochs", "0", "--image-size", "20",
               "--out", str(out), "--threads", "1", "--latency-repeats", "0"])
    torch.set_num_threads(1)
    assert rc == 0
    return out


def _metrics(path) -> dict:
    return json.loads(path.read_text())


def test_train_records_image_size(at_20):
    """metrics.json and the checkpoint record the size the model saw and the data's own."""
    from psp.checkpoint import load_model

    metrics = _metrics(at_20 / "metrics.json")
    assert (metrics["image_size"], metrics["image_size_native"]) == (20, 28)
    assert load_model(at_20 / "model.pt").data.image_size == 20
    with pytest.raises(UsageError, match="was made for"):  # other callers still get the strict check
        load_model(at_20 / "model.pt", data=DataSpec("mnist5k", 1, 28, 10))


def test_prune_and_eval_run_at_the_checkpoint_size(at_20, tmp_path):
    """prune and eval of a checkpoint made at 20 resize to 20 without the flag, also with --data given."""
    rc = main(["prune", "--method", "oneshot", "--checkpoint", str(at_20 / "model.pt"), "--ratio", "0.3",
               "--out", str(tmp_path / "p"), "--threads", "1", "--latency-repeats", "0"])
    assert rc == 0
    metrics = _metrics(tmp_path / "p" / "metrics.json")
    assert (metrics["image_size"], metrics["image_size_native"]) == (20, 28)
    assert metrics["settings"]["image_size"] == 20
    for extra in ([], ["--data", "mnist5k"], ["--image-size", "20"]):
        out = tmp_path / f"e{len(extra)}.json"
        assert main(["eval", "--checkpoint", str(tmp_path / "p" / "model.pt"), "--out", str(out), "--threads", "1",
                     "--latency-repeats", "0", *extra]) == 0
        assert (_metrics(out)["image_size"], _metrics(out)["image_size_native"]) == (20, 28)
        assert _metrics(out)["top1"] == metrics["top1"]
    torch.set_num_threads(1)


@pytest.mark.parametrize("command", ["eval", "prune"])
def test_contradicting_image_size_refused(at_20, tmp_path, capsys, command):
    """An --image-size other than the checkpoint's is one line naming both sizes, and nothing is written."""
    argv = ["eval", "--checkpoint", str(at_20 / "model.pt"), "--image-size", "24"]
    if command == "prune":
        argv = ["prune", "--method", "oneshot", "--ratio", "0.3", "--checkpoint", str(at_20 / "model.pt"),
                "--image-size", "24", "--out", str(tmp_path / "p")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--image-size 24" in err and "20x20" in err
    assert not (tmp_path / "p").exists()


def test_image_size_below_minimum(tmp_path, capsys):
    assert main(["train", "--model", "vgg_tiny", "--data", "mnist5k", "--epochs", "0", "--image-size", "4",
                 "--out", str(tmp_path / "o")]) == 2
    assert "4 must be >= 8" in capsys.readouterr().err


def test_export_at_the_checkpoint_size(at_20, tmp_path):
    """psp export of a checkpoint made at 20 takes 20x20 images and says so in its metadata."""
    path = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(at_20 / "model.pt"), "--onnx", str(path), "--threads", "1"]) == 0
    torch.set_num_threads(1)
    model = onnx.load(str(path))
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]] == [1, 20, 20]
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["psp_bench.data"])["image_size"] == 20
