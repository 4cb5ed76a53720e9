"""``psp_plus`` and ``psp_fast``: PSP with settings chosen by a validation search, not the paper's.

Both recipes were chosen by ``benchmarks/tune_psp.py`` on 5,000 images held out of the *training* split (the test
split was never read), on ResNet-20 and ResNet-56 at 2.1x and 3.0x fewer MACs with 512 images; the search, its
outcome and the test-split results are in ``results/reference/psp_plus/``. Each is one set of settings for every
model and target (not tuned per model), applied over the user's own settings:

- ``psp_plus``: the most accurate recipe found within 2x the released 30 epochs.
- ``psp_fast``: the released PSP's accuracy in about a quarter of its time (fewer epochs; a phase-1 epoch trains the
  full-width model and costs about twice a phase-2 epoch on the pruned one).
"""

from psp.algorithms.psp import run_psp
from psp.methods import register_method, with_settings

PSP_PLUS: dict[str, object] = {
    "balanced": True, "balance_power": 0.0, "lr_schedule": "cosine", "penalty_epochs": 20, "rec_epochs": 40,
}
PSP_FAST: dict[str, object] = {
    "balanced": True, "balance_power": 0.0, "lr_schedule": "cosine", "lr": 3e-3, "penalty_epochs": 2,
    "rec_epochs": 6,
}

register_method("psp_plus", uses="calibration",
                summary="PSP with the validation-searched recipe: most accurate within 2x the released epochs")(
    with_settings(run_psp, **PSP_PLUS))
register_method("psp_fast", uses="calibration",
                summary="PSP with the validation-searched recipe: the released accuracy in a quarter of its time")(
    with_settings(run_psp, **PSP_FAST))
