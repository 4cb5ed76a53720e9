"""Verdicts on the paper's claims C1–C8 (../shared/docs/method.md) and on the reviewers' open questions Q1–Q6
(../shared/docs/questions.md) from this run's own numbers, by stated rules.

Differences are paired by seed (same calibration draw). A claimed difference "A better than B" holds when the mean of
A − B exceeds two standard errors over at least three seeds. Claims compared over several targets (or methods) hold
when every comparison holds. Budgets below the paper's mark a verdict budget-limited; absent methods mark it
'not run'.

Where the design ran budget ladders (``psp.report.ladders``), the verdicts that compare PSP with other methods (C1,
C2, C8, Q1, Q5) also compare at matched compute: what the others reach with PSP's compute, and how much compute they
need to match PSP. A method with a ladder is then budget-limited only when its ladder had not saturated (its last
doubling of compute still gained ``SATURATION_POINTS`` or more), and the verdict says how fast it was still rising;
without a ladder, the epochs below the paper's (or, for layer-wise methods, below ``layerwise_saturation``) decide.
"""

import math
from collections.abc import Iterator

import pandas as pd

from psp.pruning_target import target_text
from psp.report.catalogue import Catalogue
from psp.report.ladders import (
    SATURATION_POINTS,
    compute_to_match,
    ladder_points,
    ladder_runs,
    saturation,
    top1_within,
)
from psp.report.summaries import (
    SETUP,
    main_runs,
    mean_se,
    own_budget,
    paired_difference,
    pm,
    read_layers,
    read_runs,
    start_log,
    sweep_runs,
)

# The paper's budgets (method.md): retraining baselines fine-tune 100 epochs; PSP runs 20 + 10 epochs; the draw
# study used ten draws; the calibration-size study spans 128 ... 5120 images.
PAPER = {"retrain_epochs": 100, "penalty_epochs": 20, "rec_epochs": 10, "draws": 10, "samples": (128, 5120)}
CLAIMS = {
    "C1": "At matched FLOPs reduction, PSP is more accurate than the other post-training methods (AdaPrune, gAP, "
          "Neuron Merging).",
    "C2": "PSP matches retraining-based pruning (L1 with fine-tuning) without any retraining.",
    "C3": "Phase 1 (the sparsity penalty) matters: without it accuracy drops.",
    "C4": "Reconstruction matters: without phase-2 training accuracy drops sharply.",
    "C5": "Balanced updates matter: one learning rate for all layers over-updates early layers and loses accuracy.",
    "C6": "The result is insensitive to which calibration images are drawn (ten draws within about 0.2 points).",
    "C7": "Accuracy rises with the number of calibration images and saturates (128 … 5120).",
    "C8": "Recovery takes minutes, orders of magnitude less than retraining.",
    "Q1": "PSP's advantage over AdaPrune, gAP and Neuron Merging is not just recalibration: PSP is more accurate "
          "than the best of them with BatchNorm re-estimated on the same images (\"+BN\").",
    "Q2": "The holistic layer-wise loss matters: PSP is more accurate than distilling the dense model's output "
          "(logits) alone on the same images with the same optimiser and epochs (oneshot_kd).",
    "Q3": "Without labels, PSP is more accurate than supervised fine-tuning on the same images with their labels "
          "(oneshot_ft).",
    "Q4": "The key is the reconstruction, not the importance criterion: replacing l2 importance by random importance "
          "costs PSP less than it costs selection plus BatchNorm re-estimation.",
    "Q5": "Layer-wise reconstruction (AdaPrune, gAP, with or without +BN) at a saturated per-layer budget is still "
          "less accurate than PSP.",
    "Q6": "The result is insensitive to the calibration draw (C6) on this model.",
}
RULES = {
    "C1": "PSP − B > 2 SE for every post-training baseline B present and every MACs target (ratio targets do not "
          "match FLOPs across methods); with budget ladders, also what each reaches with PSP's compute and the "
          "compute it needs to match PSP; budget-limited only where PSP's ladder or a compared baseline's had not "
          "saturated.",
    "C2": "PSP is not significantly worse than the retraining method: PSP − R ≥ −2 SE at every target (L1 when "
          "present, otherwise every retraining method present); with a retraining budget ladder, the compute "
          "retraining needs to match PSP, and budget-limited only where that ladder had not saturated.",
    "C3": "psp − psp_no_penalty > 2 SE at every target.",
    "C4": "psp − psp_no_rec > 2 SE at every target (the size of the drop is reported).",
    "C5": "psp − psp_no_balance > 2 SE in top-1 and, in the first half of the layers, the phase-2 relative weight "
          "change of psp_no_balance − psp > 2 SE, at every target.",
    "C6": "range (max − min) of PSP top-1 over seeds (= calibration draws) ≤ 0.2 points at every target, with ≥ 3 "
          "seeds.",
    "C7": "PSP top-1 at the largest size − at the smallest > 2 SE (rises) and the gain of the last step (two largest "
          "sizes) ≤ 2 SE (saturates), at every target; needs ≥ 3 sizes.",
    "C8": "retraining seconds − PSP seconds > 2 SE and the ratio of means ≥ 10, at every target; with a retraining "
          "budget ladder, the compute retraining needs to match PSP is listed and decides budget-limited (as in C2).",
    "Q1": "psp − B > 2 SE at every target, B the \"+BN\" post-training baseline with the highest mean top-1 there "
          "(the released baselines and each method's gain from +BN are listed); budget-limited when PSP's or a "
          "+BN layer-wise baseline's budget ladder had not saturated (its last doubling of compute gained ≥ 0.5 "
          "points) or, without ladders, when layer_epochs is below the model's layerwise_saturation. With ladders, "
          "the matched-compute lines say what each reaches with PSP's compute and what compute it needs to match "
          "PSP.",
    "Q2": "psp − oneshot_kd > 2 SE at every target (psp_no_penalty − oneshot_kd is listed: holistic vs output-only "
          "loss without the penalty phase).",
    "Q3": "psp − oneshot_ft > 2 SE at every target; opposite when fine-tuning with labels is better by 2 SE.",
    "Q4": "per seed, (oneshot_bn − oneshot_bn_random) − (psp − psp_random) > 2 SE at every target: the drop from l2 "
          "to random importance is smaller with PSP's reconstruction than without it.",
    "Q5": "psp − B > 2 SE at every target, B the best of adaprune, gap, adaprune_bn, gap_bn by mean top-1; "
          "budget-limited when PSP's or a layer-wise budget ladder had not saturated (its last doubling of compute "
          "gained ≥ 0.5 points) or, without ladders, when layer_epochs is below the model's layerwise_saturation; "
          "with ladders, also compared at PSP's compute.",
    "Q6": "C6's rule on every model. A range above 0.2 points is decisive with any number of draws (more draws can "
          "only widen it); a range within 0.2 points needs ten draws, otherwise it is budget-limited.",
}


