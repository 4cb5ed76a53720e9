"""The verdict rules of the claims table (psp.report.assess_claims) on synthetic runs with known answers; the
methods a claim compares come from the registry's catalogue, as in the workflow."""

import pandas as pd
import pytest

from psp.pruning_target import PruningTarget
from psp.registry import catalogue
from psp.report.assess_claims import assess
from psp.report.ladders import ladder_points
from psp.report.summaries import read_layers

SEEDS = [0, 1, 2]
JITTER = [0.0, 0.1, -0.1]  # per-seed noise shared by every method (paired differences cancel it)
DESIGN = {"default_samples": 512, "targets": ["2.0"], "seeds": SEEDS, "sweep_methods": [], "sweep_targets": ["2.0"],
          "methods": {}, "layerwise_saturation": {"net": 4}, "catalogue": catalogue()}
USES = {"oneshot_ft": "labels", "l1": "labels", "oneshot": "none", "neuron_merging": "none"}


def _runs(top1: dict[str, float], layer_epochs: int = 4, seed_spread: dict[str, list[float]] | None = None,
          target: str = "2.0") -> pd.DataFrame:
    rows = []
    at = PruningTarget.parse(target)
    for method, value in top1.items():
        for seed, jitter in zip(SEEDS, (seed_spread or {}).get(method, JITTER), strict=True):
            uses = USES.get(method, "calibration")
            rows.append({"dataset": "d", "model": "net", "method": method, "target": at.value,
                         "target_kind": at.kind, "seed": seed,
                         "samples": 0 if uses == "none" else 512, "uses": uses, "top1_pct": value + jitter,
                         "seconds": 10.0, "settings.penalty_epochs": 20, "settings.rec_epochs": 10,
                         "settings.epochs": 1, "settings.layer_epochs": layer_epochs})
    return pd.DataFrame(rows)


def _verdicts(runs: pd.DataFrame, design: dict = DESIGN) -> dict[str, pd.Series]:
    layers = pd.DataFrame(columns=["dataset", "model", "method", "target", "seed", "samples", "layer_index",
                                   "relative_change"])
    table = assess(runs, layers, design | {"methods": {m: USES.get(m, "calibration") for m in runs["method"]}})
    return {row["claim"]: row for _, row in table.iterrows()}


BASE = {"psp": 70.0, "psp_random": 66.0, "oneshot_bn": 40.0, "oneshot_bn_random": 20.0, "oneshot_kd": 75.0,
        "oneshot_ft": 70.0, "adaprune": 10.0, "gap": 12.0, "neuron_merging": 10.0, "adaprune_bn": 45.0,
        "gap_bn": 50.0, "neuron_merging_bn": 41.0}


def test_questions_follow_their_rules():
    v = _verdicts(_runs(BASE))
    assert v["Q1"]["verdict"] == "holds" and "best +BN baseline gap_bn" in v["Q1"]["numbers"]
    assert "adaprune_bn − adaprune" in v["Q1"]["numbers"]  # each method's gain from +BN is listed
    assert v["Q2"]["verdict"] == "does not hold (opposite)"  # distillation of the logits beats PSP
    assert v["Q3"]["verdict"] == "does not hold (not significant)"
    assert v["Q4"]["verdict"] == "holds"  # random importance costs PSP 4 points, oneshot_bn 20
    assert v["Q5"]["verdict"] == "holds" and not v["Q5"]["budget_limited"]
    assert v["Q6"]["verdict"] == "holds" and v["Q6"]["budget_limited"]  # range 0.2 from 3 draws: needs ten
    assert {q: v[q]["category"] for q in ["Q2", "Q3", "Q5", "Q6"]} == {
        "Q2": "opposite", "Q3": "not significant", "Q5": "holds", "Q6": "budget-limited"}


def test_c1_lists_the_bn_variants_without_counting_them():
    v = _verdicts(_runs(BASE | {"adaprune_bn": 80.0}))
    assert v["C1"]["verdict"] == "holds"  # the released baselines
    assert "psp − adaprune_bn" in v["C1"]["numbers"] and "see Q1" in v["C1"]["numbers"]
    assert v["Q1"]["verdict"] == "does not hold (opposite)"


