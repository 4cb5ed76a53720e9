"""Structure coverage: every torchvision classifier and the named timm CNN families, pruned to a 2x MACs target with
random weights, or refused by ``psp.structure.support.check_prunable`` with the construct that stops it.

For each model (``outcome``): build it (random weights, 10 classes) at the smallest of ``SIZES`` it runs at, run the
support check (what ``psp train``/``psp prune`` run before any work), select 2x MACs with the shared selection rule
(L2 importance, global ranking, as ``psp prune --target-macs 2``), remove the channels from one copy, mask them in
another, and compare the two on random images. ``benchmarks/structure_coverage.py`` runs the matrix and writes the
README table; ``tests/test_coverage.py`` holds every member to its recorded outcome.
"""

import copy
import re
import time
from pathlib import Path

import torch

from psp.data.spec import DataSpec, example_input
from psp.errors import UsageError
from psp.metrics import count_macs
from psp.models import create_model
from psp.settings import PruneSettings
from psp.structure.removal import mask_channels, remove_channels
from psp.structure.selection import select_channels
from psp.structure.support import Unsupported, check_module_types, check_prunable

__all__ = ["README_END", "README_START", "SIZES", "TARGET", "TIMM_FAMILIES", "architecture", "markdown", "matrix",
           "outcome", "write_readme"]

TARGET = 2.0  # MACs reduction every member is pruned to
SIZES = (32, 64, 128, 224)  # image sizes tried, smallest first
TIMM_FAMILIES = {
    "ResNet / SE-ResNet": ["timm:resnet18", "timm:seresnet18"],
    "ResNeXt": ["timm:resnext26ts"],
    "RegNet": ["timm:regnetx_002", "timm:regnety_002"],
    "EfficientNet": ["timm:efficientnet_b0"],
    "MobileNetV3": ["timm:mobilenetv3_small_050", "timm:mobilenetv3_large_100"],
    "ConvNeXt": ["timm:convnext_atto"],
    "DenseNet": ["timm:densenet121"],
    "GhostNet": ["timm:ghostnet_100", "timm:ghostnetv2_100"],
    "RepVGG / VGG": ["timm:repvgg_a0", "timm:vgg11_bn"],
}
README_START, README_END = "<!-- coverage:start -->", "<!-- coverage:end -->"  # where the README's table goes


def _torchvision_models() -> list[str]:
    import torchvision

    return [f"tv:{n}" for n in torchvision.models.list_models(module=torchvision.models)]


def architecture(name: str) -> str:
    """The architecture family a member belongs to: its timm family, or a torchvision name's leading word
    (``tv:regnet_y_128gf`` -> ``regnet``), so that one small member can stand for the others in a quick check."""
    family = next((f for f, names in TIMM_FAMILIES.items() if name in names), None)
    if family is not None:
        return family
    base = name.split(":", 1)[1]
    return "wide_resnet" if base.startswith("wide_") else re.match(r"[a-z]+", base).group(0)


def matrix() -> list[tuple[str, str]]:
    """(family, model) for every member: all torchvision classifiers, then the named timm families."""
    rows = [("torchvision", name) for name in _torchvision_models()]
    return rows + [(family, name) for family, names in TIMM_FAMILIES.items() for name in names]


def _smallest_size(name: str, device: str = "cpu") -> tuple[torch.nn.Module, int]:
    """The model (random weights, seed 0; on ``meta``: shapes only) and the first of ``SIZES`` a blank image passes
    through it at (torchvision and timm models are built the same for every image size: built once, tried at each)."""
    torch.manual_seed(0)
    with torch.device(device):
        model = create_model(name, DataSpec("coverage", 3, SIZES[0], 10)).eval()
    for size in SIZES:
        try:
            with torch.no_grad():
                model(torch.zeros(1, 3, size, size, device=device))
            return model, size
        except Exception:  # too small for this architecture: try the next size
            continue
    raise UsageError(f"model {name} runs at none of the sizes {SIZES}")


def outcome(name: str) -> dict:
    """Prune ``name`` to ``TARGET`` and check removal == masking, or record the refusal. A model refused for a module
    it contains is refused from its shapes alone (built on the meta device: a ViT-H/14 costs no weights)."""
    start = time.perf_counter()
    try:
        blank, size = _smallest_size(name, "meta")
        check_module_types(blank, name)
    except Unsupported as e:
        return {"model": name, "size": size, "status": "refused", "reason": str(e),
                "seconds": time.perf_counter() - start}
    except Exception:  # an operation without a meta kernel: the full check below decides
        pass
    model, size = _smallest_size(name)
    example = example_input(DataSpec("coverage", 3, size, 10))
    result = {"model": name, "size": size}
    try:
        check_prunable(model, example, name)
    except Unsupported as e:
        return result | {"status": "refused", "reason": str(e), "seconds": time.perf_counter() - start}
    selection = select_channels(model, example, PruneSettings(target_macs=TARGET))
    masked = mask_channels(copy.deepcopy(model), selection, example).eval()
    pruned = remove_channels(copy.deepcopy(model), selection, example).eval()
    images = torch.randn((4, 3, size, size), generator=torch.Generator().manual_seed(0)).to(example.device)
    with torch.no_grad():
        expected, got = masked(images), pruned(images)
    difference = ((got - expected).abs().max() / expected.abs().max()).item()
    return result | {"status": "pruned", "reduction": count_macs(model, example) / count_macs(pruned, example),
                     "difference": difference, "seconds": time.perf_counter() - start}


def markdown(rows: list[dict]) -> str:
    """The outcomes as a Markdown table, one row per model (rows as ``outcome`` gives them, plus their family)."""
    lines = ["| family | model | input | outcome |", "| --- | --- | --- | --- |"]
    for r in rows:
        if r["status"] == "pruned":
            what = f"pruned: {r['reduction']:.3f}x MACs, removal == masking to {r['difference']:.0e}"
        else:
            what = "refused: " + r["reason"].split(": ", 1)[1].replace("|", "/")
        lines.append(f"| {r['family']} | `{r['model']}` | {r['size']} | {what} |")
    return "\n".join(lines)


def write_readme(readme: Path, rows: list[dict]) -> None:
    """Replace what lies between ``README_START`` and ``README_END`` in ``readme`` with a summary and the table."""
    text = readme.read_text()
    head, tail = text[:text.index(README_START)], text[text.index(README_END):]
    pruned = sum(r["status"] == "pruned" for r in rows)
    summary = (f"{pruned} of {len(rows)} models prune to {TARGET:g}x MACs with removal == masking; "
               f"{len(rows) - pruned} are refused before any work, naming the construct.")
    table = markdown(rows)
    readme.write_text(f"{head}{README_START}\n{summary}\n\n<details><summary>The matrix</summary>\n\n{table}\n\n"
                      f"</details>\n{tail}")