def outcome(d: dict, claimed: str = "greater") -> str:
    """'holds', 'opposite', 'not significant' or 'too few seeds' for a paired difference ``d`` (A − B)."""
    if d["n"] < 3 or not math.isfinite(d["se"]):
        return "too few seeds"
    if claimed == "not_worse":
        return "holds" if d["diff"] >= -2 * d["se"] else "opposite"
    if d["diff"] > 2 * d["se"]:
        return "holds"
    return "opposite" if d["diff"] < -2 * d["se"] else "not significant"


def combine(outcomes: list[str]) -> str:
    if not outcomes:
        return "not run"
    if "too few seeds" in outcomes:
        return "inconclusive"
    held = outcomes.count("holds")
    if held == len(outcomes):
        return "holds"
    if held:
        return f"mixed ({held} of {len(outcomes)} comparisons hold)"
    failures = set(outcomes)
    return f"does not hold ({failures.pop()})" if len(failures) == 1 else "does not hold"


CATEGORIES = ["holds", "not significant", "opposite", "does not hold", "mixed", "budget-limited", "inconclusive",
              "not run"]


def category(verdict: str, budget_limited: bool) -> str:
    """The verdict's colour class in the summary figure: its outcome, or budget-limited when the run's budget is
    below the paper's (the outcome itself is still written in the figure's cell)."""
    if budget_limited:
        return "budget-limited"
    for name in ("not significant", "opposite", "mixed"):
        if name in verdict:
            return name
    return verdict if verdict in CATEGORIES else "does not hold"


def describe(d: dict) -> str:
    return f"Δ = {pm(d['diff'], 2 * d['se'])} (± 2 SE, {d['n']} seeds{'' if d['paired'] else ', unpaired'})"


