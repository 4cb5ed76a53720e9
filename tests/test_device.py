"""CUDA without a GPU: on an emulated device (``psp.emulation.device``) device mixing fails on a CPU as it fails on a
GPU, and every registered method, the training loop and the structure check run there; the removal probe passes a
correct removal under a GPU's reduced-precision error and still catches a wrong one (``psp.emulation.precision``).

The three defects of issue 25 each have a test here that fails on 4f822f0: penalty slices indexed from the host
(``test_penalty_slices_live_on_the_device``), the option-A shortcut's mask built on the host
(``test_option_a_masking_on_the_device``), and a probe tolerance tighter than TF32 (``test_probe_passes_under_tf32``).
"""

import copy
import json

import pytest
import torch
from torch import nn

import psp.emulation.device as device_module
import psp.structure.support as support
from psp import pipeline
from psp.data.normalization import normalizer
from psp.data.spec import DataSpec
from psp.emulation.device import DEVICE, DeviceMixError, EmulatedCuda
from psp.emulation.precision import TF32_RELATIVE, output_noise
from psp.methods import list_methods
from psp.models import create_model, tiny_options
from psp.reconstruct.penalty import penalise_gradients
from psp.settings import PruneSettings
from psp.structure.groups import channel_groups
from psp.structure.importance import score_groups
from psp.structure.removal import mask_channels, selected_slices
from psp.structure.selection import select_by_ratio
from psp.structure.support import Unsupported, check_prunable
from psp.train import TrainSettings, train_model

pytestmark = pytest.mark.timeout(300)

CIFAR = DataSpec("cifar10", 3, 32, 10)


def on_device(name: str) -> tuple[nn.Module, torch.Tensor]:
    """A tiny model and an example input moved to the emulated device (call inside ``EmulatedCuda``)."""
    torch.manual_seed(0)
    model = create_model(name, CIFAR, **tiny_options(name)).eval().to("cuda")
    return model, torch.zeros(1, 3, 32, 32, device="cuda")


def half_of_every_group(model: nn.Module, example: torch.Tensor) -> dict[str, list[int]]:
    groups = channel_groups(model, example)
    return select_by_ratio(score_groups(groups, "l2", 0), 0.5, "uniform", units={g.root: g.units for g in groups})


# --- the emulated device itself ------------------------------------------------------------------------------------


def test_the_emulated_device_refuses_what_cuda_refuses():
    with EmulatedCuda() as cuda:
        layer = nn.Linear(4, 3).to("cuda")
        x = torch.randn(2, 4).to("cuda")
        layer(x).sum().backward()
        assert layer.weight.device == DEVICE and layer.weight.is_cuda and layer.weight.grad.device == DEVICE
        assert torch.randn(2, 4).device.type == "cpu"
        with pytest.raises(DeviceMixError, match="index_select"):
            layer.weight.index_select(0, torch.tensor([0, 2]))
        with pytest.raises(DeviceMixError, match="add"):
            layer.weight + torch.ones(3, 4)
        with pytest.raises(DeviceMixError, match="generator"):
            torch.randperm(4, generator=torch.Generator(), device="cuda")
        assert layer.weight.index_select(0, torch.tensor([0, 2], device=x.device)).device == DEVICE
        assert (layer.weight * torch.tensor(2.0)).device == DEVICE  # host scalars mix, as on CUDA
        assert layer.weight.detach().cpu().device.type == "cpu" and cuda.syncs["cpu(cpu)"] == 1
        layer(x).sum().item()
        layer.weight[layer.weight > 0]
        assert cuda.syncs["item"] == 1 and cuda.syncs["__getitem__"] == 1
        with torch.autocast("cuda", dtype=torch.bfloat16):
            assert layer(x).dtype == torch.bfloat16  # CUDA autocast runs as CPU autocast: bf16 paths execute
    assert not torch.cuda.is_available() or torch.cuda.device_count() > 0  # the stand-ins are gone again


