"""The report of ``benchmarks/gpu_check.sh``: one table of its pruning runs, and whether CPU and CUDA agree.

The script prunes one checkpoint with the same settings on both devices (``ROOT/cpu/<method>``, ``ROOT/cuda/<method>``,
each a ``psp prune --out`` folder). Selection by weight magnitude and MACs counting read only the weights, so the
methods named by ``--exact`` (default ``oneshot``: select and remove, nothing trained) must give the same selection
and MACs on both devices; a difference is a device-dependent bug and fails the report. Methods that train before
selecting again (PSP re-selects on its phase-1 weights) may differ in floating point: their differences are
reported, not failed, but their MACs must still meet the target within the selection's ±2 %.

    python benchmarks/gpu_report.py results/reference/gpu            # prints the table, writes summary.{md,json}

Standard library only, so the report runs (and is tested) without torch.
"""

import argparse
import json
import sys
from pathlib import Path

TOLERANCE = 0.02  # select_by_target_macs meets the target within ±2 %
DEVICES = ("cpu", "cuda")  # the folders of pruning runs; others (train/, epoch/) hold training runs
DISAGREE = 3  # exit status when the devices disagree (a crash exits 1, bad arguments 2)


def read_run(folder: Path) -> dict:
    """metrics.json and selection.json of one ``psp prune --out`` folder."""
    metrics = json.loads((folder / "metrics.json").read_text())
    selection = json.loads((folder / "selection.json").read_text())
    return {"metrics": metrics, "selection": {k: set(v) for k, v in selection.items()}}


def runs_under(root: Path) -> dict[tuple[str, str], dict]:
    """(device, method) -> run, for every ROOT/<device>/<method>/metrics.json of a device in ``DEVICES``."""
    return {(device, f.parent.name): read_run(f.parent)
            for device in DEVICES for f in sorted(root.glob(f"{device}/*/metrics.json"))}


def table_row(device: str, method: str, m: dict) -> dict:
    def ms(key: str) -> float | None:
        return None if m.get(key) is None else m[key] * 1e3

    return {"device": device, "method": method, "top1": m["top1"], "macs_reduction": m["macs_reduction"],
            "seconds": m["seconds"], "latency_b1_ms": ms("latency_b1"), "latency_b64_ms": ms("latency_b64"),
            "speedup_b1": m.get("speedup_b1"), "speedup_b64": m.get("speedup_b64")}


def agreement(method: str, cpu: dict, cuda: dict, exact: bool) -> dict:
    """How far the CUDA run of a method is from its CPU run; ``ok`` is False where the report must fail."""
    a, b = cpu["selection"], cuda["selection"]
    differing = sum(len(a.get(g, set()) ^ b.get(g, set())) for g in set(a) | set(b))
    target = cpu["metrics"].get("target_macs")
    on_target = all(target is None or abs(r["metrics"]["macs_reduction"] / target - 1) <= TOLERANCE
                    for r in (cpu, cuda))
    same_macs = cpu["metrics"]["macs"] == cuda["metrics"]["macs"]
    ok = on_target and (not exact or (differing == 0 and same_macs))
    return {"method": method, "exact": exact, "channels_differing": differing, "macs_cpu": cpu["metrics"]["macs"],
            "macs_cuda": cuda["metrics"]["macs"], "top1_cpu": cpu["metrics"]["top1"],
            "top1_cuda": cuda["metrics"]["top1"], "on_target": on_target, "ok": ok}


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def markdown(rows: list[dict]) -> str:
    if not rows:
        return "(none)\n"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(r[k]) for k in header) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def report(root: Path, exact: set[str]) -> tuple[str, bool]:
    """The Markdown report of a gpu_check output folder and whether every agreement check passed."""
    runs = runs_under(root)
    if not runs:
        raise SystemExit(f"gpu_report: no <device>/<method>/metrics.json under {root}")
    table = [table_row(device, method, r["metrics"]) for (device, method), r in runs.items()]
    checks = [agreement(method, runs["cpu", method], runs["cuda", method], method in exact)
              for device, method in runs if device == "cpu" and ("cuda", method) in runs]
    missing = sorted(exact - {c["method"] for c in checks})
    text = (f"## Pruning runs\n\n{markdown(table)}\n## CPU vs CUDA\n\n{markdown(checks)}"
            + (f"\nmissing on one device: {', '.join(missing)}\n" if missing else ""))
    (root / "summary.json").write_text(json.dumps({"runs": table, "agreement": checks}, indent=2))
    (root / "summary.md").write_text(text)
    return text, not missing and all(c["ok"] for c in checks)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path, help="the gpu_check.sh output folder (ROOT/<device>/<method>/)")
    p.add_argument("--exact", nargs="*", default=["oneshot"],
                   help="methods whose selection and MACs must be identical on both devices")
    args = p.parse_args()
    text, ok = report(args.root, set(args.exact))
    print(text)
    if not ok:
        print("gpu_report: CPU and CUDA disagree (see the CPU vs CUDA table)", file=sys.stderr)
        sys.exit(DISAGREE)


if __name__ == "__main__":
    main()
