"""Models: every architecture builds for every data shape, option-A ResNets match the public reference
implementation (and its checkpoint format loads), and a short training run learns."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from psp.checkpoint import load_model, save_model
from psp.data.spec import DataSpec
from psp.errors import UsageError
from psp.models import ChannelPadShortcut, create_model, default_normalization, is_model, list_models, tiny_options

pytestmark = pytest.mark.timeout(180)

SPECS = {
    "mnist5k": DataSpec("mnist5k", 1, 28, 10),
    "cifar10": DataSpec("cifar10", 3, 32, 10),
    "cifar100": DataSpec("cifar100", 3, 32, 100),
}
# The architectures the suite documents (a new one needs a test here); each is built at its registered tiny width.
BUILTIN = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet18_cifar", "resnet50_cifar",
           "vgg19_cifar", "resnet8_tiny", "vgg_tiny"]


def test_registry_lists_every_builtin():
    """The registry must offer exactly the architectures the suite documents (a new one needs a test here)."""
    assert list_models() == sorted(BUILTIN)
    assert list_models("resnet*") == sorted(n for n in BUILTIN if n.startswith("resnet"))
    assert is_model("resnet20") and not is_model("resnet21")
    assert is_model("tv:resnet18") and not is_model("tv:no_such_net")
    assert is_model("timm:resnet18") and not is_model("timm:no_such_net")


@pytest.mark.parametrize("name", sorted(BUILTIN))
@pytest.mark.parametrize("data", sorted(SPECS))
def test_forward_every_architecture(name, data):
    """Each registered model builds from a data spec and maps a batch to finite logits of the right shape."""
    spec = SPECS[data]
    torch.manual_seed(0)
    model = create_model(name, spec, **tiny_options(name))
    x = torch.randn(2, spec.in_channels, spec.image_size, spec.image_size)
    model.train()
    assert model(x).shape == (2, spec.num_classes)
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, spec.num_classes)
    assert torch.isfinite(out).all()
    assert out.std() > 0


@pytest.mark.parametrize("name", ["tv:resnet18", "timm:resnet18", "tv:mobilenet_v2"])
@pytest.mark.parametrize("data", ["mnist5k", "cifar100"])
def test_external_models_build(name, data):
    """torchvision and timm models build with random weights for grey and colour inputs and any class count."""
    spec = SPECS[data]
    torch.manual_seed(0)
    model = create_model(name, spec).eval()
    with torch.no_grad():
        out = model(torch.randn(2, spec.in_channels, spec.image_size, spec.image_size))
    assert out.shape == (2, spec.num_classes) and torch.isfinite(out).all()
    assert default_normalization(name) == "imagenet"


def test_pretrained_torchvision_needs_1000_classes(monkeypatch):
    """Asking for pretrained weights with another class count is refused before any download."""
    import torchvision

    def no_download(*a, **k):
        raise AssertionError("tried to fetch weights")

    monkeypatch.setattr(torchvision.models, "get_model", no_download)
    with pytest.raises(UsageError):
        create_model("tv:resnet18", SPECS["cifar10"], pretrained=True)


@pytest.mark.parametrize(("name", "kwargs"), [("no_such_model", {}), ("tv:no_such_net", {}),
                                              ("timm:no_such_net", {}), ("resnet20", {"width_mult": 0.5}),
                                              ("vgg_tiny", {"width": 3})])
def test_create_model_rejects(name, kwargs):
    """Unknown names and options a builder does not take are usage errors."""
    with pytest.raises(UsageError):
        create_model(name, SPECS["cifar10"], **kwargs)


def test_none_kwargs_are_dropped():
    """Options left unset on the command line (None) never override a builder default."""
    model = create_model("resnet20", SPECS["cifar10"], width=None)
    assert model.conv1.out_channels == 16


def test_option_a_layout():
    """resnet20 has the reference size (0.27 M parameters) and parameter-free option-A shortcuts."""
    model = create_model("resnet20", SPECS["cifar10"])
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == sum(p.numel() for p in RefResNet((3, 3, 3)).parameters()) == 269722
    shortcuts = [m for m in model.modules() if isinstance(m, ChannelPadShortcut)]
    assert len(shortcuts) == 2
    assert all(not list(s.parameters()) for s in shortcuts)
    assert not any("shortcut" in k for k in model.state_dict())
    with pytest.raises(ValueError):
        ChannelPadShortcut(8, 4)


# --- the public reference implementation (akamaster/pytorch_resnet_cifar10, BSD-2-Clause) --------------------


class LambdaLayer(nn.Module):
    def __init__(self, lambd):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return self.lambd(x)


class RefBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4),
                                                        "constant", 0))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class RefResNet(nn.Module):
    def __init__(self, num_blocks, num_classes=10):
        super().__init__()
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(32, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(64, num_blocks[2], stride=2)
        self.linear = nn.Linear(64, num_classes)

    def _make_layer(self, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(RefBasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        return self.linear(out.view(out.size(0), -1))


def _randomise(model: nn.Module, seed: int) -> None:
    """Random weights and BatchNorm statistics, so that outputs depend on every tensor of the state dict."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / m.weight[0].numel()) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.mark.parametrize(("name", "blocks", "classes"), [("resnet20", (3, 3, 3), 10), ("resnet32", (5, 5, 5), 100)])
