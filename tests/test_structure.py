"""Structure: removing channels equals masking them (every architecture), selection by ratio and by target MACs,
the MACs cost model, and saving/loading pruned models safely."""

import copy
import io

import pytest
import torch
from torch import nn

from psp.checkpoint import load_model, read_checkpoint, save_model
from psp.data.spec import DataSpec
from psp.errors import UsageError
from psp.metrics import count_macs, count_params
from psp.models import ChannelPadShortcut, create_model, list_models, tiny_options
from psp.options import IMPORTANCES
from psp.structure.groups import channel_groups
from psp.structure.importance import score_groups
from psp.structure.removal import kept_outputs, mask_channels, remove_channels, selected_slices
from psp.structure.selection import CostModel, select_by_ratio, select_by_target_macs
from psp.structure.spec import apply_channel_spec, channel_spec

pytestmark = pytest.mark.timeout(240)

CIFAR = DataSpec("cifar10", 3, 32, 10)
MNIST = DataSpec("mnist5k", 1, 28, 10)
# Every registered model at its tiny width, and external ones with the constructs the structure rules handle:
# grouped convolutions, channel split + shuffle, LayerNorm over channels, tied channels (Ghost modules).
ARCHS = [*list_models(), "tv:resnet18", "tv:mobilenet_v2", "timm:resnet10t", "timm:mobilenetv3_small_050",
         "timm:regnetx_002", "tv:shufflenet_v2_x0_5", "timm:convnext_atto", "timm:ghostnet_050"]
SELECTIONS = [("global", 0.3), ("global", 0.7), ("uniform", 0.5)]


def conv_widths(model: nn.Module) -> dict[str, int]:
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


# --- the correctness invariant ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHS)
def test_removal_equals_masking(name, random_model):
    """For random valid selections, the model with channels removed computes exactly what the dense model
    computes when those channels are ignored by their consumers, and the cost model predicts its MACs."""
    model, x = random_model(name)
    groups = channel_groups(model, x)
    assert groups, "a CNN has prunable groups"
    cost = CostModel(model, x, groups)
    dense_macs, dense_params = count_macs(model, x), count_params(model)
    assert cost.dense == dense_macs
    with torch.no_grad():
        y_dense = model(x)
    units = {g.root: g.units for g in groups}
    for seed, (mode, ratio) in enumerate(SELECTIONS):
        selection = select_by_ratio(score_groups(groups, "random", seed), ratio, mode, units=units)
        assert selection
        removed = remove_channels(copy.deepcopy(model), selection, x).eval()
        masked = mask_channels(copy.deepcopy(model), selection, x).eval()
        with torch.no_grad():
            y_removed, y_masked = removed(x), masked(x)
        assert torch.isfinite(y_removed).all()
        assert max_rel_diff(y_removed, y_masked) <= 1e-4, (mode, ratio)
        assert max_rel_diff(y_masked, y_dense) > 1e-3, "the selection must change the function"
        assert count_params(removed) < dense_params
        measured = count_macs(removed, x)
        assert measured < dense_macs
        assert cost.macs(selection) == pytest.approx(measured, rel=1e-9)
        assert min(conv_widths(removed).values()) >= 1
        # the original is untouched
        with torch.no_grad():
            assert torch.equal(model(x), y_dense)


def test_removal_equals_masking_grey_input(random_model):
    """The invariant holds on 1-channel 28x28 inputs too (the embedded data shape)."""
    model, x = random_model("resnet8_tiny", MNIST, seed=5)
    groups = channel_groups(model, x)
    selection = select_by_ratio(score_groups(groups, "random", 5), 0.5)
    removed = remove_channels(copy.deepcopy(model), selection, x).eval()
    masked = mask_channels(copy.deepcopy(model), selection, x).eval()
    with torch.no_grad():
        assert max_rel_diff(removed(x), masked(x)) <= 1e-4


