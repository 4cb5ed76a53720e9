"""collect_runs: the latency measured alone replaces the in-job figures for both runtimes; ``previous_runs``: earlier
runs join this design's, a remade run replaces its earlier row, and a file that is not a runs.csv is refused naming
it; a joined run brings its per-layer rows from beside the runs.csv it came from."""


import pandas as pd
import pytest

from psp.report.collect_runs import layers_beside, with_latency_alone, with_previous, with_previous_layers
from psp.report.summaries import read_runs


def _runs(method: str, seeds: list[int], top1: float, budget: float | None = 1.0) -> pd.DataFrame:
    """Runs as this design collects them; ``budget=None``: as a runs.csv from before budget ladders."""
    runs = pd.DataFrame([{"dataset": "d", "model": "m", "method": method, "target": 2.1, "samples": 512, "seed": s,
                          "budget": budget, "top1": top1} for s in seeds])
    return runs if budget is not None else runs.drop(columns="budget")


def test_previous_rows_join_and_remade_runs_win(tmp_path):
    old = pd.concat([_runs("psp", [0, 1], 0.6), _runs("l1", [0], 0.3)])
    path = tmp_path / "runs.csv"
    old.to_csv(path, index=False)
    merged = with_previous(_runs("psp", [1], 0.9), [str(path)])
    assert len(merged) == 3
    psp = merged[merged["method"] == "psp"].set_index("seed")
    assert psp.loc[1, "top1"] == 0.9 and psp.loc[1, "reused_from"] == ""
    assert psp.loc[0, "top1"] == 0.6 and psp.loc[0, "reused_from"] == str(path)
    assert merged.loc[merged["method"] == "l1", "reused_from"].tolist() == [str(path)]


def test_a_runs_table_from_before_budget_ladders_joins_at_the_own_budget(tmp_path):
    path = tmp_path / "old.csv"
    _runs("psp", [0, 1], 0.6, budget=None).to_csv(path, index=False)
    runs = pd.concat([_runs("psp", [1], 0.9, budget=1), _runs("psp", [1], 0.95, budget=4)])
    merged = with_previous(runs, [str(path)])
    assert sorted(zip(merged["seed"], merged["budget"], merged["top1"], strict=True)) == [
        (0, 1.0, 0.6), (1, 1.0, 0.9), (1, 4.0, 0.95)]


def test_rows_from_before_ratio_targets_get_their_target_kind_when_joined(tmp_path):
    """A runs.csv made before ratio targets has no target_kind; joined to a newer design's runs, its rows must not
    come out with an empty kind (the claims compare at MACs targets only, and would drop them)."""
    path = tmp_path / "old.csv"
    pd.concat([_runs("gap", [0], 0.2), _runs("gap", [0], 0.1).assign(target=0.5)]).to_csv(path, index=False)
    merged = with_previous(_runs("psp", [0], 0.6).assign(target_kind="macs"), [str(path)])
    kinds = dict(zip(merged["method"] + "@" + merged["target"].astype(str), merged["target_kind"], strict=True))
    assert kinds == {"psp@2.1": "macs", "gap@2.1": "macs", "gap@0.5": "ratio"}
    merged.assign(top1_dense=0.8).to_csv(tmp_path / "runs.csv", index=False)
    read = read_runs(str(tmp_path / "runs.csv"))
    assert read["target_kind"].notna().all() and len(read) == 3


def test_two_previous_files_do_not_duplicate(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    _runs("psp", [0], 0.6).to_csv(first, index=False)
    _runs("psp", [0, 1], 0.5).to_csv(second, index=False)
    merged = with_previous(_runs("l1", [0], 0.3), [str(first), str(second)])
    assert sorted(zip(merged["method"], merged["seed"], merged["top1"], strict=True)) == [
        ("l1", 0, 0.3), ("psp", 0, 0.6), ("psp", 1, 0.5)]


def test_not_a_runs_table_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    pd.DataFrame({"method": ["psp"], "top1": [0.5]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"other\.csv lacks the columns dataset, model, target, samples, seed"):
        with_previous(_runs("psp", [0], 0.9), [str(path)])


def test_latency_alone_replaces_in_job_figures_in_both_runtimes():
    runs = pd.DataFrame([{"path": "a/metrics.json", "top1": 0.5, "latency_b1": None, "speedup_b64_ort": None,
                          "torch_format_b1": None}])
    alone = pd.DataFrame([{"path": "a/metrics.json", "latency_b1_alone": 0.002, "speedup_b64_ort_alone": 1.8,
                           "torch_format_b1_alone": "channels_last", "latency_threads": 2}])
    merged = with_latency_alone(runs, alone).iloc[0]
    assert (merged["latency_b1"], merged["speedup_b64_ort"], merged["torch_format_b1"]) == (0.002, 1.8,
                                                                                           "channels_last")
    assert {"latency_b1_injob", "speedup_b64_ort_injob", "torch_format_b1_injob"} <= set(merged.index)
    assert merged["top1"] == 0.5 and merged["latency_threads"] == 2


def _layers(method: str, seeds: list[int], change: float) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "d", "model": "m", "method": method, "target": 2.1, "samples": 512, "seed": s,
                          "budget": 1.0, "layer_index": i, "layer": f"conv{i}", "relative_change": change}
                         for s in seeds for i in range(2)])


def test_joined_runs_bring_their_layer_rows_from_beside_their_runs_csv(tmp_path):
    """C5 compares psp's per-layer weight change with psp_no_balance's: a run joined from an earlier sitting brings
    its rows from the layer_updates.csv beside that sitting's runs.csv; a remade run keeps this design's rows, and a
    runs.csv with no table beside it brings none."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "runs.csv", tmp_path / "b" / "runs.csv"
    pd.concat([_runs("psp", [0, 1], 0.6), _runs("psp_no_balance", [0], 0.7)]).to_csv(first, index=False)
    pd.concat([_layers("psp", [0, 1], 0.01), _layers("psp_no_balance", [0], 0.3)]).to_csv(
        layers_beside(str(first)), index=False)
    _runs("l1", [0], 0.3).to_csv(second, index=False)
    runs = with_previous(_runs("psp_no_balance", [0], 0.8), [str(first), str(second)])
    layers = with_previous_layers(_layers("psp_no_balance", [0], 0.2), runs,
                                  {str(first): layers_beside(str(first))})
    got = layers.groupby(["method", "seed"])["relative_change"].agg(["count", "first"]).reset_index()
    assert got.values.tolist() == [["psp", 0, 2, 0.01], ["psp", 1, 2, 0.01], ["psp_no_balance", 0, 2, 0.2]]
