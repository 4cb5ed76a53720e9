"""Every option vocabulary of the suite, defined once and importable without torch (the command line checks its
arguments against them before torch is imported)."""

DEVICES = ("auto", "cpu", "cuda")
IMPORTANCES = ("l2", "l1", "l2_sum", "random")
SELECTIONS = ("global", "uniform")
PENALTIES = ("replace", "add", "decay")
LR_SCHEDULES = ("constant", "cosine", "phase2_cosine")
BN_MODES = ("train", "eval")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")  # layout of PSP's reconstruction (psp.reconstruct.layout)
CONV_INPUT_GRADS = ("auto", "forward", "native")  # how it computes input gradients (psp.reconstruct.conv_grad)
DISTILL_LOSSES = ("mse", "kl")
USES = ("calibration", "labels", "none")  # the data a method reads
# How a method is grouped in tables, figures and claims, in table order: PSP and its ablations, the controls that
# explain them, the post-training baselines, the baselines that retrain with labels.
FAMILIES = ("PSP", "control", "post-training", "retraining")
# What claims select methods by: "bn-recalibrated" (BatchNorm re-estimated after the method, the "+BN" variants of Q1),
# "layer-wise" (fits each layer to the dense model's output in turn, Q5).
TRAITS = ("bn-recalibrated", "layer-wise")
