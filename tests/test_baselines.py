"""Every registered method on tiny models of each family, and the guarantees specific to the baselines.

Contexts come from ``PruneContext.build``, as in ``psp.pipeline.prune_run``, so that no evaluation is paid for: a
``calibration`` method gets unlabeled images drawn from a training split whose labels raise when read (and, stricter
than the pipeline, that split as ``ctx.data``), a ``none`` method gets neither images nor data (both raise or are
None), a ``labels`` method gets the labeled split and the calibration images with their labels.
"""

import copy
from collections.abc import Callable
from dataclasses import replace

import pytest
import torch
import torch_pruning as tp

from baselines.depgraph import group_norm_regulariser
from baselines.greg import GrowingPenalty
from baselines.neuron_merging import merge_chain, merge_into_consumers
from psp.data.datasets import DataBundle, TensorImages, load_data
from psp.data.loaders import batches, calibration_images
from psp.data.normalization import normalizer
from psp.errors import UsageError
from psp.methods import MethodResult, PruneContext, get_method, list_methods
from psp.metrics import accuracy, count_macs
from psp.models import create_model, tiny_options
from psp.settings import PruneSettings
from psp.structure.groups import build_graph, output_layer
from psp.structure.removal import remove_channels, selected_slices
from psp.structure.rules import CUSTOM_PRUNERS

FAMILIES = ["resnet8_tiny", "vgg_tiny", "resnet18_cifar"]  # option-A ResNet, VGG, projection; at their tiny widths
TARGET = 2.0
TINY = {"target_macs": TARGET, "batch_size": 16, "layer_epochs": 1, "penalty_epochs": 1, "rec_epochs": 1,
        "epochs": 1, "train_subset": 256, "reg_epochs": 1}
CALIBRATION = list(range(0, 4000, 125))  # 32 training images
DENSE_CONTROLS = {"dense_bn"}  # registered controls that keep every channel
RETRAINING = [m for m in list_methods() if get_method(m).uses == "labels"]
# Decisive on any CPU's kernels: at 3x MACs removal alone leaves the suite's base model near chance, and two epochs
# of the whole labeled split (oneshot_ft: its 30 default epochs on 500 labeled calibration images at lr 1e-2) bring
# every labels method back above 0.8. Measured on AVX512, AVX2, default kernels and base seeds 0-4: oneshot 0.10-0.17,
# retrained 0.84-0.94. At 2x, oneshot alone keeps 0.12-0.34 depending on the kernels, too noisy to compare against.
RETRAIN_BUDGET = {"target_macs": 3.0, "train_subset": 4000, "epochs": 2, "reg_epochs": 1, "finetune_lr": 0.1,
                  "lr": 1e-2}
RETRAIN_CALIBRATION = list(range(0, 4000, 8))  # 500 labeled images for oneshot_ft


class LabelsRead(AssertionError):
    """A method that must not read labels did."""


class _RaisingLabels:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: object) -> torch.Tensor:
        raise LabelsRead("a label was read")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mnist() -> DataBundle:
    return load_data("mnist5k")


def _unlabeled(bundle: DataBundle) -> DataBundle:
    train = TensorImages(bundle.train.images, _RaisingLabels(len(bundle.train)))
    return DataBundle(bundle.spec, train, bundle.test, bundle.default_normalization)


def _context(name: str, model: torch.nn.Module, bundle: DataBundle, settings: PruneSettings,
             calibration_indices: list[int] = CALIBRATION) -> PruneContext:
    uses = get_method(name).uses
    if uses == "calibration":  # stricter than the pipeline: the split is there, and its labels raise when read
        unlabeled = _unlabeled(bundle)
        ctx = PruneContext.build(model, unlabeled, settings, normalize="mnist", indices=calibration_indices)
        return replace(ctx, data=unlabeled)
    return PruneContext.build(model, bundle, settings, normalize="mnist", indices=calibration_indices, uses=uses)