def test_a_deep_copy_stays_on_the_device_without_searching_its_memo(monkeypatch):
    """A copy's tensors keep their devices. Its memo (every object copied so far) is not searched for tensors at
    each copied tensor: that made copying a ShuffleNet quadratic (64 s), and a host tensor copied before a device
    one counted as mixing."""
    real = device_module.tree_flatten
    searched = []
    monkeypatch.setattr(device_module, "tree_flatten", lambda tree: searched.append(len(real(tree)[0])) or real(tree))
    memo = {n: torch.zeros(2) for n in range(1000)}  # as if 1000 host tensors had been copied already
    with EmulatedCuda():
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).to("cuda")
        model.register_buffer("host", torch.ones(2))
        searched.clear()
        twin = copy.deepcopy(model, memo)
        assert all(p.device == DEVICE for p in twin.parameters()) and twin[1].running_mean.device == DEVICE
        assert twin.host.device.type == "cpu"
    assert sum(searched) < 100


# --- the three defects ---------------------------------------------------------------------------------------------


def test_penalty_slices_live_on_the_device():
    """PSP's phase 1 indexed the device's gradients with host indices (removal.selected_slices)."""
    with EmulatedCuda():
        model, example = on_device("resnet20")
        slices = list(selected_slices(model, half_of_every_group(model, example), example))
        model(torch.randn(2, 3, 32, 32).to("cuda")).sum().backward()
        penalise_gradients(slices, "replace", 0.02, 1e-3)
        assert slices and all(idx.device == DEVICE for _, _, idx in slices)


def test_option_a_masking_on_the_device():
    """mask_channels built the option-A shortcut's isin test on the host, so every option-A ResNet was refused."""
    with EmulatedCuda():
        model, example = on_device("resnet20")
        masked = mask_channels(model, half_of_every_group(model, example), example)
        assert masked(torch.randn(2, 3, 32, 32).to("cuda")).device == DEVICE
        check_prunable(model, example, "resnet20")


@pytest.mark.parametrize("name", ["resnet20", "resnet56", "resnet8_tiny", "vgg_tiny"])
def test_probe_passes_under_tf32(name):
    """A correct removal differs from masking by a GPU's reduced-precision error (TF32: about 1e-3 per layer)."""
    spec = DataSpec("mnist5k", 1, 28, 10) if name.endswith("_tiny") else CIFAR
    torch.manual_seed(0)
    model = create_model(name, spec, **tiny_options(name)).eval()
    with output_noise(TF32_RELATIVE):
        check_prunable(model, torch.zeros(1, spec.in_channels, spec.image_size, spec.image_size), name)


def test_probe_catches_a_wrong_removal_under_tf32(monkeypatch):
    """One channel of one group removed in place of another is still caught under that error."""
    correct = support.remove_channels

    def one_channel_off(model, selection, example, graph=None):
        selection = dict(selection)
        root = next(r for r in sorted(selection) if selection[r])
        kept = next(c for c in range(max(selection[root]) + 2) if c not in selection[root])
        selection[root] = sorted([*selection[root][1:], kept])
        return correct(model, selection, example, graph)

    monkeypatch.setattr(support, "remove_channels", one_channel_off)
    torch.manual_seed(0)
    model = create_model("resnet20", CIFAR, **tiny_options("resnet20")).eval()
    with output_noise(TF32_RELATIVE), pytest.raises(Unsupported, match="beyond masking those channels"):
        check_prunable(model, torch.zeros(1, 3, 32, 32), "resnet20")


def test_probe_runs_without_tf32(monkeypatch):
    seen = []
    remove = support.remove_channels
    monkeypatch.setattr(support, "remove_channels", lambda *args: seen.append(
        (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)) or remove(*args))
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    torch.manual_seed(0)
    check_prunable(create_model("resnet8_tiny", DataSpec("mnist5k", 1, 28, 10)).eval(), torch.zeros(1, 1, 28, 28),
                   "resnet8_tiny")
    assert seen == [(False, False)] and torch.backends.cudnn.allow_tf32


