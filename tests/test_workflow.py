"""The Snakemake workflow: lint, a dry run of every shipped config, config validation, and one tiny end-to-end run
(tables, figures, claims, a rerun of the table rules, and methods registered from outside the package).

Dry runs call Snakemake's command line in this process (26 of them: a subprocess each cost 4 s of starting Python,
torch and Snakemake); lint, the SLURM stand-ins and the end-to-end run are subprocesses with the Python of this
interpreter, the end-to-end run in ``tmp_path`` with links to the repository's Snakefile and workflow/.
"""

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest
import snakemake.cli as snakemake_cli
import yaml

from psp.settings import PruneSettings

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.name for p in (ROOT / "config").glob("*.yaml"))
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
DESIGN_SETTINGS = {"ratio", "target_macs", "samples", "seed", "budget"}  # set by the design, not by `settings`
TABLES = ["comparison", "ablation", "calibration", "compute"]
FIGURES = ["accuracy_vs_macs", "accuracy_vs_samples", "calibration_cost", "ablation", "layer_updates",
           "speedup_vs_macs", "verdicts", "compute"]

TOY_MODULE = '''"""Methods registered from outside the package (the workflow test's `method_modules` entry): a
post-training method and a control, each a copy of oneshot."""

import copy
import os
import time
from pathlib import Path

from psp.methods import MethodResult, register_method
from psp.structure.removal import remove_channels


@register_method("toy", uses="none", family="post-training",
                 summary="test-only copy of oneshot, registered outside the package")
def toy(ctx):
    hold = os.environ.get("PSP_TEST_HOLD")
    if hold:  # the kill test: say "running", then wait to be killed
        Path(hold).touch()
        time.sleep(600)
    selection = ctx.select()
    return MethodResult(remove_channels(copy.deepcopy(ctx.model), selection, ctx.example), selection)


register_method("toy_control", uses="none", family="control", summary="an outside control (test only)")(toy)
'''

TINY_CONFIG = {
    "datasets": {"mnist5k": "mnist5k"},
    "models": {"tiny": {"arch": "resnet8_tiny", "epochs": 1, "seed": 0}},
    "methods": ["oneshot", "oneshot_bn", "psp", "toy", "toy_control"],
    "targets": [2.0, "r0.5"],
    "method_targets": {"psp": [2.0], "oneshot_bn": [2.0], "toy_control": [2.0]},  # r0.5: oneshot and toy
    "seeds": [0, 1],
    "samples": [32],
    "default_samples": 32,
    "sweep_methods": ["psp"],
    "method_settings": {"psp": {"penalty_epochs": 1, "rec_epochs": 1}},
    "method_modules": ["toy_methods"],
    "budgets": {"PSP": [2]},  # by family: psp also runs 2 + 2 epochs, at budget_targets
    "budget_targets": [2.0],
}