def summary(runs: pd.DataFrame, method: str, column: str = "top1_pct", unit: str = "%", digits: int = 2) -> str:
    values = runs.loc[runs["method"] == method, column]
    return f"{method} {pm(values.mean(), values.std(ddof=1), digits)} {unit}".rstrip()


def budget_notes(runs: pd.DataFrame, methods: list[str], psp: bool = True, retrain: list[str] | None = None,
                 points: pd.DataFrame | None = None) -> list:
    """Why a verdict is budget-limited (empty when the run's budgets reach the paper's). A method that ran a budget
    ladder in ``points`` is judged by its ladder instead: limited only when it had not saturated."""
    with_ladder = laddered(points, methods + (retrain or [])) if points is not None else []
    notes = rising(points, with_ladder) if with_ladder else []
    methods = [m for m in methods if m not in with_ladder]
    retrain = [m for m in retrain or [] if m not in with_ladder]
    rows = runs[runs["method"].isin(methods)]
    if psp and not rows.empty:
        for key in ("penalty_epochs", "rec_epochs"):
            used = rows[f"settings.{key}"].max()
            if used < PAPER[key]:
                notes.append(f"{key} {used:g} < paper {PAPER[key]}")
    for method in retrain:
        used = runs.loc[runs["method"] == method, "settings.epochs"].max()
        if used < PAPER["retrain_epochs"]:
            notes.append(f"{method} retrains {used:g} epochs < paper {PAPER['retrain_epochs']}")
    return notes


def matched_panels(points: pd.DataFrame, others: list[str]
                   ) -> Iterator[tuple[float, float, float, dict[str, pd.DataFrame]]]:
    """Per ladder target where PSP ran at its own budget and some of ``others`` ran a ladder: the target, PSP's
    GFLOPs and top-1 there, and each such method's ladder."""
    for target, panel in points.groupby("target", sort=True):
        psp = panel[(panel["method"] == "psp") & (panel["budget"] == 1)]
        ladders = {m: panel[panel["method"] == m] for m in others if (panel["method"] == m).sum() > 1}
        if not psp.empty and ladders:
            yield target, float(psp["gflops"].iloc[0]), float(psp["top1_pct"].iloc[0]), ladders


def compute_lines(points: pd.DataFrame, others: list[str]) -> list[str]:
    """At each ladder target: what each of ``others`` reaches with PSP's compute (its own budget's FLOPs) and the
    compute it needs to match PSP's top-1; the best of them at PSP's compute. Empty when the design ran no ladder
    for these methods."""
    lines = []
    for target, flops, top1, ladders in matched_panels(points, others):
        at = target_text(target)
        reached = {}
        for method, ladder in ladders.items():
            within = top1_within(ladder, flops)
            need = compute_to_match(ladder, top1)
            top = ladder.sort_values("gflops").iloc[-1]
            if within is not None:
                reached[method] = within
            if within is None:
                reach = f"needs {ladder['gflops'].min() / flops:.2g}× PSP's compute for its cheapest rung"
            elif top["gflops"] < flops:
                reach = f"reaches {within:.2f} % with {top['gflops'] / flops:.2g}× PSP's compute (its top rung)"
            else:
                reach = f"reaches {within:.2f} % with PSP's compute"
            match = (f"needs {need / flops:.2g}× PSP's compute to match PSP's {top1:.2f} %" if need is not None else
                     f"does not reach PSP's {top1:.2f} % within its ladder (best {ladder['top1_pct'].max():.2f} %, "
                     f"up to {top['gflops'] / flops:.2g}× PSP's compute)")
            lines.append(f"{at}, matched compute (PSP {flops:.3g} GFLOPs): {method} {reach}; {match}")
        if reached:
            best = max(reached, key=reached.get)
            lines.append(f"{at}, matched compute: the best other method at PSP's compute is {best}, "
                         f"{reached[best]:.2f} % vs PSP's {top1:.2f} %")
    return lines


def at_psp_compute(points: pd.DataFrame, others: list[str]) -> str:
    """The matched-compute outcome of a claim: at each ladder target, PSP's top-1 at its own budget against the best
    of ``others`` with at most PSP's compute (means over seeds); empty without ladders."""
    outcomes = []
    for target, flops, top1, ladders in matched_panels(points, others):
        reached = {m: r for m, ladder in ladders.items() if (r := top1_within(ladder, flops)) is not None}
        if not reached:
            outcomes.append(f"{target_text(target)}: psp ahead (no other rung within its compute)")
            continue
        best = max(reached, key=reached.get)
        gap = top1 - reached[best]
        leader = "psp" if gap > 0 else best
        outcomes.append(f"{target_text(target)}: {leader} ahead by {abs(gap):.2f} points ({best} best at psp's "
                        "compute)")
    return "; ".join(outcomes)


