"""Every option vocabulary of the suite, defined once and importable without torch (the command line checks its
arguments against them before torch is imported)."""

DEVICES = ("auto", "cpu", "cuda")
IMPORTANCES = ("l2", "l1", "l2_sum", "random")
SELECTIONS = ("global", "uniform")
PENALTIES = ("replace", "add", "decay")
LR_SCHEDULES = ("constant", "cosine", "phase2_cosine")
BN_MODES = ("train", "eval")
DISTILL_LOSSES = ("mse", "kl")
USES = ("calibration", "labels", "none")  # the data a method reads