def test_importance_matters_as_much_with_reconstruction():
    v = _verdicts(_runs(BASE | {"psp_random": 50.0}))
    assert v["Q4"]["verdict"] == "does not hold (not significant)"


def test_layerwise_budget_below_saturation_is_budget_limited():
    v = _verdicts(_runs(BASE, layer_epochs=2))
    assert v["Q5"]["budget_limited"] and "layer_epochs 2 < saturated 4" in v["Q5"]["budget"]
    unmeasured = _verdicts(_runs(BASE), DESIGN | {"layerwise_saturation": {}})
    assert unmeasured["Q1"]["budget_limited"] and "not measured" in unmeasured["Q1"]["budget"]


@pytest.mark.parametrize(("spread", "verdict", "limited"), [([0.0, 0.1, -0.1], "holds", True),
                                                              ([0.0, 0.5, -0.5], "does not hold (opposite)", False)])
def test_a_wide_draw_range_is_decisive_with_three_draws(spread, verdict, limited):
    v = _verdicts(_runs(BASE, seed_spread={"psp": spread}))
    assert v["Q6"]["verdict"] == verdict and v["Q6"]["budget_limited"] == limited


def test_labeled_control_is_not_a_retraining_baseline():
    v = _verdicts(_runs(BASE | {"l1": 69.0}))
    assert "oneshot_ft" not in v["C8"]["numbers"] and "l1" in v["C8"]["numbers"]
    alone = _verdicts(_runs({"psp": 70.0, "oneshot_ft": 60.0}))
    assert alone["C2"]["verdict"] == "not run" and alone["C8"]["verdict"] == "not run"


def test_missing_controls_are_not_run():
    v = _verdicts(_runs({"psp": 70.0, "oneshot_bn": 40.0}))
    assert {q: v[q]["verdict"] for q in ["Q1", "Q2", "Q3", "Q4", "Q5"]} == dict.fromkeys(
        ["Q1", "Q2", "Q3", "Q4", "Q5"], "not run")


RISING = {128: 40.0, 512: 60.0, 2048: 61.0}


@pytest.mark.parametrize(("by_size", "verdict"), [(RISING, "does not hold (still rising)"),
                                                  (RISING | {2048: 60.05}, "holds"),
                                                  (dict.fromkeys(RISING, 60.0), "does not hold (not significant)")])
def test_c7_rises_and_saturates(by_size, verdict):
    """C7 holds when accuracy rises from the smallest to the largest size and the last step gains nothing
    significant (here a last step of 0.05 ± 0.1 points); a last step that still gains says so."""
    spread = {2048: [0.1, -0.1, 0.0]}  # another draw's noise at the largest size, so the last step has an SE
    sweep = pd.concat([_runs({"psp": top1}, seed_spread={"psp": spread.get(n, JITTER)}).assign(samples=n)
                       for n, top1 in by_size.items()], ignore_index=True)
    assert _verdicts(sweep, DESIGN | {"sweep_methods": ["psp"]})["C7"]["verdict"] == verdict


def test_a_method_at_fewer_targets_is_compared_where_it_ran():
    """Retraining baselines at one target (config key method_targets) leave C2 and C8 decided there, not
    inconclusive at the targets they skipped."""
    runs = pd.concat([_runs(BASE | {"l1": 69.0}), _runs({"psp": 60.0}).assign(target=3.0)], ignore_index=True)
    v = _verdicts(runs)
    assert v["C2"]["verdict"] == "holds" and "3×" not in v["C2"]["numbers"]
    assert v["C8"]["verdict"] != "inconclusive" and "3×" not in v["C8"]["numbers"]


