"""Neuron Merging: each removed filter is merged into its most similar kept filter, with no data at all.

Kim, Ahn, Kim, "Neuron Merging: Compensating for Pruned Neurons", NeurIPS 2020 (arXiv:2010.13160); code followed:
github.com/friendshipkim/neuron-merging (``decompose.py``, ``create_scaling_mat_conv_thres_bn``; scripts use
``--threshold 0.1 --lamda 0.85``).

Idea: when a removed filter's response is (close to) a positive multiple z of a kept filter's response, then,
since ReLU is positively homogeneous, ``ReLU(a_removed) ≈ z · ReLU(a_kept)``, and the next layer loses nothing if
z times the removed channel's input weights are added to the kept channel's input weights.

How it is done here, for a conv whose removed output channels reach one consumer through
``[BatchNorm] → ReLU → [max/average pooling, flatten]`` (conv1 → conv2 inside a ResNet basic block, a VGG chain,
the last VGG conv into the classifier):
- BatchNorm is folded into the filters: with ``s = γ / sqrt(running_var + eps)``, the channel's pre-activation is
  ``s·w·x + (β − s·μ)``; similarity and scale use the BN-scaled filter ``s·w`` and the folded bias ``β − s·μ``.
- For each removed filter r and each kept filter k: ``cos(s_r w_r, s_k w_k)``, the scale
  ``z = ||s_r w_r|| / ||s_k w_k||`` (= ``||w_r||/||w_k|| · (γ_r/σ_r)/(γ_k/σ_k)``), and the bias mismatch
  ``|b_r − z·b_k| / z``. As in the release, the partner minimises ``λ·(1 − cos) + (1 − λ)·mismatch`` (mismatch
  min-max normalised over the candidates, λ = 0.85), and the merge is skipped when its cosine is below 0.1.
- The consumer's input weights of the partner grow by z times those of the removed channel, then the selected
  channels are removed as by every other method.

Choices and deviations (the paper is silent or the release differs):
- Which channels go is the suite's shared rule (``PruneContext.select``), as for every post-training method; the
  release uses per-layer ratios with an L1/L2/geometric-median criterion, pruning only inside residual blocks.
- Groups whose channels are tied by residual additions or reach several consumers (no single chain) are pruned
  without merging: a removed channel of a residual stream has no single next layer to compensate in.
- The release computes cosine similarity on the raw filters and its BN scale is
  ``||w_r||/||w_k|| · (γ_k/γ_r) · (var_r/var_k)``: γ and σ ratios inverted relative to the derivation above and the
  running *variance* used where σ appears. Here the derivation is followed (the merge is exact when the folded
  filters and biases are proportional; a test checks it). Folding BN into the similarity also prevents merging
  into a partner whose γ has the opposite sign (z must be positive for ReLU).
- No fine-tuning follows (the paper's "without fine-tuning" setting); no data is read: ``images_seen`` is 0.

Own code (Torch-Pruning has no merging); the chain is read from Torch-Pruning's dependency graph.
"""

import copy

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning import ops

from psp.methods import MethodResult, PruneContext, register_method, with_bn_recalibration
from psp.structure.groups import build_graph
from psp.structure.removal import remove_channels
from psp.structure.selection import Selection

NAME = "neuron_merging"
THRESHOLD = 0.1  # minimum cosine similarity to merge (released scripts: --threshold 0.1)
LAMBDA = 0.85  # weight of the cosine distance against the bias mismatch (released scripts: --lamda 0.85)
_HOMOGENEOUS = {"MaxPool2DWithIndicesBackward0", "AvgPool2DBackward0", "AdaptiveAvgPool2DBackward0",
                "MeanBackward1", "AdaptiveMaxPool2DWithIndicesBackward0"}  # f(z·x) = z·f(x), channel by channel

Merge = tuple[int, int, float, float]  # removed channel, kept partner, scale z, cosine similarity