def _top1(model: torch.nn.Module, bundle: DataBundle) -> float:
    return accuracy(model, batches(bundle.test, 500, normalizer("mnist", 1)))["top1"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", list_methods())
def test_method_hits_target_and_keeps_the_dense_model(name: str, family: str, mnist: DataBundle) -> None:
    torch.manual_seed(0)
    dense = create_model(family, mnist.spec, **tiny_options(family)).eval()
    state = {k: v.clone() for k, v in dense.state_dict().items()}
    ctx = _context(name, dense, mnist, PruneSettings(**TINY))
    torch.manual_seed(0)
    result = get_method(name).run(ctx)

    reduction = count_macs(dense, ctx.example) / count_macs(result.model, ctx.example)
    expected = 1.0 if name in DENSE_CONTROLS else TARGET
    assert abs(reduction / expected - 1) <= 0.02
    result.model.eval()
    with torch.no_grad():
        out = result.model(calibration_images(mnist.train, CALIBRATION[:4], ctx.normalize))
    assert out.shape == (4, mnist.spec.num_classes) and torch.isfinite(out).all()
    assert all(torch.equal(v, state[k]) for k, v in dense.state_dict().items()), "the dense model was modified"
    assert result.images_seen >= 0 and result.epochs >= 0


@pytest.mark.numerics
@pytest.mark.timeout(60)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", ["adaprune", "gap"])
def test_layerwise_reconstruction_lowers_layer_losses(name: str, family: str, mnist: DataBundle) -> None:
    """Every fitted layer gets closer to its dense output, and the method's default 10 epochs per layer cut the
    summed loss decisively (seeded model; measured 0.40-0.68 of the loss before, the same on every kernel path)."""
    torch.manual_seed(0)
    dense = create_model(family, mnist.spec, **tiny_options(family)).eval()
    result = get_method(name).run(_context(name, dense, mnist, PruneSettings(**(TINY | {"layer_epochs": 10}))))
    rows = [r for r in result.tables["layer_losses"] if r.get("fitted", True)]
    assert rows and result.extra["layers_reconstructed"] == len(rows)
    assert all(r["loss_after"] < r["loss_before"] for r in rows), rows
    assert sum(r["loss_after"] for r in rows) < 0.8 * sum(r["loss_before"] for r in rows)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", RETRAINING)
def test_retraining_needs_labels(name: str, mnist: DataBundle) -> None:
    """A labels method given no labels (neither the split nor the calibration images' labels) says so."""
    ctx = _context(name, create_model("vgg_tiny", mnist.spec), mnist, PruneSettings(**TINY))
    with pytest.raises(UsageError, match="label"):
        get_method(name).run(replace(ctx, data=None, calibration_labels=None))


@pytest.fixture(scope="session")
def oneshot_top1(fresh_base: Callable[[], torch.nn.Module], mnist: DataBundle) -> float:
    """The suite's base model after removal alone, at the retraining test's target."""
    result = get_method("oneshot").run(_context("oneshot", fresh_base(), mnist, PruneSettings(**RETRAIN_BUDGET)))
    return _top1(result.model, mnist)


def _finetune_losses(result: MethodResult) -> list[float]:
    """Per-epoch losses of the labeled fine-tuning (the retraining baselines' 'finetune' phase, oneshot_ft's epochs)."""
    rows = [r for r in result.tables.get("train_log", []) if r["phase"] == "finetune"]
    return [r["loss"] for r in rows or result.tables["losses"]]


@pytest.mark.numerics
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", RETRAINING)
def test_retraining_beats_oneshot(name: str, fresh_base: Callable[[], torch.nn.Module], oneshot_top1: float,
                                  mnist: DataBundle) -> None:
    """From a removal that leaves the model near chance (0.1), fine-tuning with labels recovers most of the dense
    accuracy: its loss falls and top-1 ends far above both chance and the unrecovered model."""
    assert oneshot_top1 < 0.4, "the scenario needs a removal that costs most of the accuracy"
    torch.manual_seed(0)
    ctx = _context(name, fresh_base(), mnist, PruneSettings(**RETRAIN_BUDGET), RETRAIN_CALIBRATION)
    result = get_method(name).run(ctx)
    assert result.images_seen > 0 and result.epochs > 0
    losses = _finetune_losses(result)
    assert len(losses) >= 2 and losses[-1] < 0.8 * losses[0], losses
    top1 = _top1(result.model, mnist)
    assert top1 > 0.6 and top1 > oneshot_top1 + 0.4, (top1, oneshot_top1)


@pytest.mark.timeout(30)
def test_neuron_merging_reads_no_data(mnist: DataBundle) -> None:
    assert get_method("neuron_merging").uses == "none"
    ctx = _context("neuron_merging", create_model("resnet8_tiny", mnist.spec), mnist, PruneSettings(**TINY))
    assert ctx.data is None
    with pytest.raises(RuntimeError, match="uses='none'"):
        ctx.calibration()
    result = get_method("neuron_merging").run(ctx)
    assert result.images_seen == 0 and result.extra["channels_merged"] > 0


@pytest.mark.timeout(30)
def test_neuron_merging_chains(mnist: DataBundle) -> None:
    """Block-internal convs and VGG chains merge; channels of a residual stream have no single consumer."""
    resnet = create_model("resnet8_tiny", mnist.spec).eval()
    example = torch.zeros(1, 1, 28, 28)
    graph = build_graph(resnet, example)
    assert merge_chain(graph, resnet.layer1[0].conv1) == (resnet.layer1[0].bn1, resnet.layer1[0].conv2)
    assert merge_chain(graph, resnet.conv1) is None
    assert merge_chain(graph, resnet.layer2[0].conv2) is None
    vgg = create_model("vgg_tiny", mnist.spec).eval()
    graph = build_graph(vgg, example)
    assert merge_chain(graph, vgg.features[0]) == (vgg.features[1], vgg.features[4])  # across a max-pool
    assert merge_chain(graph, vgg.features[8]) == (vgg.features[9], vgg.classifier)  # across pooling and flatten


@torch.no_grad()
@pytest.mark.timeout(30)
def test_neuron_merging_is_exact_for_a_scaled_duplicate(mnist: DataBundle) -> None:
    """Channel 3 is 3× channel 5 after BatchNorm: merging it loses nothing; removing it alone does."""
    torch.manual_seed(0)
    dense = create_model("vgg_tiny", mnist.spec).eval()
    conv, bn = dense.features[0], dense.features[1]
    bn.weight.uniform_(0.5, 1.5)
    bn.bias.normal_()
    bn.running_mean.normal_(0, 0.1)
    bn.running_var.uniform_(0.5, 2.0)
    conv.weight[3] = conv.weight[5]
    bn.weight[3], bn.bias[3] = 3 * bn.weight[5], 3 * bn.bias[5]
    bn.running_mean[3], bn.running_var[3] = bn.running_mean[5], bn.running_var[5]
    example, selection = torch.zeros(1, 1, 28, 28), {"features.0": [3]}
    x = torch.randn(8, 1, 28, 28)

    merged = copy.deepcopy(dense)
    rows = merge_into_consumers(merged, selection, example)
    remove_channels(merged, selection, example)
    pruned = remove_channels(copy.deepcopy(dense), selection, example)
    assert rows == [{"root": "features.0", "consumer": "features.4", "removed": 1, "merged": 1,
                     "mean_cosine": pytest.approx(1.0)}]
    consumer_output = {m: m.features[:5](x) for m in (dense, merged, pruned)}  # up to and including features.4
    assert torch.allclose(consumer_output[merged], consumer_output[dense], atol=1e-5)
    assert not torch.allclose(consumer_output[pruned], consumer_output[dense], atol=1e-2)
    assert torch.allclose(merged(x), dense(x), atol=1e-5)


def _zero_grads(model: torch.nn.Module) -> None:
    for p in model.parameters():
        p.grad = torch.zeros_like(p)


@pytest.mark.timeout(30)
def test_greg_penalty_matches_torch_pruning(mnist: DataBundle) -> None:
    """Our growing penalty equals ``GrowingRegPruner.regularize`` with λ on the selected channels, 0 elsewhere."""
    torch.manual_seed(0)
    model = create_model("resnet18_cifar", mnist.spec, **tiny_options("resnet18_cifar")).eval()
    ctx = _context("oneshot", model, mnist, PruneSettings(ratio=0.3))
    selection, strength = ctx.select(), 0.37
    ours, theirs = copy.deepcopy(model), copy.deepcopy(model)
    pruner = tp.pruner.GrowingRegPruner(theirs, ctx.example, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                        reg=0.0, ignored_layers=[output_layer(theirs, ctx.example)],
                                        customized_pruners=CUSTOM_PRUNERS)
    names = {m: n for n, m in theirs.named_modules()}
    for group in pruner._groups:
        mask = torch.zeros(len(group[0].idxs))
        mask[selection.get(names[group[0].dep.target.module], [])] = 1.0
        pruner.group_reg[group] = strength * mask
    _zero_grads(ours)
    _zero_grads(theirs)
    GrowingPenalty(list(selected_slices(ours, selection, ctx.example)), strength, 1, 1)(ours, 0, 0)
    pruner.regularize(theirs)
    compared = 0
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        if p.dim() > 1:  # conv and linear weights (TP 1.6.1 updates BN scales on an indexed copy: a no-op)
            assert torch.allclose(p.grad, q.grad), name
            compared += int(p.grad.abs().sum() > 0)
    assert compared > 0


@pytest.mark.timeout(30)
def test_depgraph_regulariser_weighs_channels_by_group_importance(mnist: DataBundle) -> None:
    """DepGraph's sparse learning adds reg·γ·W per group, γ from 1 (most important channel of the group) to 16
    (least); a weight tied to two groups (its output channel's and its input channel's) gets both terms."""
    torch.manual_seed(0)
    model = create_model("resnet8_tiny", mnist.spec).eval()
    reg = 1e-3
    pruner = group_norm_regulariser(model, torch.zeros(1, 1, 28, 28), reg)
    _zero_grads(model)
    pruner.regularize(model)
    gamma = {n: m.weight.grad / (reg * m.weight) for n, m in model.named_modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
    stem = gamma.pop("conv1").flatten(1)  # reads the images: only its output group regularises it
    assert torch.allclose(stem, stem[:, :1].expand_as(stem), rtol=1e-4)
    assert stem.min().item() == pytest.approx(1.0, rel=1e-4) and stem.max().item() == pytest.approx(16.0, rel=1e-4)
    for name, g in gamma.items():
        assert g.min().item() >= 1 - 1e-4 and g.max().item() <= 32 + 1e-3, name