def test_an_outside_method_joins_the_claims_of_its_family():
    """A post-training method registered from outside, with the layer-wise trait, is compared in C1 and Q5 and
    named by neither: the claims pick methods by family and trait."""
    outside = {"outside": {"uses": "calibration", "family": "post-training", "traits": ["layer-wise"], "summary": ""}}
    v = _verdicts(_runs(BASE | {"outside": 90.0}), DESIGN | {"catalogue": catalogue() | outside})
    assert "psp − outside" in v["C1"]["numbers"] and v["C1"]["verdict"] == "mixed (3 of 4 comparisons hold)"
    assert "best layer-wise method outside" in v["Q5"]["numbers"] and v["Q5"]["verdict"] == "does not hold (opposite)"
    assert "best +BN baseline outside" not in v["Q1"]["numbers"]  # not BatchNorm-recalibrated: not a +BN baseline
    assert "psp − outside" in v["Q1"]["numbers"]  # but listed beside the released methods


def test_ratio_targets_are_compared_by_kind_and_left_out_of_the_matched_flops_claim():
    """Runs at the paper's ratio pair among themselves and are named as ratios; C1, stated at matched FLOPs, compares
    MACs targets only and says why the ratio rows are missing."""
    worse_at_ratio = BASE | {"gap": 90.0, "psp_no_penalty": 60.0}
    runs = pd.concat([_runs(BASE | {"psp_no_penalty": 60.0}), _runs(worse_at_ratio, target="r0.5")])
    v = _verdicts(runs)
    assert v["C1"]["verdict"] == "holds"  # gap is better only at the ratio target, which C1 does not compare
    assert "ratio targets not compared" in v["C1"]["numbers"] and "ratio 0.5" not in v["C1"]["numbers"]
    assert v["C3"]["verdict"] == "holds"  # ablations compare at both kinds, each with its own runs
    assert "2×:" in v["C3"]["numbers"] and "ratio 0.5:" in v["C3"]["numbers"]
    ratio_only = _verdicts(_runs(BASE, target="r0.5"))
    assert ratio_only["C1"]["verdict"] == "not run"


def _ladder_verdicts(points: pd.DataFrame) -> dict[str, pd.Series]:
    """The verdicts of the base runs with the budget ladders' ``points`` (psp.report.ladders.ladder_points)."""
    runs = _runs(BASE).assign(budget=1.0)
    table = assess(runs, pd.DataFrame(columns=["dataset", "model", "method", "target", "seed", "samples",
                                               "layer_index", "relative_change"]),
                   DESIGN | {"methods": {m: USES.get(m, "calibration") for m in runs["method"]}}, points)
    return {row["claim"]: row for _, row in table.iterrows()}


def test_a_saturated_ladder_lifts_the_budget_limit_and_states_the_compute_to_match(ladder_runs):
    v = _ladder_verdicts(ladder_points(ladder_runs({
        "psp": [(1, 10, 70.0)], "gap": [(1, 4, 60.0), (2, 8, 68.0), (4, 16, 70.5), (8, 32, 70.7)]})))
    q5 = v["Q5"]
    assert not q5["budget_limited"]
    assert "gap reaches 68.80 % with PSP's compute" in q5["numbers"]  # 8 → 16 GFLOPs, log-interpolated at 10
    assert "needs 1.4× PSP's compute to match PSP's 70.00 %" in q5["numbers"]
    assert "the best other method at PSP's compute is gap" in q5["numbers"]
    assert q5["at_psp_compute"] == "2×: psp ahead by 1.20 points (gap best at psp's compute)"
    assert v["C3"]["at_psp_compute"] == ""  # an ablation: not a comparison with other methods


def test_a_ladder_still_rising_is_budget_limited_and_says_by_how_much(ladder_runs):
    v = _ladder_verdicts(ladder_points(ladder_runs({
        "psp": [(1, 10, 70.0)], "gap": [(1, 4, 60.0), (2, 8, 62.0), (4, 16, 64.0)]})))
    for claim in ("Q5", "C1"):
        assert v[claim]["budget_limited"]
        assert "gap at 2× still rising: +2.00 points over its last doubling of compute (top rung ×4)" in \
            v[claim]["budget"]
    assert "does not reach PSP's 70.00 % within its ladder (best 64.00 %, up to 1.6× PSP's compute)" in \
        v["Q5"]["numbers"]


