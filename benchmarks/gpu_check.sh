#!/usr/bin/env bash
# GPU correctness and speed in one prepared run of at most 8 minutes on one GPU (issues 15 and 25), from any copy of
# the checkout (the library is taken from this script's checkout; nothing is read from outside but what you name):
#   1. `psp train` for a few epochs on CUDA (resnet8_tiny on the embedded mnist5k);
#   2. benchmarks/cuda_smoke.py: PSP, AdaPrune and L1 with bf16 on a torchvision ResNet-18, synthetic images;
#   3. one training epoch of each of the paper's CIFAR models (vgg19_cifar, resnet50_cifar, resnet18_cifar) on the
#      given data, with the fast loop (decoded-image cache, augmentation on the device, channels-last, bf16):
#      seconds per epoch and training images per second, data included;
#   4. the given ResNet-56 checkpoint at 2.1x fewer MACs with 512 images on CUDA: PSP, its variants (psp_no_balance,
#      psp_no_rec, psp_plus, psp_fast), oneshot and two baselines (adaprune, l1), each with
#      CUDA-synchronised latency;
#   5. the same checkpoint on CPU with oneshot and psp: CPU-vs-CUDA agreement of MACs and selection
#      (benchmarks/gpu_report.py; oneshot must agree exactly);
#   6. a summary: the runs' table, the training throughput, PSP's `seconds` on CUDA, and the total time.
#
#   PSP_CHECKPOINT=path/to/resnet56.th PSP_DATA=imagefolder:path/to/cifar10-jpg benchmarks/gpu_check.sh [OUT]
#
# OUT: $1, else $OUT, else results/reference/gpu. Required: PSP_CHECKPOINT (an option-A ResNet-56 checkpoint, e.g. the
# public one) and PSP_DATA (a CIFAR-10 data spec: cifar10:ROOT or imagefolder:ROOT). Optional: PYTHON (python: an
# environment with torch, torchvision, timm, torch-pruning, onnxruntime, mlxtend, pandas; numba where present, for
# PSP on CPU), PSP_CPU_THREADS (all cores). Exits non-zero with a message naming the step that failed; every step's
# log is in OUT/logs/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=${1:-${OUT:-results/reference/gpu}}
PY=${PYTHON:-python}
CPU_THREADS=${PSP_CPU_THREADS:-$(nproc)}
BUDGET_S=480
CUDA_METHODS=(psp psp_no_balance psp_no_rec psp_plus psp_fast oneshot adaprune l1)  # psp_fast: PSP without phase 1
CPU_METHODS=(oneshot psp)
PAPER_MODELS=(vgg19_cifar resnet50_cifar resnet18_cifar)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# The built-in methods are entry points of the installed package; a checkout on PYTHONPATH names them instead.
export PSP_METHOD_MODULES="${PSP_METHOD_MODULES:-psp.algorithms,baselines}"

fail() { echo "gpu_check: FAILED: $*" >&2; exit 1; }

# Run one step with its output in OUT/logs/<name>.log; on failure show the log's end and stop.
step() {
    local name=$1; shift
    local start=$SECONDS
    echo "== $name"
    if ! "$@" > "$OUT_DIR/logs/$name.log" 2>&1; then
        tail -n 20 "$OUT_DIR/logs/$name.log" >&2
        fail "$name (log: $OUT_DIR/logs/$name.log)"
    fi
    echo "   $((SECONDS - start)) s"
}