def snakemake(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run Snakemake with this interpreter; `psp` and `snakemake` resolve to the same environment."""
    bindir = str(Path(sys.executable).parent)
    env = (env or os.environ) | {"PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def dry_run(*args: str) -> subprocess.CompletedProcess:
    """`snakemake -n --nolock *args` in the repository, run in this process: Snakemake's own command line, without
    starting Python, torch and Snakemake again (4 s a run in a subprocess, 0.4-2 s here; this file makes 26)."""
    text = io.StringIO()
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
        try:
            snakemake_cli.main(["-n", "--nolock", *args])
            code = 0
        except SystemExit as e:
            code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1  # as the interpreter's status
    return subprocess.CompletedProcess(["snakemake", "-n", "--nolock", *args], code, text.getvalue(), "")


@pytest.mark.timeout(120)
def test_lint_is_clean():
    result = snakemake("--lint", "--nolock")
    assert result.returncode == 0, output(result)
    assert "Congratulations" in output(result)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("config", CONFIGS)
def test_dry_run_of_every_shipped_config(config):
    """Data roots and checkpoints are job-time checks: every config builds its DAG without them."""
    result = dry_run("--configfile", f"config/{config}")
    assert result.returncode == 0, output(result)
    text = output(result)
    assert "prune_model" in text or "Nothing to be done" in text, text


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("change", "named"), [
    ({"seedz": [0, 1, 2]}, "seedz"),
    ({"targets": [0.5]}, "targets"),
    ({"method_settings": {"psp": {"penalty_epoch": 4}}}, "penalty_epoch"),
    ({"methods": ["psp", "no_such_method"]}, "no_such_method"),
    ({"method_targets": {"psp": [9.0]}}, "method_targets"),
    ({"samples_seeds": {999: [0]}}, "samples_seeds"),
])
def test_bad_config_is_rejected_naming_the_key(tmp_path, change, named):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text()) | change
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = dry_run("--configfile", str(path))
    assert result.returncode != 0
    assert named in output(result), output(result)


@pytest.mark.timeout(120)
def test_design_keys_shape_the_runs(tmp_path):
    """method_targets narrows a method's targets, samples_seeds gives one calibration size more draws, and a
    model's part (results/<dataset>/<model>/runs.txt) asks for that model's runs only."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text()) | {
        "methods": ["oneshot", "psp"], "targets": [2.0, 3.0], "seeds": [0], "samples": [16, 32],
        "default_samples": 32, "sweep_methods": ["psp"], "sweep_targets": "all",
        "method_targets": {"oneshot": [2.0]}, "samples_seeds": {32: [0, 1, 2]}, "budgets": {}}
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(config))
    # oneshot: one target x n0 x seed 0; psp: two targets x (n16 with seed 0 + n32 with seeds 0-2); one batch per
    # method and seed: oneshot at seed 0, psp at seeds 0, 1 and 2
    expected_runs, expected_batches = 1 + 2 * (1 + 3), 1 + 3
    result = dry_run("-p", "--configfile", str(path))
    assert result.returncode == 0, output(result)
    assert _planned(output(result)) == (expected_batches, expected_runs)
    dataset, model = next(iter(config["datasets"])), next(iter(config["models"]))
    part = dry_run("-p", f"results/{dataset}/{model}/runs.txt", "--configfile", str(path))
    assert part.returncode == 0, output(part)
    assert _planned(output(part)) == (expected_batches, expected_runs)
    # A ladder (by family: psp is PSP's only member here; oneshot registers no budget) adds its rung at the budget
    # target, default size and every seed of that size, inside psp's own batches.
    path.write_text(yaml.safe_dump(config | {"budgets": {"PSP": [2], "control": [4]}, "budget_targets": [2.0]}))
    laddered = dry_run("-p", "--configfile", str(path))
    assert laddered.returncode == 0, output(laddered)
    assert _planned(output(laddered)) == (expected_batches, expected_runs + 3)
    assert output(laddered).count("/2.0/n32-x2,budget=2") == 3


def _planned(text: str) -> tuple[int, int]:
    """The prune_model jobs (batches) of a dry run's job table, and the runs their commands ask for (`--run`)."""
    counts = dict(line.split()[:2] for line in text.splitlines() if line.startswith("prune_model "))
    runs = sum(line.count(" --run target=") for line in text.splitlines() if " prune --method " in line)
    return int(counts.get("prune_model", 0)), runs


def test_schema_settings_match_the_library():
    """Every `psp prune` setting can be written in the config, with the library's default."""
    schema = yaml.safe_load(SCHEMA.read_text())
    properties = schema["$defs"]["settings"]["properties"]
    library = {f.name: f.default for f in fields(PruneSettings) if f.name not in DESIGN_SETTINGS}
    assert sorted(properties) == sorted(library), "workflow/schemas/config.schema.yaml $defs.settings is out of date"
    assert {k: v["default"] for k, v in properties.items()} == library


def _check_every_key_documented(node: dict, where: str) -> None:
    if node.get("type") == "object" and "properties" in node:
        assert node.get("additionalProperties") is False, f"{where}: additionalProperties must be false"
        for key, sub in node["properties"].items():
            assert "description" in sub and "default" in sub, f"{where}.{key}: needs description and default"
            _check_every_key_documented(sub, f"{where}.{key}")
    if isinstance(node.get("additionalProperties"), dict):
        _check_every_key_documented(node["additionalProperties"], f"{where}.*")


def test_schema_documents_every_key():
    schema = yaml.safe_load(SCHEMA.read_text())
    _check_every_key_documented(schema, "config")
    _check_every_key_documented(schema["$defs"]["settings"], "settings")


def _tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(folder / f"{name}.csv") for name in ["runs", *TABLES]}