def test_only_the_ladders_a_verdict_compares_can_limit_it(ladder_runs):
    """C1 compares the released baselines, Q1 their +BN versions: a still-rising gap_bn ladder limits Q1 and Q5, a
    saturated gap ladder limits neither, and C1 is not limited by gap_bn."""
    v = _ladder_verdicts(ladder_points(ladder_runs({
        "psp": [(1, 10, 70.0), (2, 20, 70.1)], "gap": [(1, 4, 60.0), (2, 8, 62.0), (4, 16, 62.1)],
        "gap_bn": [(1, 4, 61.0), (2, 8, 63.0), (4, 16, 65.0)]})))
    assert not v["C1"]["budget_limited"] and "gap_bn" not in v["C1"]["budget"]
    for claim in ("Q1", "Q5"):
        assert v[claim]["budget"] == ("gap_bn at 2× still rising: +2.00 points over its last doubling of compute "
                                      "(top rung ×4)")


def test_a_cheaper_ladder_that_beats_psp_leads_at_psp_compute(ladder_runs):
    v = _ladder_verdicts(ladder_points(ladder_runs({
        "psp": [(1, 10, 70.0)], "gap": [(1, 1, 60.0), (2, 2, 71.0), (4, 4, 71.2)]})))
    assert v["Q5"]["at_psp_compute"] == "2×: gap ahead by 1.20 points (gap best at psp's compute)"
    assert "gap reaches 71.20 % with 0.4× PSP's compute (its top rung)" in v["Q5"]["numbers"]
    assert not v["Q5"]["budget_limited"]  # its last doubling gained 0.2 points: saturated


def _layer_rows(method: str, early: float, budget: float = 1.0) -> list[dict]:
    """Four layers of one method per seed at 2×: the first two (the early half) change by ``early``, the rest by
    0.01."""
    return [{"dataset": "d", "model": "net", "method": method, "target": 2.0, "samples": 512, "seed": seed,
             "budget": budget, "layer_index": i, "layer": f"conv{i}",
             "relative_change": (early + jitter / 100 if i < 2 else 0.01)}
            for seed, jitter in zip(SEEDS, JITTER, strict=True) for i in range(4)]


def _c5(layer_rows: list[dict], tmp_path) -> pd.Series:
    """C5 as the workflow judges it: the layer table written and read back as assess_claims reads it."""
    path = tmp_path / "layer_updates.csv"
    pd.DataFrame(layer_rows).to_csv(path, index=False)
    runs = _runs(BASE | {"psp_no_balance": 60.0})
    design = DESIGN | {"methods": {m: USES.get(m, "calibration") for m in runs["method"]}}
    table = assess(runs, read_layers(str(path)), design)
    return table.set_index("claim").loc["C5"]


def test_c5_judges_the_weight_change_of_the_own_budget_runs_only(tmp_path):
    """A ladder's rungs train for other epochs: their weight change is not the method's. Averaged in, psp_no_balance's
    x4 rung here would turn the early-layer comparison over."""
    own = _layer_rows("psp", 0.01) + _layer_rows("psp_no_balance", 0.1)
    c5 = _c5(own + _layer_rows("psp", 0.5, budget=4) + _layer_rows("psp_no_balance", 0.001, budget=0.25), tmp_path)
    assert c5["verdict"] == "holds"
    assert "psp_no_balance 0.1000 ± 0.0010 vs psp 0.0100 ± 0.0010" in c5["numbers"]


def test_c5_names_the_method_whose_weight_change_was_not_recorded(tmp_path):
    c5 = _c5(_layer_rows("psp_no_balance", 0.1), tmp_path)
    assert c5["verdict"] == "inconclusive"
    assert "none recorded for psp (a run joined from previous_runs" in c5["numbers"]
