# Config validation, the design (which runs exist), wildcard constraints and every input/params function.
# The stage files (base, prune, collect, tables, figures) hold rules only.

import copy
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


# ----- configuration -----------------------------------------------------------------------------------------------


def _replace_embedded_config():
    """A --configfile on the command line replaces config/config.yaml instead of being merged into it: a merge would
    silently add the default's datasets, models and tiny budgets to a paper config."""
    if workflow.overwrite_configfiles and not workflow.config_settings.replace_workflow_config:
        config.clear()
        config.update(copy.deepcopy(dict(workflow.config_settings.overwrite_config)))


_replace_embedded_config()
USER_CONFIG = copy.deepcopy(config)  # as written, before the schema fills in defaults (settings passed as flags)
validate(config, schema="../schemas/config.schema.yaml")

# The library is imported only after the schema check, so a bad config fails in a second, not after torch loads.
from psp.errors import UsageError
from psp.methods import get_method, list_methods, load_method_modules
from psp.registry import catalogue
from psp.report.collect_runs import layers_beside
from psp.models import is_model
from psp.pruning_target import PruningTarget


def _registered_methods():
    """Load method_modules, then check the configured methods against the registry (the schema cannot know it)."""
    try:
        load_method_modules(config["method_modules"])
    except UsageError as e:
        raise ValueError(f"config key method_modules: {e}") from None
    registered = list_methods()
    wanted = registered if config["methods"] == "all" else config["methods"]
    for key, names in (("methods", wanted), ("method_settings", list(config["method_settings"]))):
        unknown = [name for name in names if name not in registered]
        if unknown:
            raise ValueError(
                f"config key {key}: unknown method(s) {', '.join(unknown)}; registered: {', '.join(registered)}"
            )
    return {name: get_method(name).uses for name in wanted}


def _check_models():
    for key, model in config["models"].items():
        model["arch"] = model["arch"] or key
        if not is_model(model["arch"]):
            raise ValueError(f"config key models.{key}.arch: unknown architecture {model['arch']!r} (see `psp list`)")
    stray = [key for key in config["layerwise_saturation"] if key not in config["models"]]
    if stray:
        raise ValueError(f"config key layerwise_saturation: {', '.join(stray)} not in models ({', '.join(config['models'])})")


def _psp_command():
    """The `psp` installed beside Snakemake's Python (a venv, activated or not), else `psp` from the jobs' PATH (e.g.
    the conda env of --sdm conda). The same string in every invocation, so the params trigger stays quiet."""
    beside = Path(sys.executable).with_name("psp")
    return shlex.quote(str(beside)) if beside.is_file() else "psp"


PSP = _psp_command()
METHOD_USES = _registered_methods()  # method -> 'calibration' | 'labels' | 'none', in config order
_check_models()
DATASETS = list(config["datasets"])
MODELS = list(config["models"])
TRAINED_MODELS = [m for m in MODELS if config["models"][m]["checkpoint"] is None]
IMPORTED_MODELS = [m for m in MODELS if config["models"][m]["checkpoint"] is not None]
SWEEP_METHODS = [
    m
    for m in METHOD_USES
    if METHOD_USES[m] == "calibration" and (config["sweep_methods"] == "all" or m in config["sweep_methods"])
]


def _targets(key, entries):
    """The path labels of a list of config targets (MACs reductions or r<ratio>), refusing a malformed entry in one
    line that names the key."""
    try:
        return [PruningTarget.parse(entry).label for entry in entries]
    except UsageError as e:
        raise ValueError(f"config key {key}: {e}") from None


TARGETS = _targets("targets", config["targets"])  # path labels: '2.0' (MACs reduction), 'r0.5' (global ratio)
SWEEP_TARGETS = TARGETS if config["sweep_targets"] == "all" else _targets("sweep_targets", config["sweep_targets"])
METHOD_TARGETS = {method: _targets(f"method_targets.{method}", entries)
                  for method, entries in config["method_targets"].items()}


