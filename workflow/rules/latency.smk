# Latency: the pruned models of one (dataset, model, seed) and their dense model timed in one job that runs alone
# (threads = all cores), so that no other job competes for the CPU while the clock runs, in eager PyTorch and ONNX
# Runtime; a new seed times only its own models. Its figures replace the in-job ones in the tables.


rule measure_latency:
    input:
        seed_batches,
    output:
        LATENCY_PATTERN,
    log:
        "logs/{dataset}/{model}/latency-s{seed}.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/latency-s{seed}.tsv"
    params:
        metrics=seed_run_metrics,
    threads: all_cores()
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/measure_latency.py"