def test_option_a_shortcut_maps_follow_removal(random_model):
    """Removing channels on either side of an option-A shortcut edits its map consistently with its widths."""
    model, x = random_model("resnet20", width=8)
    selection = select_by_ratio(score_groups(channel_groups(model, x), "random", 1), 0.5)
    remove_channels(model, selection, x)
    shortcuts = [m for m in model.modules() if isinstance(m, ChannelPadShortcut)]
    assert len(shortcuts) == 2
    changed = 0
    for s in shortcuts:
        assert len(s.src) == len(s.dst) <= s.in_channels
        assert s.src.max() < s.in_channels and s.dst.max() < s.out_channels
        assert len(set(s.dst.tolist())) == len(s.dst)
        changed += (s.in_channels, s.out_channels) != (8, 16) and (s.in_channels, s.out_channels) != (16, 32)
    assert changed


# --- importance and selection ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vgg(random_model):
    model, x = random_model("vgg_tiny", MNIST, seed=2)
    return model, x, channel_groups(model, x)


def test_groups_exclude_classifier(vgg):
    """Groups are rooted at the convolutions; the classifier's outputs are never prunable."""
    _, _, groups = vgg
    assert sorted((g.root, g.size) for g in groups) == [("features.0", 8), ("features.4", 16), ("features.8", 32)]


@pytest.mark.parametrize("importance", IMPORTANCES)
def test_scores_cover_every_channel(vgg, importance):
    """Every importance gives one finite score per channel of every group."""
    _, _, groups = vgg
    scores = score_groups(groups, importance, seed=0)
    assert set(scores) == {g.root for g in groups}
    for g in groups:
        assert scores[g.root].shape == (g.size,) and torch.isfinite(scores[g.root]).all()


def test_random_importance_is_seeded(vgg):
    """The random control is reproducible per seed and changes with it."""
    _, _, groups = vgg
    a, b, c = (score_groups(groups, "random", s) for s in (4, 4, 5))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("importance", ["l2", "l1", "l2_sum"])
def test_magnitude_ranking_removes_dead_channel(importance, random_model):
    """A channel whose weights are all zero scores lowest and is the first one removed."""
    model, x = random_model("vgg_tiny", MNIST, seed=3)
    with torch.no_grad():
        model.features[0].weight[5] = 0
        model.features[1].weight[5] = 0
        model.features[1].bias[5] = 0
        model.features[4].weight[:, 5] = 0
    groups = channel_groups(model, x)
    scores = score_groups(groups, importance)
    assert int(scores["features.0"].argmin()) == 5
    assert select_by_ratio(scores, 1 / 56) == {"features.0": [5]}


def test_select_by_ratio_counts(vgg):
    """Global removes ratio x all channels, uniform ratio x each group; indices are sorted and valid."""
    _, _, groups = vgg
    scores = score_groups(groups, "random", 1)
    sel = select_by_ratio(scores, 0.5, "global")
    assert sum(len(v) for v in sel.values()) == 28
    sel = select_by_ratio(scores, 0.5, "uniform")
    assert {k: len(v) for k, v in sel.items()} == {"features.0": 4, "features.4": 8, "features.8": 16}
    for root, idxs in sel.items():
        assert idxs == sorted(set(idxs)) and all(0 <= i < len(scores[root]) for i in idxs)
        lowest = torch.argsort(scores[root])[:len(idxs)].tolist()
        assert sorted(lowest) == idxs


def test_select_by_ratio_min_channels_and_round_to(vgg):
    """min_keep and round_to bound the kept widths of every group."""
    _, _, groups = vgg
    scores = score_groups(groups, "random", 2)
    sizes = {g.root: g.size for g in groups}
    sel = select_by_ratio(scores, 0.95, "global", min_keep=3)
    assert all(sizes[r] - len(v) >= 3 for r, v in sel.items())
    sel = select_by_ratio(scores, 0.4, "uniform", round_to=4)
    assert all((sizes[r] - len(v)) % 4 == 0 for r, v in sel.items())