def rising(points: pd.DataFrame, methods: list[str]) -> list[str]:
    """Notes on the ladders of ``methods`` that had not saturated: how much their last doubling still gained."""
    notes = []
    for (method, target), ladder in points[points["method"].isin(methods)].groupby(["method", "target"], sort=True):
        gain = saturation(ladder)
        if gain is not None and gain >= SATURATION_POINTS:
            top = ladder.sort_values("gflops").iloc[-1]
            notes.append(f"{method} at {target_text(target)} still rising: +{gain:.2f} points over its last doubling "
                         f"of compute (top rung ×{top['budget']:g})")
    return notes


def laddered(points: pd.DataFrame, methods: list[str]) -> list[str]:
    """The methods of ``methods`` that ran a budget ladder (two or more budgets) in ``points``."""
    budgets = points.groupby("method")["budget"].nunique() if len(points) else pd.Series(dtype=int)
    return [m for m in methods if budgets.get(m, 0) > 1]


def post_training(design: dict) -> list[str]:
    """The post-training baselines as released (C1): the family without BatchNorm re-estimation."""
    return Catalogue.of(design).members("post-training", without="bn-recalibrated")


def with_bn(design: dict) -> list[str]:
    """The post-training baselines with BatchNorm re-estimated on the same images, "+BN" (Q1)."""
    return Catalogue.of(design).members("post-training", trait="bn-recalibrated")


def layerwise(design: dict) -> list[str]:
    """The layer-wise reconstruction methods, with and without +BN (Q5)."""
    return Catalogue.of(design).with_trait("layer-wise")


def retraining_methods(design: dict, present: set[str]) -> list[str]:
    """The retraining baselines present (oneshot_ft reads labels too, but fine-tunes on the calibration images only:
    it is Q3's control, registered in the control family)."""
    return [m for m in Catalogue.of(design).members("retraining") if m in present]


def difference_claim(main: pd.DataFrame, a: str, others: list[str], claimed: str = "greater") -> tuple[list, list]:
    outcomes, lines = [], []
    for target, group in main.groupby("target", sort=True):
        at = target_text(target)
        for b in others:
            if not (group["method"] == b).any():  # b does not run at this target (config key method_targets)
                continue
            d = paired_difference(group[group["method"] == a], group[group["method"] == b], "top1_pct")
            outcomes.append(outcome(d, claimed))
            lines.append(f"{at}: {summary(group, a)} vs {summary(group, b)}; {a} − {b}: {describe(d)} → "
                         f"{outcomes[-1]}")
    return outcomes, lines


def claim_c1(main, present, layers, runs, design, points):
    released = post_training(design)
    baselines = [m for m in released if m in present]
    matched = main[main["target_kind"] == "macs"]  # the claim is stated at matched FLOPs
    if "psp" not in present or not baselines or matched.empty:
        return "not run", [f"needs psp and at least one of {', '.join(released)} at a MACs target"], []
    outcomes, lines = difference_claim(matched, "psp", baselines)
    if len(matched) < len(main):
        lines.append("ratio targets not compared: the claim is stated at matched FLOPs (MACs targets)")
    recalibrated = [m for m in with_bn(design) if m in present]
    if recalibrated:  # shown beside the released baselines; their verdict is Q1's
        lines += [f"{line.rsplit(' → ', 1)[0]} (+BN, not in this verdict: see Q1)"
                  for line in difference_claim(matched, "psp", recalibrated)[1]]
    lines += compute_lines(points[points["target_kind"] == "macs"], released)
    return combine(outcomes), lines, (budget_notes(main, ["psp"], points=points)
                                      + layerwise_notes(main, design, points, released))


def claim_c2(main, present, layers, runs, design, points):
    retrain = ["l1"] if "l1" in present else retraining_methods(design, present)
    if "psp" not in present or not retrain:
        return "not run", ["needs psp and l1 (or another retraining method)"], []
    outcomes, lines = difference_claim(main, "psp", retrain, claimed="not_worse")
    if retrain != ["l1"]:
        lines.insert(0, f"l1 absent: compared with the retraining methods present ({', '.join(retrain)})")
    lines += compute_lines(points, retrain)
    return combine(outcomes), lines, budget_notes(main, ["psp"], retrain=retrain, points=points)


