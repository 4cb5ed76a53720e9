"""Image sizes: a model that cannot run on the data's size is refused before any work, naming the smallest size
that runs."""

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