@pytest.mark.parametrize("ratio", [-0.1, 0.0, 1.0, 1.5, float("nan")])
def test_select_by_ratio_rejects(vgg, ratio):
    """A ratio outside the open interval (0, 1) is a usage error."""
    scores = score_groups(vgg[2], "random")
    with pytest.raises(UsageError):
        select_by_ratio(scores, ratio)


def test_selection_rejects_unknown_names(vgg):
    """Unknown importance and selection mode are usage errors."""
    _, x, groups = vgg
    with pytest.raises(UsageError):
        score_groups(groups, "l3")
    scores = score_groups(groups, "random")
    with pytest.raises(UsageError):
        select_by_ratio(scores, 0.5, "layerwise")
    with pytest.raises(UsageError):
        select_by_target_macs(scores, CostModel(vgg[0], x, groups), 2.0, "layerwise")


@pytest.mark.parametrize("target", [1.0, 0.5, 0.0, -2.0, float("nan"), 1e6])
def test_select_by_target_macs_rejects(vgg, target):
    """Targets that are not a reduction, and unreachable ones, are usage errors."""
    model, x, groups = vgg
    scores = score_groups(groups, "l2")
    with pytest.raises(UsageError):
        select_by_target_macs(scores, CostModel(model, x, groups), target)


@pytest.fixture(scope="module", params=["resnet56", "vgg19_cifar"])
def full_width(request):
    """Full-width models: selection is analytic and cheap; only removal touches them."""
    torch.manual_seed(0)
    model = create_model(request.param, CIFAR).eval()
    x = torch.zeros(1, 3, 32, 32)
    groups = channel_groups(model, x)
    return request.param, model, x, groups, CostModel(model, x, groups)


@pytest.mark.parametrize("target", [1.5, 2.0, 3.0])
@pytest.mark.parametrize(("importance", "mode"), [("l2", "global"), ("random", "global"), ("l2", "uniform")])
def test_target_macs_is_met(full_width, target, importance, mode):
    """Measured MACs after removal hit 1/target of the dense MACs within +-2 %, equal the cost model's
    prediction, and no conv loses all its channels."""
    name, model, x, groups, cost = full_width
    dense = count_macs(model, x)
    assert cost.dense == dense
    selection = select_by_target_macs(score_groups(groups, importance, 0), cost, target, mode)
    pruned = remove_channels(copy.deepcopy(model), selection, x)
    measured = count_macs(pruned, x)
    assert dense / measured == pytest.approx(target, rel=0.02), (name, dense / measured)
    assert cost.macs(selection) == pytest.approx(measured, rel=1e-9)
    assert min(conv_widths(pruned).values()) >= 1
    sizes = {g.root: g.size for g in groups}
    assert all(len(v) < sizes[r] for r, v in selection.items())


def test_target_macs_respects_min_channels(full_width):
    """A high target with min_keep keeps at least that many channels per group."""
    _, model, x, groups, cost = full_width
    selection = select_by_target_macs(score_groups(groups, "l2"), cost, 4.0, min_keep=4)
    sizes = {g.root: g.size for g in groups}
    assert all(sizes[r] - len(v) >= 4 for r, v in selection.items())


# --- addressing selected weights -------------------------------------------------------------------------------


def test_selected_slices_and_kept_outputs(random_model):
    """The weights tied to selected channels are the producer's rows, the BN scales and the consumer's columns;
    the surviving outputs are the complement."""
    model, x = random_model("vgg_tiny", MNIST)
    selection = {"features.0": [1, 3]}
    found = {(id(w), dim, tuple(idx.tolist())) for w, dim, idx in selected_slices(model, selection, x)}
    expected = {(id(model.features[0].weight), 0, (1, 3)), (id(model.features[1].weight), 0, (1, 3)),
                (id(model.features[4].weight), 1, (1, 3))}
    assert found == expected
    kept = kept_outputs(model, selection, x)
    assert set(kept) == {"features.0", "features.1"}
    assert kept["features.0"].tolist() == [0, 2, 4, 5, 6, 7] == kept["features.1"].tolist()