def merge_chain(graph: tp.DependencyGraph, producer: nn.Module) -> tuple[nn.BatchNorm2d | None, nn.Module] | None:
    """``(bn, consumer)`` when ``producer``'s output reaches exactly one conv/linear layer through
    ``[BatchNorm] → ReLU → [pooling, flatten]`` and nothing else; None otherwise."""
    if not isinstance(producer, nn.Conv2d) or producer.groups != 1:
        return None
    node, bn, relu = graph.module2node[producer], None, False
    while True:
        outputs = list(dict.fromkeys(node.outputs))
        if len(outputs) != 1:
            return None
        node = outputs[0]
        if node.type in (ops.OPTYPE.CONV, ops.OPTYPE.LINEAR):
            consumer = node.module
            if isinstance(consumer, nn.Conv2d) and consumer.groups == 1:
                return bn, consumer
            if isinstance(consumer, nn.Linear) and consumer.in_features == producer.out_channels:
                return bn, consumer
            return None
        if node.type == ops.OPTYPE.BN and bn is None and not relu and isinstance(node.module, nn.BatchNorm2d):
            bn = node.module
        elif node.type == ops.OPTYPE.ELEMENTWISE and type(node.grad_fn).__name__ == "ReluBackward0" and not relu:
            relu = True
        elif relu and (node.type == ops.OPTYPE.RESHAPE or (node.type == ops.OPTYPE.ELEMENTWISE and
                                                           type(node.grad_fn).__name__ in _HOMOGENEOUS)):
            continue
        else:
            return None


def folded(producer: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Filters and biases of ``producer`` with the following BatchNorm (eval statistics) folded in."""
    w = producer.weight.detach().flatten(1)
    b = producer.bias.detach() if producer.bias is not None else w.new_zeros(len(w))
    if bn is None:
        return w, b
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    return w * scale[:, None], bn.bias.detach() + scale * (b - bn.running_mean)


def merge_plan(w: torch.Tensor, b: torch.Tensor, removed: list[int], kept: list[int]) -> list[Merge]:
    """``(removed, partner, z, cosine)`` for every removed filter that merges into a kept one."""
    wk, bk = w[kept], b[kept]
    norms = wk.norm(dim=1).clamp_min(1e-12)
    plan = []
    for r in removed:
        cos = (wk @ w[r]) / (norms * w[r].norm().clamp_min(1e-12))
        z = w[r].norm() / norms
        mismatch = (b[r] - z * bk).abs() / z.clamp_min(1e-12)
        spread = mismatch.max() - mismatch.min()
        mismatch = (mismatch - mismatch.min()) / spread if spread > 0 else torch.zeros_like(mismatch)
        best = int(torch.argmin(LAMBDA * (1 - cos) + (1 - LAMBDA) * mismatch))
        if cos[best] >= THRESHOLD:
            plan.append((r, kept[best], float(z[best]), float(cos[best])))
    return plan


@torch.no_grad()
def merge_into_consumers(model: nn.Module, selection: Selection, example: torch.Tensor) -> list[dict]:
    """Add each mergeable removed channel's consumer weights, scaled, to its partner's (before removal)."""
    graph = build_graph(model, example)
    names = {m: n for n, m in model.named_modules()}
    rows = []
    for root, idxs in selection.items():
        producer = model.get_submodule(root)
        chain = merge_chain(graph, producer) if idxs else None
        if chain is None:
            rows.append({"root": root, "consumer": None, "removed": len(idxs), "merged": 0, "mean_cosine": None})
            continue
        bn, consumer = chain
        w, b = folded(producer, bn)
        gone = set(idxs)
        plan = merge_plan(w, b, list(idxs), [c for c in range(len(w)) if c not in gone])
        for r, k, z, _ in plan:
            consumer.weight[:, k] += z * consumer.weight[:, r]
        rows.append({"root": root, "consumer": names[consumer], "removed": len(idxs), "merged": len(plan),
                     "mean_cosine": sum(p[3] for p in plan) / len(plan) if plan else None})
    return rows


@register_method(NAME, uses="none", family="post-training",
                 summary="Kim et al. 2020: merge each removed filter into its most similar kept filter, no data")
def run_neuron_merging(ctx: PruneContext) -> MethodResult:
    selection = ctx.select()
    model = copy.deepcopy(ctx.model).eval()
    rows = merge_into_consumers(model, selection, ctx.example)
    remove_channels(model, selection, ctx.example)
    merged = sum(r["merged"] for r in rows)
    return MethodResult(model.eval(), selection, tables={"merges": rows},
                        extra={"channels_merged": merged,
                               "channels_pruned_unmerged": sum(r["removed"] for r in rows) - merged})


register_method(f"{NAME}_bn", uses="calibration", family="post-training",
                traits=("bn-recalibrated",),
                summary="Neuron Merging, then BatchNorm statistics re-estimated on the calibration images")(
    with_bn_recalibration(run_neuron_merging))