def _check_sweep_targets():
    """sweep_targets must be among targets (the schema cannot compare two keys)."""
    stray = [t for t in SWEEP_TARGETS if t not in TARGETS]
    if stray:
        raise ValueError(f"config key sweep_targets: {stray} not in targets {TARGETS}")


_check_sweep_targets()


def _check_method_targets():
    """method_targets names configured methods and targets among `targets`; samples_seeds names configured sizes."""
    for method, targets in METHOD_TARGETS.items():
        if method not in METHOD_USES:
            raise ValueError(f"config key method_targets: {method} is not among methods ({', '.join(METHOD_USES)})")
        stray = [t for t in targets if t not in TARGETS]
        if stray:
            raise ValueError(f"config key method_targets.{method}: {stray} not in targets {TARGETS}")
    sizes = set(config["samples"]) | {config["default_samples"]}
    stray = [n for n in config["samples_seeds"] if int(n) not in sizes]
    if stray:
        raise ValueError(f"config key samples_seeds: sizes {stray} not in samples or default_samples ({sorted(sizes)})")


_check_method_targets()

BUDGET_TARGETS = _targets("budget_targets", config["budget_targets"])
CATALOGUE = catalogue()  # every registered method's family, uses, traits, summary and budget settings, in table order


def _check_budgets():
    """budget_targets are among `targets`; each key of `budgets` names a method, trait or family, and a method
    named directly registers budget settings (one matched by its trait or family and registering none has no
    ladder)."""
    stray = [t for t in BUDGET_TARGETS if t not in TARGETS]
    if stray:
        raise ValueError(f"config key budget_targets: {stray} not in targets {TARGETS}")
    groups = {g for entry in CATALOGUE.values() for g in [entry["family"], *entry["traits"]]}
    for key in config["budgets"]:
        if key in CATALOGUE and not CATALOGUE[key]["budget"]:
            raise ValueError(f"config key budgets.{key}: method {key} registers no budget settings to scale")
        if key not in CATALOGUE and key not in groups:
            raise ValueError(f"config key budgets: {key!r} is not a method, trait or family "
                             f"(families and traits: {', '.join(sorted(groups))})")


_check_budgets()


def budget_ladder(method):
    """The budget multiples a method runs at besides 1: its `budgets` entry by name, else by trait, else by family;
    none when it registers no budget settings or no budget target is set."""
    entry = CATALOGUE[method]
    if not entry["budget"] or not BUDGET_TARGETS:
        return []
    for key in [method, *entry["traits"], entry["family"]]:
        if key in config["budgets"]:
            return [b for b in config["budgets"][key] if b != 1]
    return []


def rung_label(budget):
    """The path suffix of a budget-ladder rung: '' at the method's own budget, '-x4' at four times its epochs."""
    return "" if budget == 1 else f"-x{budget:g}"


def samples_labels(method, target):
    """The calibration sizes a method runs with at a target: n0 for methods reading no data, the default size for
    'labels' methods (which read the labeled training split instead) and for calibration methods outside the sweep
    (sweep_methods x sweep_targets)."""
    uses = METHOD_USES[method]
    if uses == "none":
        return [0]
    if method in SWEEP_METHODS and target in SWEEP_TARGETS:
        return sorted(set(config["samples"]) | {config["default_samples"]})
    return [config["default_samples"]]


def method_targets(method):
    """The path labels of the targets a method runs at: its method_targets entry, else every target."""
    return METHOD_TARGETS.get(method, TARGETS)


def seeds_for(samples):
    """The seeds a calibration size runs with: its samples_seeds entry, else `seeds` (n0 runs use `seeds`)."""
    by_size = {int(n): seeds for n, seeds in config["samples_seeds"].items()}
    return by_size.get(int(samples), config["seeds"])


