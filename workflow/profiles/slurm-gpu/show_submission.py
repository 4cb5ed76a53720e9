"""Print the sbatch calls a SLURM profile makes for a config, without a cluster.

Snakemake runs with the real executor plugin in a scratch copy of the workflow, with stand-ins for sbatch, sacct,
squeue, sinfo and sacctmgr first on PATH: sbatch records its arguments and refuses the job, so nothing runs and
the plugin's own submission (partition, --gpus, --cpus-per-gpu, memory, time) is what gets printed. It asks for
one base-model training job (the config's second trained model, if any) and ``--batches`` pruning jobs (batches of
runs: one method at one seed each) of the first model (whose base model is faked in the scratch copy): with a
profile that groups them (workflow/profiles/slurm), several batches go in one submission.

    python workflow/profiles/slurm-gpu/show_submission.py --configfile config/paper-cifar10.yaml
    python workflow/profiles/slurm-gpu/show_submission.py --profile workflow/profiles/slurm \
        --configfile config/config.yaml --batches 8
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
FAKE_SBATCH = '#!/bin/sh\necho "sbatch $*" >> "{log}"\ncat > /dev/null\necho "stand-in: not submitted" >&2\nexit 1\n'
FAKE_QUIET = "#!/bin/sh\nexit 0\n"


def _targets(config: dict, scratch: Path, batches: int) -> list[str]:
    """A training job of the second trained model and ``batches`` pruning jobs of the first (its base faked)."""
    dataset = next(iter(config["datasets"]))
    models = list(config["models"])
    first = models[0]
    base = scratch / "results" / dataset / first / "base"
    base.mkdir(parents=True)
    for name in ("model.pt", "metrics.json"):
        (base / name).touch()
    methods = ["psp", "oneshot", "gap", "l1"] if config.get("methods", "all") == "all" else config["methods"]
    seeds = config.get("seeds", [0])
    targets = [f"results/{dataset}/{first}/{method}/s{seed}" for seed in seeds for method in methods][:batches]
    trained = [m for m in models[1:] if not config["models"][m].get("checkpoint")]
    return [f"results/{dataset}/{trained[0]}/base/metrics.json", *targets] if trained else targets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configfile", type=Path, default=ROOT / "config" / "paper-cifar10.yaml")
    p.add_argument("--profile", type=Path, default=Path(__file__).resolve().parent)
    p.add_argument("--batches", type=int, default=1, help="pruning jobs to ask for (default: %(default)s)")
    args = p.parse_args()
    config = yaml.safe_load(args.configfile.read_text())
    with tempfile.TemporaryDirectory(prefix="show_submission_") as tmp:
        scratch, bindir = Path(tmp) / "work", Path(tmp) / "bin"
        scratch.mkdir()
        bindir.mkdir()
        for name in ("Snakefile", "workflow"):
            (scratch / name).symlink_to(ROOT / name)
        log = Path(tmp) / "sbatch.txt"
        (bindir / "sbatch").write_text(FAKE_SBATCH.format(log=log))
        for name in ("sacct", "squeue", "sinfo", "sacctmgr", "sshare", "scancel"):
            (bindir / name).write_text(FAKE_QUIET)
        for tool in bindir.iterdir():
            tool.chmod(0o755)
        path = os.pathsep.join([str(bindir), str(Path(sys.executable).parent), os.environ["PATH"]])
        env = os.environ | {"PATH": path}
        # The plugin waits 40 s before its first status check by default; the stand-in refuses every job, so there
        # is nothing to wait for.
        cmd = [sys.executable, "-m", "snakemake", *_targets(config, scratch, args.batches),
               "--profile", str(args.profile.resolve()), "--retries", "0", "--keep-going", "--nolock",
               "--slurm-init-seconds-before-status-checks", "1",
               "--configfile", str(args.configfile.resolve())]
        result = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True, timeout=300)
        if not log.is_file():
            sys.exit(f"show_submission: no sbatch call was made; snakemake said:\n{result.stdout}{result.stderr}")
        for line in log.read_text().splitlines():
            print(line.split(" --wrap=")[0])


if __name__ == "__main__":
    main()