def _ablation_claim(ablated):
    def claim(main, present, layers, runs, design, points):
        if "psp" not in present or ablated not in present:
            return "not run", [f"needs psp and {ablated}"], []
        outcomes, lines = difference_claim(main, "psp", [ablated])
        return combine(outcomes), lines, budget_notes(main, ["psp", ablated])
    return claim


def claim_c5(main, present, layers, runs, design, points):
    verdict, lines, notes = _ablation_claim("psp_no_balance")(main, present, layers, runs, design, points)
    if verdict == "not run":
        return verdict, lines, notes
    accuracy = [line.rsplit("→ ", 1)[1] for line in lines]
    layer_outcomes = []
    rows = layers[layers["method"].isin(["psp", "psp_no_balance"])
                  & (layers["samples"] == design["default_samples"])]
    if rows.empty:
        lines.append("no per-layer weight change recorded")
    else:
        half = rows.groupby(SETUP + ["method", "target", "seed"])["layer_index"].transform("max") / 2
        early = (rows[rows["layer_index"] < half].groupby(["method", "target", "seed"])["relative_change"].mean()
                 .rename("early").reset_index())
        for target, group in early.groupby("target", sort=True):
            at = target_text(target)
            absent = [m for m in ("psp_no_balance", "psp") if not (group["method"] == m).any()]
            if absent:
                layer_outcomes.append("too few seeds")
                lines.append(f"{at}: early-layer relative weight change in phase 2: none recorded for "
                             f"{' and '.join(absent)} (a run joined from previous_runs brings it only from a "
                             "layer_updates.csv beside its runs.csv)")
                continue
            d = paired_difference(group[group["method"] == "psp_no_balance"], group[group["method"] == "psp"],
                                  "early")
            layer_outcomes.append(outcome(d))
            lines.append(f"{at}: early-layer relative weight change in phase 2, "
                         f"{summary(group, 'psp_no_balance', 'early', '', 4)} vs "
                         f"{summary(group, 'psp', 'early', '', 4)}; "
                         f"psp_no_balance − psp: {pm(d['diff'], 2 * d['se'], 4)} (± 2 SE) → {layer_outcomes[-1]}")
    return combine(accuracy + layer_outcomes), lines, notes


def claim_c6(main, present, layers, runs, design, points):
    if "psp" not in present:
        return "not run", ["needs psp"], []
    outcomes, lines = [], []
    for target, group in main[main["method"] == "psp"].groupby("target", sort=True):
        at = target_text(target)
        values = group["top1_pct"]
        spread = values.max() - values.min()
        ok = "too few seeds" if len(values) < 3 else ("holds" if spread <= 0.2 else "opposite")
        outcomes.append(ok)
        lines.append(f"{at}: psp top-1 over {len(values)} draws {values.min():.2f} … {values.max():.2f} % "
                     f"(range {spread:.2f} points, std {values.std(ddof=1):.2f}) → {ok}")
    draws = main.loc[main["method"] == "psp", "seed"].nunique()
    notes = budget_notes(main, ["psp"]) + ([f"{draws} draws < paper {PAPER['draws']}"] if draws < PAPER["draws"]
                                           else [])
    return combine(outcomes), lines, notes


def claim_c7(main, present, layers, runs, design, points):
    sweep = sweep_runs(runs, design)
    sweep = sweep[sweep["method"] == "psp"]
    sizes = sorted(sweep["samples"].unique())
    if "psp" not in design["sweep_methods"] or len(sizes) < 2:
        return "not run", ["needs psp in sweep_methods with at least two calibration sizes"], []
    outcomes, lines = [], []
    for target, group in sweep.groupby("target", sort=True):
        at = target_text(target)
        by_size = {n: group[group["samples"] == n] for n in sizes}
        means = ", ".join(f"{n}: {pm(g['top1_pct'].mean(), g['top1_pct'].std(ddof=1))}" for n, g in by_size.items())
        rise = paired_difference(by_size[sizes[-1]], by_size[sizes[0]], "top1_pct")
        rises = outcome(rise)
        if len(sizes) < 3:
            ok, last_text = "too few seeds", "saturation needs ≥ 3 sizes"
        else:
            last = paired_difference(by_size[sizes[-1]], by_size[sizes[-2]], "top1_pct")
            saturates = outcome(last) in ("not significant", "opposite")
            ok = rises if rises != "holds" else ("holds" if saturates else "still rising")
            state = "saturates" if saturates else "still rising"
            last_text = f"last step {sizes[-2]}→{sizes[-1]}: {describe(last)} ({state})"
        outcomes.append(ok)
        lines.append(f"{at}: psp top-1 % by images {means}; {sizes[0]}→{sizes[-1]}: {describe(rise)} "
                     f"({rises}); {last_text} → {ok}")
    notes = budget_notes(runs, ["psp"])
    if sizes[0] > PAPER["samples"][0] or sizes[-1] < PAPER["samples"][1]:
        notes.append(f"sizes {sizes[0]}…{sizes[-1]} narrower than the paper's {PAPER['samples'][0]}…"
                     f"{PAPER['samples'][1]}")
    return combine(outcomes), lines, notes