def alternatives(names):
    """A wildcard regex matching exactly these names (nothing when the list is empty)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


wildcard_constraints:
    dataset=alternatives(DATASETS),
    model=alternatives(MODELS),
    method=alternatives(list(METHOD_USES)),
    target=alternatives(TARGETS),
    samples=r"\d+",
    seed=r"\d+",


# ----- the design ----------------------------------------------------------------------------------------------------

# One pruning job (a batch) runs every target and calibration size of one method at one seed in one process and
# writes them under its folder, the job's declared output: each run's metrics.json, model.pt, selection.json,
# calib_indices.txt and the method's CSVs. A changed method reruns its own batches, a new seed only its own.
BATCH_PATTERN = "results/{dataset}/{model}/{method}/s{seed}"
RUN_PATTERN = "results/{dataset}/{model}/{method}/s{seed}/{target}/n{samples}{rung}/metrics.json"
LATENCY_PATTERN = "results/{dataset}/{model}/latency-s{seed}.csv"
TABLES = ["comparison", "ablation", "calibration", "compute"]
FIGURES = ["accuracy_vs_macs", "accuracy_vs_samples", "calibration_cost", "ablation", "layer_updates",
           "speedup_vs_macs", "verdicts", "compute"]


def run_identities():
    """One dict per pruning run of the design (the path is the identity): every method at its own budget (1), then
    the rungs of its budget ladder at the budget targets, default calibration size and every seed."""
    own = [
        {"dataset": d, "model": m, "method": method, "target": t, "samples": n, "seed": s, "budget": 1}
        for d in DATASETS
        for m in MODELS
        for method in METHOD_USES
        for t in method_targets(method)
        for n in samples_labels(method, t)
        for s in seeds_for(n)
    ]
    rungs = [
        {"dataset": d, "model": m, "method": method, "target": t, "samples": config["default_samples"], "seed": s,
         "budget": b}
        for d in DATASETS
        for m in MODELS
        for method in METHOD_USES
        for t in method_targets(method) if t in BUDGET_TARGETS
        for b in budget_ladder(method)
        for s in seeds_for(config["default_samples"])
    ]
    return own + rungs


def run_path(run):
    """A run's metrics.json."""
    return RUN_PATTERN.format(**run, rung=rung_label(run["budget"]))


def _runs_where(**fixed):
    """The run identities whose keys equal ``fixed`` (wildcard values, as strings)."""
    return [run for run in run_identities() if all(str(run[k]) == str(v) for k, v in fixed.items())]


def _batches(runs):
    """The batch folders of ``runs``, each once, in design order."""
    return list(dict.fromkeys(BATCH_PATTERN.format(**run) for run in runs))


def batch_runs(wildcards):
    """The `--run` flags of one batch: each run's target, calibration size (the default for n0 and 'labels' runs),
    seed and folder."""
    runs = _runs_where(dataset=wildcards.dataset, model=wildcards.model, method=wildcards.method,
                       seed=wildcards.seed)
    return " ".join(
        f"--run target={run['target']},samples={int(run['samples']) or config['default_samples']},"
        f"seed={run['seed']},out={Path(run_path(run)).parent}"
        + (f",budget={run['budget']:g}" if run["budget"] != 1 else "")
        for run in runs)


def all_batches(wildcards):
    return _batches(run_identities())


def run_params(wildcards):
    """Every run of the design with its metrics.json path."""
    return [run | {"path": run_path(run)} for run in run_identities()]


def seed_batches(wildcards):
    """The batches of one (dataset, model, seed): what one latency job times."""
    return _batches(_runs_where(dataset=wildcards.dataset, model=wildcards.model, seed=wildcards.seed))


def seed_run_metrics(wildcards):
    return [run_path(run)
            for run in _runs_where(dataset=wildcards.dataset, model=wildcards.model, seed=wildcards.seed)]


def latency_tables(wildcards):
    return list(dict.fromkeys(LATENCY_PATTERN.format(**run) for run in run_identities()))


def batch_benchmarks(wildcards):
    """The prune jobs' benchmark files (peak memory of runs that predate per-run measurement is read there)."""
    return [f"results/benchmarks/{batch.removeprefix('results/')}/prune.tsv" for batch in all_batches(wildcards)]


def previous_layer_tables(wildcards):
    """The per-layer tables kept beside the previous_runs files (layer_updates.csv), where there are any."""
    return [table for table in map(layers_beside, config["previous_runs"]) if Path(table).is_file()]