# --- every method, the training loop and the structure rules on the device -------------------------------------------


@pytest.mark.parametrize("method", list_methods())
def test_every_method_prunes_on_the_device(method, trained, tmp_path):
    settings = PruneSettings(target_macs=1.5, samples=64, batch_size=32, penalty_epochs=1, rec_epochs=1,
                             layer_epochs=1, epochs=1, train_subset=128, reg_epochs=1, amp=True)
    opts = pipeline.RunOptions(threads=1, device="cuda", latency_repeats=1 if method == "oneshot" else 0)
    with EmulatedCuda():
        metrics = pipeline.prune_run(method, str(trained.checkpoint), None, None, None, settings, tmp_path, opts,
                                     dense_metrics=trained.dir / "metrics.json")
    assert metrics["device"] == "emulated CUDA (CPU)" and 0 <= metrics["top1"] <= 1
    assert json.loads((tmp_path / "metrics.json").read_text())["macs_reduction"] > 1 or method == "dense_bn"


def _psp_on_the_device(trained, out, **settings) -> dict:
    settings = PruneSettings(target_macs=1.5, samples=64, batch_size=32, penalty_epochs=1, rec_epochs=1, **settings)
    opts = pipeline.RunOptions(threads=1, device="cuda", latency_repeats=0)
    with EmulatedCuda():
        return pipeline.prune_run("psp", str(trained.checkpoint), None, None, None, settings, out, opts,
                                  dense_metrics=trained.dir / "metrics.json")


def test_psp_channels_last_on_the_device(trained, tmp_path):
    """The channels-last path (layout-keeping gathers, buffers, the loss's backward) makes its tensors on the device."""
    metrics = _psp_on_the_device(trained, tmp_path, memory_format="channels_last")
    assert metrics["memory_format"] == "channels_last" and metrics["macs_reduction"] > 1


def test_psp_forward_input_gradients_on_the_device(trained, tmp_path):
    """The flipped kernels of psp.reconstruct.conv_grad stay on the device (auto would not choose them on CUDA)."""
    metrics = _psp_on_the_device(trained, tmp_path, conv_input_grad="forward")
    assert metrics["conv_input_grad"] == metrics["rec_conv_input_grad"] == "forward"


def test_training_runs_on_the_device(tmp_path):
    opts = pipeline.RunOptions(threads=1, device="cuda", latency_repeats=0)
    with EmulatedCuda():
        metrics = pipeline.train_run("resnet8_tiny", "mnist5k", 1, 0, tmp_path, opts,
                                     TrainSettings(lr=0.1, batch_size=128, subset=512))
    assert metrics["device"] == "emulated CUDA (CPU)" and (tmp_path / "model.pt").is_file()


@pytest.mark.parametrize("name", ["timm:convnext_atto", "tv:shufflenet_v2_x0_5"])
def test_structure_rules_on_the_device(name):
    """LayerNorm over kept channels and ShuffleNet's channel gathers, removed and masked there."""
    with EmulatedCuda():
        model, example = on_device(name)
        check_prunable(model, example, name)


def test_training_waits_for_the_device_once_per_epoch(mnist):
    """16 steps in 2 epochs, on the device with bfloat16 autocast and channels-last: the host reads the loss once per
    epoch and never otherwise waits for the device."""
    torch.manual_seed(0)
    model = create_model("resnet8_tiny", mnist.spec)
    settings = TrainSettings(epochs=2, batch_size=64, subset=512, amp=True)
    with EmulatedCuda() as cuda:
        history = train_model(model, mnist.train, normalizer("mnist", 1), settings, 0, torch.device("cuda"))
        assert all(p.device == DEVICE for p in model.parameters())
    assert dict(cuda.syncs) == {"item": settings.epochs} and len(history) == settings.epochs