# --- saving and loading pruned models --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet20", "vgg_tiny", "resnet18_cifar", "tv:shufflenet_v2_x0_5",
                                  "timm:regnetx_002", "timm:convnext_atto", "timm:mobilenetv3_small_050"])
def test_pruned_round_trip(tmp_path, name, random_model):
    """A pruned model saved as name + channel spec + state dict reloads alone with identical outputs."""
    kwargs = tiny_options(name)
    model, x = random_model(name, seed=7)
    groups = channel_groups(model, x)
    selection = select_by_ratio(score_groups(groups, "random", 7), 0.5, units={g.root: g.units for g in groups})
    pruned = remove_channels(model, selection, x).eval()
    save_model(tmp_path / "model.pt", pruned, name, CIFAR, "cifar10", kwargs, "cifar10")
    loaded = load_model(tmp_path / "model.pt")
    assert (loaded.name, loaded.normalize, loaded.model_kwargs, loaded.data_arg) == (name, "cifar10", kwargs,
                                                                                     "cifar10")
    assert channel_spec(loaded.model) == channel_spec(pruned)
    loaded.model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.model(x), pruned(x))
    assert count_macs(loaded.model, x) == count_macs(pruned, x)


def test_channel_spec_rebuilds_widths(random_model):
    """apply_channel_spec turns a dense model into the pruned shape: the layers' widths from the spec, the tensors'
    shapes from the state dict it will load."""
    model, x = random_model("resnet20", width=8)
    pruned = remove_channels(copy.deepcopy(model), select_by_ratio(
        score_groups(channel_groups(model, x), "random", 3), 0.6), x)
    shapes = {k: v.shape for k, v in pruned.state_dict().items()}
    fresh = apply_channel_spec(create_model("resnet20", CIFAR, width=8), channel_spec(pruned), shapes)
    assert conv_widths(fresh) == conv_widths(pruned)
    fresh.load_state_dict(pruned.state_dict())
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), pruned.eval()(x))


def test_load_uses_weights_only(tmp_path, monkeypatch, random_model):
    """Checkpoints are read with torch.load(weights_only=True), never by unpickling code."""
    model, _ = random_model("vgg_tiny", MNIST)
    save_model(tmp_path / "m.pt", model, "vgg_tiny", MNIST, "mnist")
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_model(tmp_path / "m.pt")
    assert calls == [True]


