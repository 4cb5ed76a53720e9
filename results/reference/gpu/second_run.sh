#!/usr/bin/env bash
# Second device run (the first one's report crashed on epoch/ folders, and its archive was too large to come back):
# the CPU-vs-CUDA agreement steps of benchmarks/gpu_check.sh plus one training epoch, small files only.
set -u
ROOT=$PWD; O=/tmp/gpu; mkdir -p $O/logs
export PYTHONPATH="$ROOT:/tmp/site" PSP_METHOD_MODULES=psp.algorithms,baselines PYTHONUNBUFFERED=1
CK=.gpu/resnet56.th; DATA=imagefolder:/tmp/data/cifar10-jpg
C=(--model resnet56 --checkpoint $CK --data $DATA --normalize imagenet --target-macs 2.1 --samples 512 --seed 0)
s() { local n=$1; shift; local t=$SECONDS; "$@" > $O/logs/$n.log 2>&1; echo "$n rc=$? $((SECONDS-t)) s"; }
python3 -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)" | tee $O/device.txt
s dense python3 -m psp eval --model resnet56 --checkpoint $CK --data $DATA --normalize imagenet --device cuda --out $O/dense.json
for m in oneshot psp adaprune; do s cuda_$m python3 -m psp prune --method $m "${C[@]}" --device cuda --dense-metrics $O/dense.json --out $O/cuda/$m; done
for m in oneshot psp; do s cpu_$m python3 -m psp prune --method $m "${C[@]}" --device cpu --threads 16 --latency-repeats 0 --dense-metrics $O/dense.json --out $O/cpu/$m; done
s epoch_resnet18_cifar python3 -m psp train --model resnet18_cifar --data $DATA --epochs 1 --seed 0 --device cuda --latency-repeats 0 --out $O/epoch/resnet18_cifar
python3 benchmarks/gpu_report.py $O; echo "report rc=$?"
echo "total $SECONDS s" | tee -a $O/device.txt
find $O -name '*.pt' -delete
tar -czf $OUT/gpu.tgz -C /tmp gpu; ls -la $OUT
