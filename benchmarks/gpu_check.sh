#!/usr/bin/env bash
# GPU correctness and speed in one prepared run that fits a 10-minute window on one GPU (issue 15):
#   1. `psp train` for a few epochs on CUDA (resnet8_tiny on the embedded mnist5k);
#   2. benchmarks/cuda_smoke.py: PSP, AdaPrune and L1 with bf16 on a torchvision ResNet-18, synthetic images;
#   3. the public ResNet-56 at 2.1x fewer MACs with 512 images on CUDA: PSP, its variants (psp_no_penalty,
#      psp_no_balance, psp_no_rec, psp_plus, psp_fast), oneshot and two baselines (adaprune, l1), each with
#      CUDA-synchronised latency (psp prune times it: --latency-repeats, median after warm-up);
#   4. the same checkpoint on CPU with oneshot and psp: CPU-vs-CUDA agreement of MACs and selection
#      (benchmarks/gpu_report.py; oneshot must agree exactly);
#   5. a summary table, and PSP's `seconds` on CUDA for ResNet-56 at 2.1x.
#
#   benchmarks/gpu_check.sh [OUT]        # OUT: $1, else $OUT, else results/reference/gpu
#
# Settings from the environment: PSP_CHECKPOINT (../shared/models/cifar10/resnet56.th), PSP_DATA
# (imagefolder:../shared/data/cifar10-jpg), PYTHON (python: the environment with psp installed), PSP_CPU_THREADS
# (all cores). Exits non-zero with a message naming the step that failed; every step's log is in OUT/logs/.
set -euo pipefail

OUT_DIR=${1:-${OUT:-results/reference/gpu}}
CHECKPOINT=${PSP_CHECKPOINT:-../shared/models/cifar10/resnet56.th}
DATA=${PSP_DATA:-imagefolder:../shared/data/cifar10-jpg}
PY=${PYTHON:-python}
CPU_THREADS=${PSP_CPU_THREADS:-$(nproc)}
CUDA_METHODS=(psp psp_no_penalty psp_no_balance psp_no_rec psp_plus psp_fast oneshot adaprune l1)
CPU_METHODS=(oneshot psp)
COMMON=(--model resnet56 --checkpoint "$CHECKPOINT" --data "$DATA" --normalize imagenet --target-macs 2.1
        --samples 512 --seed 0)

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

[[ -f $CHECKPOINT ]] || fail "checkpoint $CHECKPOINT does not exist (set PSP_CHECKPOINT)"
[[ $DATA != imagefolder:* || -d ${DATA#imagefolder:} ]] || fail "data root ${DATA#imagefolder:} does not exist (set PSP_DATA)"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || fail "no CUDA device visible to $PY (torch.cuda.is_available() is False)"
mkdir -p "$OUT_DIR/logs"
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)" \
    | tee "$OUT_DIR/device.txt"

step train "$PY" -m psp train --model resnet8_tiny --data mnist5k --epochs 3 --seed 0 --device cuda \
    --out "$OUT_DIR/train"
step cuda_smoke "$PY" benchmarks/cuda_smoke.py --device cuda --out "$OUT_DIR/cuda_smoke"
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
"$PY" benchmarks/gpu_report.py "$OUT_DIR" || fail "CPU and CUDA disagree (table above; $OUT_DIR/summary.md)"
"$PY" - "$OUT_DIR" <<'EOF'
import json, sys
m = json.load(open(f"{sys.argv[1]}/cuda/psp/metrics.json"))
print(f"PSP on CUDA, ResNet-56 at {m['macs_reduction']:.2f}x fewer MACs, {m['samples']} images: "
      f"{m['seconds']:.1f} s (whole command {m['seconds_total']:.1f} s), top1 {m['top1']:.4f}")
EOF
echo "gpu_check: passed; everything is under $OUT_DIR"