def claim_c8(main, present, layers, runs, design, points):
    retrain = retraining_methods(design, present)
    if "psp" not in present or not retrain:
        return "not run", [f"needs psp and a retraining method "
                           f"({', '.join(Catalogue.of(design).members('retraining'))})"], []
    outcomes, lines = [], []
    for target, group in main.groupby("target", sort=True):
        at = target_text(target)
        psp = group[group["method"] == "psp"]
        for method in retrain:
            other = group[group["method"] == method]
            if other.empty:  # not run at this target (config key method_targets)
                continue
            d = paired_difference(other, psp, "seconds")
            ratio = other["seconds"].mean() / psp["seconds"].mean()
            epochs = other["settings.epochs"].max()
            scaled = ratio * PAPER["retrain_epochs"] / epochs if epochs else math.nan
            ok = outcome(d)
            ok = "opposite" if ok == "holds" and ratio < 10 else ok
            outcomes.append(ok)
            lines.append(f"{at}: {summary(group, 'psp', 'seconds', 's')} vs "
                         f"{summary(group, method, 'seconds', 's')} ({epochs:g} epoch(s)); ratio {ratio:.1f}× "
                         f"(≈ {scaled:.0f}× at the paper's "
                         f"{PAPER['retrain_epochs']} epochs); {method} − psp: {pm(d['diff'], 2 * d['se'], 1)} s "
                         f"(± 2 SE) → {ok}")
    lines += compute_lines(points, retrain)
    return combine(outcomes), lines, budget_notes(main, ["psp"], retrain=retrain, points=points)


def best_of(group: pd.DataFrame, methods: list[str]) -> str | None:
    """The method of ``methods`` with the highest mean top-1 in ``group`` (None when none ran)."""
    means = group[group["method"].isin(methods)].groupby("method")["top1_pct"].mean()
    return None if means.empty else str(means.idxmax())


def layerwise_notes(main: pd.DataFrame, design: dict, points: pd.DataFrame, compared: list[str]) -> list[str]:
    """Why a verdict comparing PSP with ``compared`` is budget-limited by the layer-wise methods among them: a ladder
    of theirs that had not saturated; without ladders, layer_epochs below the model's saturated budget in the config
    (key layerwise_saturation). Ladders of methods the verdict does not compare do not limit it."""
    methods = [m for m in layerwise(design) if m in compared]
    with_ladder = laddered(points, methods)
    if with_ladder:
        return rising(points, with_ladder)
    rows = main[main["method"].isin(methods)]
    if rows.empty:
        return []
    used = rows["settings.layer_epochs"].max()
    saturated = design.get("layerwise_saturation", {}).get(main["model"].iloc[0])
    if saturated is None:
        return [f"layer_epochs {used:g}; the saturated budget was not measured for this model"]
    return [f"layer_epochs {used:g} < saturated {saturated}"] if used < saturated else []