def _without_times(frame: pd.DataFrame) -> pd.DataFrame:
    timed = ("seconds", "latency", "speedup", "time", "max_rss", "peak_rss", "torch_format")
    return frame[[c for c in frame.columns if not any(word in c for word in timed)]]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_tiny_end_to_end_run(tmp_path):
    """A tiny run produces every table, figure and claims.md; nothing is left to do afterwards; a killed job and
    the table rules rerun to identical tables; methods from a `method_modules` entry reach every table, figure and
    claim of the family they registered in, with no edit to the workflow."""
    (tmp_path / "Snakefile").symlink_to(ROOT / "Snakefile")
    (tmp_path / "workflow").symlink_to(ROOT / "workflow")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "toy_methods.py").write_text(TOY_MODULE)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path / "modules"),
                                                                     os.environ.get("PYTHONPATH")]))}

    result = snakemake("--cores", "2", cwd=tmp_path, env=env, timeout=840)
    assert result.returncode == 0, output(result)[-5000:]
    tables, figures = tmp_path / "results" / "tables", tmp_path / "results" / "figures"
    for name in TABLES:
        for ext in ("csv", "md", "tex"):
            assert (tables / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (figures / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"
    claims = (tables / "claims.md").read_text()
    assert all(f"C{i}" in claims for i in range(1, 9))

    runs = pd.read_csv(tables / "runs.csv")
    assert len(runs) == (5 + 2) * 2 + 2  # 5 methods at 2.0x and 2 at ratio 0.5, x 1 size x 2 seeds; psp at x2
    assert sorted(runs.loc[runs["method"] == "oneshot", "samples"].unique()) == [0]
    assert runs["path"].str.match(r"results/mnist5k/tiny/\w+/s\d/(2\.0|r0\.5)/n\d+(-x2)?/metrics\.json").all()
    assert runs["method_flops"].gt(0).all()  # every run's compute, counted as it ran
    psp = runs[runs["method"] == "psp"].set_index(["budget", "seed"])
    assert (psp.loc[2.0, "settings.rec_epochs"] == 2).all() and (psp.loc[1.0, "settings.rec_epochs"] == 1).all()
    assert (psp.loc[2.0, "method_flops"] > psp.loc[1.0, "method_flops"]).all()
    assert len(pd.read_csv(tables / "comparison.csv").query("method == 'psp'")) == 1  # the main tables: budget 1
    compute = pd.read_csv(tables / "compute.csv")
    assert sorted(compute.loc[compute["method"] == "psp", "budget"]) == [1.0, 2.0] and compute["front"].any()
    assert runs["max_rss_mib"].gt(0).all()  # each run's own peak memory
    shared = runs[(runs["target"] == 2.0) & (runs["seed"] == 0) & runs["method"].isin(["oneshot", "oneshot_bn", "toy"])]
    assert len(shared) == 3 and shared["latency_timed_with"].nunique() == 1  # one architecture, timed once
    assert shared["latency_b1"].nunique() == 1 and shared["onnx_difference"].notna().all()  # each checked itself
    at_ratio = runs[runs["target_kind"] == "ratio"]  # a ratio run records the ratio and the reduction it gave
    assert set(at_ratio["method"]) == {"oneshot", "toy"} and (at_ratio["target"] == 0.5).all()
    assert (at_ratio["ratio"] == 0.5).all() and (at_ratio["macs_reduction"] > 1).all()
    at_macs = runs[runs["target_kind"] == "macs"]  # a MACs run records the channel fraction it removed
    assert at_macs["target_macs"].eq(2.0).all() and at_macs["channels_removed_fraction"].between(0, 1).all()
    assert "| ratio 0.5 |" in (tables / "comparison.md").read_text()
    comparison = pd.read_csv(tables / "comparison.csv").drop_duplicates("method").set_index("method")["family"]
    assert comparison[["toy", "toy_control"]].to_dict() == {"toy": "post-training", "toy_control": "control"}
    ablation = pd.read_csv(tables / "ablation.csv")
    assert "toy_control" in set(ablation["method"]) and "toy" not in set(ablation["method"])  # PSP and controls only
    assert "an outside control (test only)" in (tables / "ablation.md").read_text()  # its registered summary
    c1 = claims.split("### C1:")[1].split("### C2:")[0]
    assert "psp − toy:" in c1, c1  # a post-training method is one of C1's baselines
    assert "ratio targets not compared" in c1  # C1 is stated at matched FLOPs
    logs = tmp_path / "logs" / "figures"
    for figure in ("accuracy_vs_macs", "speedup_vs_macs"):  # drawn in its family's panel and colour
        assert "toy (post-training)" in (logs / f"{figure}.log").read_text(), figure
        assert "toy_control (control)" in (logs / f"{figure}.log").read_text(), figure
    assert "toy_control" in (logs / "ablation.log").read_text()

    again = snakemake("-n", cwd=tmp_path, env=env)
    assert "Nothing to be done" in output(again), output(again)

    # A job killed with SIGKILL mid-run (pre-emption, OOM killer) and rerun by Snakemake: the same tables, every
    # table rule run again from nothing. The toy method holds while PSP_TEST_HOLD is set, so the kill lands mid-job
    # however fast the machine is.
    before = _tables(tables)
    targets = [f"results/tables/{name}.csv" for name in TABLES] + ["results/tables/claims.md"]
    killed = tmp_path / "results" / "mnist5k" / "tiny" / "toy" / "s1"  # the batch of toy's runs at seed 1
    shutil.rmtree(killed)
    shutil.rmtree(tables)
    held = tmp_path / "held"
    bindir = str(Path(sys.executable).parent)
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", *targets], cwd=tmp_path,
                            env=env | {"PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
                                       "PSP_TEST_HOLD": str(held)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while not held.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert held.exists(), "the held job never started"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "r0.5" / "n0" / "metrics.json").exists(), "the job should have been killed before it finished"
    assert snakemake("--unlock", cwd=tmp_path, env=env).returncode == 0  # a killed Snakemake leaves its lock
    resumed = snakemake("--cores", "2", "--rerun-incomplete", *targets, cwd=tmp_path, env=env)
    assert resumed.returncode == 0, output(resumed)[-5000:]
    after_kill = _tables(tables)
    for name in before:
        pd.testing.assert_frame_equal(_without_times(before[name]), _without_times(after_kill[name]), obj=name)


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("config", "models", "ratio", "macs"), [
    ("paper-cifar10.yaml", {"resnet50": "resnet50_cifar", "vgg19": "vgg19_cifar"}, "0.5", "4.0"),
    ("paper-cifar100.yaml", {"vgg19": "vgg19_cifar", "resnet18": "resnet18_cifar"}, "0.4", "3.0"),
])
def test_paper_configs_train_their_base_models_then_prune(config, models, ratio, macs):
    """The paper's CIFAR models are trained in the DAG (on CUDA, 200 epochs) before every pruning job, which prunes at
    the paper's global channel ratio and at matched MACs targets beside it."""
    result = dry_run("-p", "--configfile", f"config/{config}")
    assert result.returncode == 0, output(result)
    text = output(result)
    counts = dict(line.split()[:2] for line in text.splitlines() if line.startswith(("prune_model ", "train_base")))
    assert counts["train_base_model"] == "2"
    assert _planned(text) == (2 * 22 * 3, 504), counts  # a batch per model, method and seed; 504 runs
    for arch in models.values():
        assert f"train --model {arch} " in text and "--epochs 200" in text and "--device cuda" in text
    prune = [line for line in text.splitlines() if " prune --method " in line]
    at_ratio = [line for line in prune if f" --run target=r{ratio}," in line]
    assert at_ratio and all(f"/r{ratio}/n" in line for line in at_ratio)
    assert any(f" --run target={macs}," in line for line in prune)
    assert {line.split(" --method ")[1].split()[0] for line in at_ratio} >= {"psp", "l1", "gap"}


@pytest.mark.timeout(240)
def test_slurm_profile_groups_pruning_batches_into_fewer_submissions():
    """Eight pruning batches reach sbatch as two submissions of four, side by side on 4 CPUs (the real plugin,
    stand-in sbatch)."""
    result = subprocess.run([sys.executable, str(ROOT / "workflow" / "profiles" / "slurm-gpu" / "show_submission.py"),
                             "--profile", str(ROOT / "workflow" / "profiles" / "slurm"),
                             "--configfile", str(ROOT / "config" / "config.yaml"), "--batches", "8"],
                            capture_output=True, text=True, timeout=230)
    assert result.returncode == 0, output(result)
    calls = result.stdout.splitlines()
    assert len(calls) == 2 and all("group_prune" in c and "--cpus-per-task=4" in c for c in calls), calls


@pytest.mark.timeout(240)
def test_slurm_gpu_profile_submits_gpu_jobs_to_the_gpu_partition():
    """Jobs that declare gpu=1 reach sbatch as --gpus=1 on the GPU partition (the real plugin, stand-in sbatch)."""
    result = subprocess.run([sys.executable, str(ROOT / "workflow" / "profiles" / "slurm-gpu" / "show_submission.py"),
                             "--configfile", str(ROOT / "config" / "paper-cifar10.yaml")],
                            capture_output=True, text=True, timeout=230)
    assert result.returncode == 0, output(result)
    calls = result.stdout.splitlines()
    assert {c.split("--comment rule_")[1].split("_wildcards")[0] for c in calls} == {"train_base_model", "prune_model"}
    assert all(" -p gpu " in c and "--gpus=1" in c and "--cpus-per-gpu=8" in c for c in calls), calls