def model_batches(wildcards):
    """The batches of one (dataset, model): a part of the design that a 2-core machine can finish in one sitting."""
    return _batches(_runs_where(dataset=wildcards.dataset, model=wildcards.model))


def model_run_metrics(wildcards):
    return [run_path(run) for run in _runs_where(dataset=wildcards.dataset, model=wildcards.model)]


def get_final_output():
    return [
        "results/tables/runs.csv",
        "results/tables/claims.md",
        "results/tables/claims.csv",
        *expand("results/tables/{table}.{ext}", table=TABLES, ext=["csv", "md", "tex"]),
        *expand("results/figures/{figure}.{ext}", figure=FIGURES, ext=["png", "pdf"]),
    ]


# ----- base models ---------------------------------------------------------------------------------------------------


def model_config(wildcards):
    return config["models"][wildcards.model]


def data_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def model_arch(wildcards):
    return model_config(wildcards)["arch"]


def normalize_flag(wildcards):
    normalize = model_config(wildcards)["normalize"]
    return f"--normalize {normalize}" if normalize else ""


def train_flags(wildcards):
    m = model_config(wildcards)
    return (f"--epochs {m['epochs']} --seed {m['seed']} --lr {m['lr']} --batch-size {m['batch_size']} "
            f"--device {config['device']}")


def base_checkpoint(wildcards):
    """The checkpoint pruned for a (dataset, model): the trained model.pt, or the configured file (checked when the
    job starts, so a dry run needs no data)."""
    path = model_config(wildcards)["checkpoint"]
    if path is None:
        return f"results/{wildcards.dataset}/{wildcards.model}/base/model.pt"
    return path.replace("{dataset}", wildcards.dataset)


def base_model_inputs(wildcards):
    inputs = {"base": f"results/{wildcards.dataset}/{wildcards.model}/base/metrics.json"}
    if model_config(wildcards)["checkpoint"] is None:
        inputs["checkpoint"] = base_checkpoint(wildcards)
    return inputs


# ----- pruning -------------------------------------------------------------------------------------------------------


def _flag(name, value):
    """A `psp prune` flag: `--penalty-epochs 4`, or `--balanced` / `--no-balanced` for a boolean."""
    dashed = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{dashed}" if value else f"--no-{dashed}"
    return f"--{dashed} {shlex.quote(str(value))}"


def method_settings(method):
    """The settings written in the config for a method: `settings`, then `method_settings.<method>` on top."""
    return USER_CONFIG.get("settings", {}) | USER_CONFIG.get("method_settings", {}).get(method, {})


def all_cores():
    """Threads of a job that must run alone (latency): every core Snakemake was given (1 when no --cores is set,
    e.g. for --unlock or --lint)."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def gpus():
    """GPUs a training or pruning job asks the scheduler for (config key device)."""
    return 1 if config["device"] == "cuda" else 0


def prune_flags(wildcards):
    """Everything `psp prune` needs besides method, checkpoint, target, seed and out."""
    flags = [f"--model {model_arch(wildcards)}", f"--data {shlex.quote(data_spec(wildcards))}", normalize_flag(wildcards),
             f"--device {config['device']}"]
    settings = sorted(method_settings(wildcards.method).items())
    flags += [_flag(name, value) for name, value in settings if value is not None]
    flags += [f"--method-module {module}" for module in config["method_modules"]]
    return " ".join(f for f in flags if f)


# ----- tables, figures and claims --------------------------------------------------------------------------------------


def design_params():
    """What the table, figure and claim scripts need to know about the design."""
    return {
        "default_samples": config["default_samples"],
        "targets": TARGETS,
        "seeds": config["seeds"],
        "methods": METHOD_USES,
        "catalogue": CATALOGUE,
        "budget_targets": BUDGET_TARGETS,
        "sweep_methods": SWEEP_METHODS,
        "sweep_targets": SWEEP_TARGETS,
        "layerwise_saturation": config["layerwise_saturation"],
    }