def test_option_a_matches_reference_checkpoint(tmp_path, name, blocks, classes):
    """A public-format checkpoint ({'state_dict': {'module.' + key}}, no BN step counters) loads into our
    option-A ResNet, which then reproduces the reference implementation output for output."""
    ref = RefResNet(blocks, classes)
    _randomise(ref, seed=1)
    ref.eval()
    state = {"module." + k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / f"{name}.th"
    torch.save({"epoch": 200, "best_prec1": 91.7, "state_dict": state}, path)

    spec = DataSpec("cifar", 3, 32, classes)
    loaded = load_model(path, name, spec)
    assert loaded.normalize == "imagenet" and loaded.name == name
    ours = loaded.model.eval()
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    x28 = torch.randn(4, 3, 28, 28, generator=torch.Generator().manual_seed(3))  # the pool sees a 7x7 map
    for inputs in (x, x28):
        with torch.no_grad():
            expected, got = ref(inputs), ours(inputs)
        assert expected.std() > 0.1
        assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()
    with torch.no_grad():
        fresh = create_model(name, spec).eval()(x)
    assert (fresh - ref(x)).abs().max() > 1e-2 * ref(x).abs().max(), "comparison must depend on the weights"


def test_foreign_checkpoint_plain_state_dict(tmp_path):
    """A plain state dict (with BN step counters) loads too, and keeps the values exactly."""
    torch.manual_seed(3)
    source = create_model("vgg_tiny", SPECS["cifar10"])
    _randomise(source, seed=3)
    torch.save(source.state_dict(), tmp_path / "plain.pt")
    loaded = load_model(tmp_path / "plain.pt", "vgg_tiny", SPECS["cifar10"])
    for k, v in source.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v), k


@pytest.mark.parametrize("case", ["other_arch", "other_classes", "no_name", "no_tensors", "not_a_dict"])
def test_foreign_checkpoint_rejected(tmp_path, case):
    """A checkpoint that does not fit the named model is a usage error naming the problem."""
    path = tmp_path / "ck.pt"
    tiny = create_model("resnet8_tiny", SPECS["mnist5k"])
    name, spec = "resnet20", SPECS["mnist5k"]
    if case == "other_classes":
        name, spec = "resnet8_tiny", SPECS["cifar100"]
    if case == "no_tensors":
        torch.save({"state_dict": {"a": 1}}, path)
    elif case == "not_a_dict":
        torch.save([torch.zeros(1)], path)
    else:
        torch.save(tiny.state_dict(), path)
    if case == "no_name":
        name = spec = None
    with pytest.raises(UsageError, match=str(path.name)):
        load_model(path, name, spec)