def best_baseline_claim(main, present, design, points, candidates, label, extra=()):
    """PSP against the best of ``candidates`` at each target, with the individual comparisons listed."""
    wanted = [m for m in candidates if m in present]
    if "psp" not in present or not wanted:
        return "not run", [f"needs psp and at least one of {', '.join(candidates)}"], []
    outcomes, lines = [], []
    for target, group in main.groupby("target", sort=True):
        at = target_text(target)
        best = best_of(group, wanted)
        d = paired_difference(group[group["method"] == "psp"], group[group["method"] == best], "top1_pct")
        outcomes.append(outcome(d))
        lines.append(f"{at}: best {label} {summary(group, best)} vs {summary(group, 'psp')}; psp − {best}: "
                     f"{describe(d)} → {outcomes[-1]}")
        for a, b in extra:
            if a in present and b in present:
                d = paired_difference(group[group["method"] == a], group[group["method"] == b], "top1_pct")
                lines.append(f"{at}: {a} − {b}: {describe(d)}")
    lines += compute_lines(points, wanted)
    return combine(outcomes), lines, (budget_notes(main, ["psp"], points=points)
                                      + layerwise_notes(main, design, points, candidates))


def question_q1(main, present, layers, runs, design, points):
    recalibrated = with_bn(design)  # each listed with its gain over the released method it recalibrates
    gains = [(bn, bn.removesuffix("_bn")) for bn in recalibrated] + [("psp", m) for m in post_training(design)]
    return best_baseline_claim(main, present, design, points, recalibrated, "+BN baseline", gains)


def question_q2(main, present, layers, runs, design, points):
    if "psp" not in present or "oneshot_kd" not in present:
        return "not run", ["needs psp and oneshot_kd"], []
    outcomes, lines = difference_claim(main, "psp", ["oneshot_kd"])
    if "psp_no_penalty" in present:
        lines += difference_claim(main, "psp_no_penalty", ["oneshot_kd"])[1]
    return combine(outcomes), lines, budget_notes(main, ["psp"])


def question_q3(main, present, layers, runs, design, points):
    if "psp" not in present or "oneshot_ft" not in present:
        return "not run", ["needs psp and oneshot_ft"], []
    outcomes, lines = difference_claim(main, "psp", ["oneshot_ft"])
    return combine(outcomes), lines, budget_notes(main, ["psp"])


def question_q4(main, present, layers, runs, design, points):
    needed = ["psp", "psp_random", "oneshot_bn", "oneshot_bn_random"]
    if not set(needed) <= present:
        return "not run", [f"needs {', '.join(needed)}"], []
    outcomes, lines = [], []
    for target, group in main.groupby("target", sort=True):
        at = target_text(target)
        if not set(needed) <= set(group["method"]):  # not all four run at this target (method_targets)
            continue
        by_seed = group.pivot_table(index="seed", columns="method", values="top1_pct")[needed].dropna()
        drop_psp = by_seed["psp"] - by_seed["psp_random"]
        drop_bn = by_seed["oneshot_bn"] - by_seed["oneshot_bn_random"]
        d = mean_se(drop_bn - drop_psp)
        outcomes.append(outcome(d))
        lines.append(f"{at}: l2 → random costs psp {pm(drop_psp.mean(), drop_psp.std(ddof=1))} points "
                     f"({summary(group, 'psp_random')}) and oneshot_bn {pm(drop_bn.mean(), drop_bn.std(ddof=1))} "
                     f"points ({summary(group, 'oneshot_bn_random')}); difference of the drops: {describe(d)} → "
                     f"{outcomes[-1]}")
    return combine(outcomes), lines, budget_notes(main, ["psp"])


def question_q5(main, present, layers, runs, design, points):
    return best_baseline_claim(main, present, design, points, layerwise(design), "layer-wise method")


def question_q6(main, present, layers, runs, design, points):
    verdict, lines, notes = claim_c6(main, present, layers, runs, design, points)
    if verdict.startswith("does not hold"):  # every range already exceeds 0.2 points: more draws cannot narrow it
        notes = [n for n in notes if "draws" not in n]
    return verdict, lines, notes


# The methods each claim compares PSP with at matched compute (the claims that compare it with others).
COMPARED = {"C1": post_training, "C2": lambda design: Catalogue.of(design).members("retraining"),
            "C8": lambda design: Catalogue.of(design).members("retraining"), "Q1": lambda design: with_bn(design),
            "Q5": lambda design: layerwise(design)}

ASSESS = {"C1": claim_c1, "C2": claim_c2, "C3": _ablation_claim("psp_no_penalty"), "C4": _ablation_claim("psp_no_rec"),
          "C5": claim_c5, "C6": claim_c6, "C7": claim_c7, "C8": claim_c8, "Q1": question_q1, "Q2": question_q2,
          "Q3": question_q3, "Q4": question_q4, "Q5": question_q5, "Q6": question_q6}