[[ -n ${PSP_CHECKPOINT:-} ]] || fail "set PSP_CHECKPOINT to an option-A ResNet-56 checkpoint (e.g. the public resnet56.th)"
[[ -n ${PSP_DATA:-} ]] || fail "set PSP_DATA to a CIFAR-10 data spec (imagefolder:ROOT or cifar10:ROOT)"
CHECKPOINT=$PSP_CHECKPOINT
DATA=$PSP_DATA
[[ -f $CHECKPOINT ]] || fail "checkpoint $CHECKPOINT does not exist (PSP_CHECKPOINT)"
[[ $DATA != *:* || -d ${DATA#*:} ]] || fail "data root ${DATA#*:} does not exist (PSP_DATA)"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || fail "no CUDA device visible to $PY (torch.cuda.is_available() is False)"
COMMON=(--model resnet56 --checkpoint "$CHECKPOINT" --data "$DATA" --normalize imagenet --target-macs 2.1
        --samples 512 --seed 0)
mkdir -p "$OUT_DIR/logs"
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)" \
    | tee "$OUT_DIR/device.txt"
git -C "$ROOT" rev-parse HEAD 2>/dev/null | sed 's/^/commit: /' | tee -a "$OUT_DIR/device.txt" || true

step train "$PY" -m psp train --model resnet8_tiny --data mnist5k --epochs 3 --seed 0 --device cuda \
    --latency-repeats 0 --out "$OUT_DIR/train"
step cuda_smoke "$PY" "$ROOT/benchmarks/cuda_smoke.py" --device cuda --out "$OUT_DIR/cuda_smoke"
for model in "${PAPER_MODELS[@]}"; do
    step "epoch_$model" "$PY" -m psp train --model "$model" --data "$DATA" --epochs 1 --seed 0 --device cuda \
        --latency-repeats 0 --out "$OUT_DIR/epoch/$model"
done
step dense "$PY" -m psp eval --model resnet56 --checkpoint "$CHECKPOINT" --data "$DATA" --normalize imagenet \
    --device cuda --out "$OUT_DIR/dense.json"
for method in "${CUDA_METHODS[@]}"; do
    step "cuda_$method" "$PY" -m psp prune --method "$method" "${COMMON[@]}" --device cuda \
        --dense-metrics "$OUT_DIR/dense.json" --out "$OUT_DIR/cuda/$method"
done
for method in "${CPU_METHODS[@]}"; do
    step "cpu_$method" "$PY" -m psp prune --method "$method" "${COMMON[@]}" --device cpu --threads "$CPU_THREADS" \
        --latency-repeats 0 --dense-metrics "$OUT_DIR/dense.json" --out "$OUT_DIR/cpu/$method"
done

echo
report_rc=0
"$PY" "$ROOT/benchmarks/gpu_report.py" "$OUT_DIR" || report_rc=$?
(( report_rc != 3 )) || fail "CPU and CUDA disagree (table above; $OUT_DIR/summary.md)"
(( report_rc == 0 )) || fail "benchmarks/gpu_report.py failed (exit $report_rc; its traceback is above)"
"$PY" - "$OUT_DIR" "${PAPER_MODELS[@]}" <<'EOF' | tee "$OUT_DIR/training.md"
import json, sys
root, models = sys.argv[1], sys.argv[2:]
print("| model | seconds per epoch | training images/s | amp | channels_last |\n|---|---|---|---|---|")
for model in models:
    m = json.load(open(f"{root}/epoch/{model}/metrics.json"))
    s = m["settings"]
    images = s.get("subset") or 50000  # CIFAR-10's training split
    print(f"| {model} | {m['seconds']:.1f} | {images / m['seconds']:.0f} | {s.get('amp')} | {s.get('channels_last')} |")
m = json.load(open(f"{root}/cuda/psp/metrics.json"))
print(f"\nPSP on CUDA, ResNet-56 at {m['macs_reduction']:.2f}x fewer MACs, {m['samples']} images: "
      f"{m['seconds']:.1f} s (whole command {m['seconds_total']:.1f} s), top1 {m['top1']:.4f}")
EOF
echo "total: $SECONDS s (budget $BUDGET_S s)" | tee -a "$OUT_DIR/device.txt"
(( SECONDS <= BUDGET_S )) || echo "gpu_check: over the $BUDGET_S s budget: shorten a step before committing" >&2
echo "gpu_check: passed; everything is under $OUT_DIR"