class _Exploit:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def test_pickled_code_is_refused(tmp_path):
    """A checkpoint carrying a pickled callable is refused as bad input and its code never runs."""
    marker = tmp_path / "pwned"
    model = create_model("vgg_tiny", MNIST)
    torch.save({"state_dict": model.state_dict(), "hook": _Exploit(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UsageError, match="evil.pt"):
        load_model(tmp_path / "evil.pt", "vgg_tiny", MNIST)
    assert not marker.exists()


@pytest.mark.parametrize("content", ["half", "empty", "text_hello", "text_sentence", "csv"])
def test_unreadable_checkpoints_are_usage_errors(tmp_path, content):
    """Truncated files and files that are not checkpoints at all are usage errors, not crashes."""
    path = tmp_path / "ck.pt"
    if content == "half":
        buffer = io.BytesIO()
        torch.save(create_model("vgg_tiny", MNIST).state_dict(), buffer)
        path.write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    else:
        path.write_text({"empty": "", "text_hello": "hello\n", "text_sentence": "this is not a checkpoint\n",
                         "csv": "a,b,c\n1,2,3\n"}[content])
    with pytest.raises(UsageError, match="ck.pt"):
        read_checkpoint(path)
    with pytest.raises(UsageError):
        load_model(path, "vgg_tiny", MNIST)


def test_foreign_channel_spec_is_usage_error(tmp_path):
    """An own-format checkpoint whose channel spec names layers the model lacks is a usage error."""
    model = create_model("vgg_tiny", MNIST)
    save_model(tmp_path / "m.pt", model, "vgg_tiny", MNIST, "mnist")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["channels"]["layer9.conv1"] = {"in": 1, "out": 1, "groups": 1}
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(UsageError):
        load_model(tmp_path / "bad.pt")


# --- units: channels that go together ----------------------------------------------------------------------------


def test_grouped_convolution_units_span_every_block(random_model):
    """A grouped conv's input group goes in units of one position per block, and a selection keeps every block the
    same width (what the grouped conv needs to stay valid)."""
    model, x = random_model("timm:regnetx_002")
    groups = channel_groups(model, x)
    grouped = [g for g in groups if len(g.units[0]) > 1]
    assert grouped, "RegNetX has grouped convolutions"
    for g in grouped:
        blocks = len(g.units[0])
        per_block = g.size // blocks
        assert sorted(c for u in g.units for c in u) == list(range(g.size))
        assert all(sorted(c % per_block for c in u) == [u[0] % per_block] * blocks for u in g.units)
    selection = select_by_ratio(score_groups(groups, "l2"), 0.4, units={g.root: g.units for g in groups})
    for g in grouped:
        removed = selection.get(g.root, [])
        per_block = g.size // len(g.units[0])
        counts = [sum(1 for c in removed if c // per_block == b) for b in range(len(g.units[0]))]
        assert len(set(counts)) == 1


def test_ghost_modules_tie_channel_pairs(random_model):
    """A Ghost module's output is a conv's channels followed by their depthwise transforms; where it feeds a
    residual stream, stream channels c and c + half go together."""
    model, x = random_model("timm:ghostnet_050")
    tied = [g for g in channel_groups(model, x) if len(g.units[0]) == 2]
    assert tied
    for g in tied:
        assert all(u[1] - u[0] == g.size // 2 for u in g.units)


def test_cost_model_is_exact_through_splits(random_model):
    """Through ShuffleNet's split, a group's channels reach different layers: the cost model counts each removed
    channel where it actually goes, so any selection's MACs are predicted exactly."""
    model, x = random_model("tv:shufflenet_v2_x0_5")
    groups = channel_groups(model, x)
    cost = CostModel(model, x, groups)
    for seed in range(3):
        selection = select_by_ratio(score_groups(groups, "random", seed), 0.5, "uniform")
        pruned = remove_channels(copy.deepcopy(model), selection, x)
        assert cost.macs(selection) == pytest.approx(count_macs(pruned, x), rel=1e-9)


def test_target_selection_never_empties_a_layer(random_model):
    """ShuffleNet's pass-through channels come from several groups: a target high enough to empty a tensor while
    every group keeps channels is refused by the search, so every conv keeps inputs and outputs."""
    model, x = random_model("tv:shufflenet_v2_x0_5")
    groups = channel_groups(model, x)
    selection = select_by_target_macs(score_groups(groups, "l2"), CostModel(model, x, groups), 4.0)
    pruned = remove_channels(copy.deepcopy(model), selection, x).eval()
    assert min(min(m.in_channels, m.out_channels) for m in pruned.modules() if isinstance(m, nn.Conv2d)) >= 1
    with torch.no_grad():
        assert torch.isfinite(pruned(x)).all()


def test_ratio_selection_that_empties_a_layer_is_refused(random_model):
    """By ratio, ShuffleNet's pass-through tensor can lose every channel while each group keeps some: the shared
    selection rule refuses in one line naming the layer, and the cost model finds it."""
    from psp.methods import PruneContext
    from psp.settings import PruneSettings

    model, x = random_model("tv:shufflenet_v2_x0_5")
    groups = channel_groups(model, x)
    cost = CostModel(model, x, groups)
    scores = score_groups(groups, "l2")
    emptying = [r for r in (0.7, 0.8, 0.9) if cost.emptied(select_by_ratio(scores, r))]
    assert emptying, "some global ratio empties a ShuffleNet layer"
    assert cost.emptied(select_by_ratio(scores, 0.2)) is None
    ctx = PruneContext.build(model, CIFAR, PruneSettings(ratio=emptying[0]), normalize="none", uses="none")
    with pytest.raises(UsageError, match=r"would remove every channel of layer \S+; use a lower ratio"):
        ctx.select()