def test_own_checkpoint_checks_name_and_data(tmp_path):
    """An own model.pt refuses another model name or another data shape."""
    model = create_model("vgg_tiny", SPECS["mnist5k"])
    save_model(tmp_path / "m.pt", model, "vgg_tiny", SPECS["mnist5k"], "mnist", data_arg="mnist5k")
    loaded = load_model(tmp_path / "m.pt")
    assert (loaded.name, loaded.normalize, loaded.data_arg, loaded.data) == ("vgg_tiny", "mnist", "mnist5k",
                                                                           SPECS["mnist5k"])
    assert load_model(tmp_path / "m.pt", normalize="none").normalize == "none"
    with pytest.raises(UsageError, match="vgg_tiny"):
        load_model(tmp_path / "m.pt", "resnet20")
    with pytest.raises(UsageError):
        load_model(tmp_path / "m.pt", data=SPECS["cifar10"])


@pytest.mark.numerics
def test_short_training_learns(trained):
    """A few epochs on mnist5k must learn far beyond chance (0.1) and record what was run."""
    m = trained.metrics
    assert m["top1"] > 0.5, m["top1"]
    assert m["top5"] >= m["top1"]
    assert m["model"] == "resnet8_tiny" and m["data"] == "mnist5k" and m["normalize"] == "mnist"
    assert m["final_loss"] < 2.0
    assert (trained.dir / "train_log.csv").read_text().count("\n") == 1 + m["epochs"]
    loaded = load_model(trained.checkpoint)
    assert loaded.data_arg == "mnist5k" and loaded.name == "resnet8_tiny"


def test_training_is_seeded(tmp_path):
    """The same seed trains the same weights; the loss is finite."""
    from psp.data.datasets import TensorImages
    from psp.data.normalization import normalizer
    from psp.train import TrainSettings, train_model

    g = torch.Generator().manual_seed(0)
    data = TensorImages((torch.rand(96, 1, 28, 28, generator=g) * 255).to(torch.uint8),
                        torch.randint(0, 10, (96,), generator=g))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = create_model("vgg_tiny", SPECS["mnist5k"])
        history = train_model(model, data, normalizer("mnist", 1), TrainSettings(epochs=2, batch_size=32), 0, "cpu")
        runs.append((history, model.state_dict()))
    assert runs[0][0] == runs[1][0] and len(runs[0][0]) == 2
    assert all(torch.equal(v, runs[1][1][k]) for k, v in runs[0][1].items())


def test_training_resumes_from_its_epoch_state(tmp_path):
    """A run killed after epoch 1 resumes from the saved state and ends with the weights of an uninterrupted run;
    a state saved with other settings is ignored."""
    from psp.data.datasets import TensorImages
    from psp.data.normalization import normalizer
    from psp.train import TrainSettings, train_model

    g = torch.Generator().manual_seed(0)
    data = TensorImages((torch.rand(96, 1, 28, 28, generator=g) * 255).to(torch.uint8),
                        torch.randint(0, 10, (96,), generator=g))
    norm, state = normalizer("mnist", 1), tmp_path / "state.pt"

    def train(hook=None, path=state, epochs=3) -> tuple[list[dict], dict]:
        torch.manual_seed(0)
        model = create_model("vgg_tiny", SPECS["mnist5k"])
        history = train_model(model, data, norm, TrainSettings(epochs=epochs, batch_size=32), 0, "cpu",
                              gradient_hook=hook, state_path=path)
        return history, model.state_dict()

    def killed_in_epoch_2(model, epoch, step):
        if epoch == 1:
            raise KeyboardInterrupt

    whole = train(path=None)
    with pytest.raises(KeyboardInterrupt):
        train(killed_in_epoch_2)
    assert torch.load(state, weights_only=True)["epoch"] == 1
    resumed = train()
    assert resumed[0] == whole[0] and len(resumed[0]) == 3
    assert all(torch.equal(v, resumed[1][k]) for k, v in whole[1].items())
    assert len(train(epochs=1)[0]) == 1  # the 3-epoch state does not fit a 1-epoch run: trained afresh
