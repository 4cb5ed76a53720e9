"""``psp_plus`` and ``psp_fast``: PSP with settings chosen by a validation search, not the paper's.

Both recipes were chosen by ``benchmarks/tune_psp.py`` on 5,000 images held out of the *training* split (the test
split was never read), on ResNet-20 and ResNet-56 at 2.1x and 3.0x fewer MACs with 512 images; the search, its
outcome and the test-split results are in ``results/reference/psp_plus/``. Each is one set of settings for every
model and target (not tuned per model), applied over the user's own settings:

- ``psp_plus``: the most accurate recipe found within 2x the released 30 epochs: one learning rate for all layers
  (balanced rates over-update early layers), 3e-3 instead of 1e-3, phase 2 annealed by a cosine, batches of 64 (twice
  the steps), and the epochs moved from phase 1 to phase 2 (10 + 50).
- ``psp_fast``: the released PSP's accuracy in at most a quarter of its time. A short phase 1 costs more than it gives
  (a phase-1 epoch trains the full-width model, and a few epochs of penalty leave the selected channels half shrunk),
  so it has none: 8 epochs of one-rate reconstruction of the pruned model at 3e-3, annealed.
"""

from psp.algorithms.psp import PSP_BUDGET, run_psp
from psp.methods import register_method, with_settings

# What the search found for both: one learning rate for all layers (balance power 0), 3e-3, phase 2 annealed.
ONE_RATE_ANNEALED: dict[str, object] = {"balanced": True, "balance_power": 0.0, "lr": 3e-3,
                                        "lr_schedule": "phase2_cosine"}
PSP_PLUS = ONE_RATE_ANNEALED | {"batch_size": 64, "penalty_epochs": 10, "rec_epochs": 50}  # nb_lr3e-3_p2cos_b64_10+50
PSP_FAST = ONE_RATE_ANNEALED | {"penalty_epochs": 0, "rec_epochs": 8}  # tune_psp.py's fast_0+8

register_method("psp_plus", uses="calibration", family="PSP", budget=PSP_BUDGET,
                summary="validation-searched recipe, most accurate (not the paper's)")(
    with_settings(run_psp, **PSP_PLUS))
register_method("psp_fast", uses="calibration", family="PSP", budget=PSP_BUDGET,
                summary="validation-searched recipe, a quarter of PSP's time (not the paper's)")(
    with_settings(run_psp, **PSP_FAST))
