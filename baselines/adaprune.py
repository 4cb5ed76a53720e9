"""AdaPrune: layer-wise reconstruction of a pruned model, each layer on its input in the original model.

Hubara, Chmiel, Island, Banner, Naor, Soudry, "Accelerated Sparse Neural Training: A Provable and Efficient Method
to Find N:M Transposable Masks", NeurIPS 2021 (arXiv:2102.08124), section "AdaPrune"; the code followed is the
layer-wise AdaPrune of Frantar & Alistarh's SPDY release (``adaprune.py``, ``layerw_adaprune``): for every layer,
with its pruning mask fixed, Adam (lr 1e-3) minimises ``||W' x - W x||² / ||W x||²`` per batch, ``x`` being the
layer's input in the *original* (dense) model, for a few passes over a small calibration set.

Structured extension (as the PSP paper describes it): the channels are chosen by the same rule as PSP
(``PruneContext.select``: dependency groups, importance, global ranking, ratio or target MACs) and physically
removed; then each conv and linear layer of the pruned model separately learns to reproduce the original layer's
output, restricted to the output channels it keeps, from the original layer's input restricted to the input
channels it keeps (the pruned layer cannot read the others).

Choices where the paper is silent:
- Layers whose input channels were not touched are skipped: their kept output rows reproduce the original exactly.
- Only weights are trained (biases stay, as in the released code); BatchNorm layers are not changed and the model
  stays in eval mode (no statistics re-estimated).
- Settings: ``lr`` (Adam), ``layer_epochs`` passes per layer, ``batch_size``; the loss of a batch is normalised by
  its targets' squared norm, as in the released code. Layers are processed in forward order; since each reads the
  original model's inputs, the order does not matter.
- ``images_seen`` is ``calibration images × layer_epochs`` (each layer sees every image that many times).

Own code: Torch-Pruning ships no reconstruction; selection and removal are the suite's.
"""

import copy

from baselines._common import fit_layer, kept_inputs, layer_io, restrict
from psp.methods import MethodResult, PruneContext, register_method, with_bn_recalibration
from psp.structure.groups import execution_order
from psp.structure.removal import kept_outputs, remove_channels

NAME = "adaprune"


@register_method(NAME, uses="calibration", family="post-training", traits=("layer-wise",), budget=("layer_epochs",),
                 summary="Hubara et al. 2021: each layer reconstructs the original layer from the original input")
def run_adaprune(ctx: PruneContext) -> MethodResult:
    s = ctx.settings
    original = ctx.model.eval()
    images = ctx.calibration().to(ctx.device)
    selection = ctx.select()
    keep_out = kept_outputs(original, selection, ctx.example)
    keep_in = kept_inputs(original, selection, ctx.example)
    model = remove_channels(copy.deepcopy(original), selection, ctx.example).eval()
    rows = []
    for index, name in enumerate(execution_order(original, ctx.example)):
        if name not in keep_in:
            continue
        inputs, outputs = layer_io(original, name, images, s.batch_size)
        layer = model.get_submodule(name)
        inputs = restrict(inputs, keep_in[name])
        if inputs.shape[1] != layer.weight.shape[1] * getattr(layer, "groups", 1):
            raise RuntimeError(f"{NAME}: layer {name} reads {layer.weight.shape[1]} channels after removal, "
                               f"but {inputs.shape[1]} input channels were kept")
        before, after = fit_layer(layer, inputs, restrict(outputs, keep_out.get(name)), s, s.seed * 1000 + index,
                                  f"{NAME} {name}")
        rows.append({"layer_index": index, "layer": name, "loss_before": before, "loss_after": after})
    model.eval()
    return MethodResult(model, selection, images_seen=len(images) * s.layer_epochs,
                        tables={"layer_losses": rows}, extra={"layers_reconstructed": len(rows)})


register_method(f"{NAME}_bn", uses="calibration", family="post-training", traits=("layer-wise", "bn-recalibrated"),
                budget=("layer_epochs",),
                summary="AdaPrune, then BatchNorm statistics re-estimated on the calibration images")(
    with_bn_recalibration(run_adaprune))
