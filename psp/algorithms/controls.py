"""Controls that isolate what recovery adds: selection alone, selection plus BatchNorm re-estimation, and the dense
model with re-estimated BatchNorm (on JPEG CIFAR the dense model itself gains from adapting BN to the domain)."""

import copy

from psp.methods import MethodResult, PruneContext, register_method
from psp.reconstruct.batchnorm import recalibrate_batchnorm
from psp.structure.removal import remove_channels


@register_method("oneshot", uses="none", summary="select and remove channels, no recovery")
def oneshot(ctx: PruneContext) -> MethodResult:
    selection = ctx.select()
    return MethodResult(remove_channels(copy.deepcopy(ctx.model), selection, ctx.example), selection)


@register_method("oneshot_bn", uses="calibration",
                 summary="select, remove, then re-estimate BatchNorm statistics on the calibration images")
def oneshot_bn(ctx: PruneContext) -> MethodResult:
    selection = ctx.select()
    model = remove_channels(copy.deepcopy(ctx.model), selection, ctx.example)
    seen = recalibrate_batchnorm(model, ctx.calibration(), ctx.settings.batch_size)
    return MethodResult(model, selection, images_seen=seen)


@register_method("dense_bn", uses="calibration",
                 summary="the unpruned model with BatchNorm statistics re-estimated on the calibration images")
def dense_bn(ctx: PruneContext) -> MethodResult:
    model = copy.deepcopy(ctx.model)
    seen = recalibrate_batchnorm(model, ctx.calibration(), ctx.settings.batch_size)
    return MethodResult(model, {}, images_seen=seen)