def assess(runs: pd.DataFrame, layers: pd.DataFrame, design: dict, points: pd.DataFrame | None = None
           ) -> pd.DataFrame:
    """One verdict per setup and claim; ``points``: the budget ladders' points (``ladder_points``), if any."""
    rows = []
    points = ladder_points(runs.iloc[0:0]) if points is None else points
    for (dataset, model), setup_runs in runs.groupby(SETUP, sort=True):
        main = main_runs(setup_runs, design["default_samples"])
        present = set(main["method"])
        setup_layers = layers[(layers["dataset"] == dataset) & (layers["model"] == model)]
        setup_points = points[(points["dataset"] == dataset) & (points["model"] == model)]
        for claim, fn in ASSESS.items():
            verdict, lines, notes = fn(main, present, setup_layers, setup_runs, design, setup_points)
            limited = bool(notes) and verdict != "not run"
            matched = at_psp_compute(setup_points, COMPARED[claim](design)) if claim in COMPARED else ""
            rows.append({"dataset": dataset, "model": model, "claim": claim, "verdict": verdict,
                         "at_psp_compute": matched,
                         "budget_limited": limited, "budget": "; ".join(notes), "numbers": " | ".join(lines),
                         "category": category(verdict, limited)})
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, design: dict) -> str:
    out = ["# Claims C1–C8 and questions Q1–Q6: verdicts from this run", "",
           "Generated from results/tables/runs.csv by the psp-bench workflow: the numbers are this run's, not the "
           "paper's. Top-1 in %, differences in points, mean ± std over seeds unless marked ± 2 SE.", "",
           "**Rule.** Differences are paired by seed (the same calibration draw). A claimed difference (A better than "
           "B) *holds* when the mean of A − B exceeds two standard errors over at least three seeds, is *opposite* "
           "when B − A does, and *not significant* otherwise; with fewer than three seeds it is *inconclusive*. "
           "Over targets and compared methods a claim *holds* when every comparison holds, *does not hold* when none "
           "does (with the outcome in brackets when all comparisons share it), and is *mixed* otherwise. A verdict "
           "is *budget-limited* when the run's budget is below the "
           f"paper's (PSP {PAPER['penalty_epochs']} + {PAPER['rec_epochs']} epochs, retraining "
           f"{PAPER['retrain_epochs']} epochs, {PAPER['draws']} draws, {PAPER['samples'][0]}…{PAPER['samples'][1]} "
           "images), and *not run* when the methods it needs are absent. Where budget ladders ran (config key "
           "`budgets`), *at PSP's compute* sets PSP at its own budget against the best compared method given at "
           "most the FLOPs PSP executed (means over seeds, from the compute table), and a method with a ladder makes "
           "a verdict "
           "budget-limited only if its ladder had not saturated (its last doubling of compute still gained 0.5 "
           "points or more). Per-claim rules are listed below.", "",
           f"Main comparisons use {design['default_samples']} calibration images; seeds: "
           f"{', '.join(map(str, design['seeds']))}.", ""]
    for (dataset, model), part in table.groupby(SETUP, sort=True):
        out += [f"## {dataset} / {model}", "", "| claim | verdict | at PSP's compute | budget-limited |",
                "| --- | --- | --- | --- |"]
        for row in part.itertuples():
            out.append(f"| {row.claim} | {row.verdict} | {row.at_psp_compute or '–'} | "
                       f"{'yes' if row.budget_limited else 'no'} |")
        out.append("")
        for row in part.itertuples():
            out += [f"### {row.claim}: {CLAIMS[row.claim]}", "",
                    f"**Verdict: {row.verdict}**{' (budget-limited: ' + row.budget + ')' if row.budget_limited else ''}"
                    f". Rule: {RULES[row.claim]}", ""]
            out += [f"- {line}" for line in row.numbers.split(" | ") if line] + [""]
    return "\n".join(out).rstrip() + "\n"


def main(smk) -> None:
    log = start_log(smk.log[0])
    design = smk.params.design
    every = read_runs(smk.input.runs, ladders=True)
    layers = read_layers(smk.input.layers)
    table = assess(own_budget(every), layers, design, ladder_points(ladder_runs(every, design)))
    table.to_csv(smk.output.csv, index=False)
    with open(smk.output.md, "w") as f:
        f.write(markdown(table, design))
    log.info("claims: %s", ", ".join(f"{r.claim}={r.verdict}" for r in table.itertuples()))
