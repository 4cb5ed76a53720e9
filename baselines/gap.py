"""gAP: global AdaPrune, layers reconstructed in forward order on the inputs of the pruned model.

Frantar & Alistarh, "SPDY: Accurate Pruning with Speedup Guarantees", ICML 2022 (arXiv:2201.13096), global AdaPrune
(gAP); extended to channels as the PSP paper describes it: AdaPrune's layer problem, but each layer takes its
input from the *already pruned and reconstructed* earlier layers, so that it learns to correct the error that
reaches it instead of letting errors accumulate. The target is still the original model's output of that layer,
restricted to the output channels it keeps.

Choices:
- Channels are chosen by the same rule as PSP (``PruneContext.select``) and removed first; then every conv and
  linear layer, in the order a forward pass runs them, is fitted by AdaPrune's step (``baselines._common.fit_layer``:
  Adam at ``lr``, ``layer_epochs`` passes, ``batch_size``, per-batch loss normalised by the target's squared norm,
  weights only) on inputs recomputed through the pruned model once all earlier layers are done. Layers whose error
  is already nil (the first conv: same images, kept rows of the same filters) are left alone.
- BatchNorm is left as it is and the pruned model stays in eval mode throughout (inputs are computed with the
  original running statistics, which the fitted layers aim to keep valid).
- ``images_seen`` is ``calibration images × layer_epochs``.

Where this departs from the authors' release: SPDY's ``adaprune.py`` (``global_adaprune``) optimises *all* layers
jointly, by Adam at lr 1e-5 over every parameter of the pruned model, on the sum over conv/linear layers of the
normalised squared error against the dense model's outputs, after a layer-wise AdaPrune warm start. That variant is
close to PSP's phase 2 without balanced learning rates (and with eval-mode BatchNorm); this module implements the
sequential reading given in the suite's method description.

Own code: Torch-Pruning ships no reconstruction; selection and removal are the suite's.
"""

import copy

from baselines._common import NEGLIGIBLE, fit_layer, layer_io, restrict
from psp.methods import MethodResult, PruneContext, register_method, with_bn_recalibration
from psp.structure.groups import execution_order
from psp.structure.removal import kept_outputs, remove_channels

NAME = "gap"


@register_method(NAME, uses="calibration", family="post-training", traits=("layer-wise",), budget=("layer_epochs",),
                 summary="Frantar & Alistarh 2022: layers reconstructed in order on the pruned model's inputs")
def run_gap(ctx: PruneContext) -> MethodResult:
    s = ctx.settings
    original = ctx.model.eval()
    images = ctx.calibration().to(ctx.device)
    selection = ctx.select()
    keep_out = kept_outputs(original, selection, ctx.example)
    model = remove_channels(copy.deepcopy(original), selection, ctx.example).eval()
    rows = []
    for index, name in enumerate(execution_order(original, ctx.example)):
        inputs, _ = layer_io(model, name, images, s.batch_size)
        _, outputs = layer_io(original, name, images, s.batch_size)
        before, after = fit_layer(model.get_submodule(name), inputs, restrict(outputs, keep_out.get(name)), s,
                                  s.seed * 1000 + index, f"{NAME} {name}")
        rows.append({"layer_index": index, "layer": name, "loss_before": before, "loss_after": after,
                     "fitted": before >= NEGLIGIBLE})
    model.eval()
    return MethodResult(model, selection, images_seen=len(images) * s.layer_epochs,
                        tables={"layer_losses": rows}, extra={"layers_reconstructed": sum(r["fitted"] for r in rows)})


register_method(f"{NAME}_bn", uses="calibration", family="post-training", traits=("layer-wise", "bn-recalibrated"),
                budget=("layer_epochs",),
                summary="gAP, then BatchNorm statistics re-estimated on the calibration images")(
    with_bn_recalibration(run_gap))
