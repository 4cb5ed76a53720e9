# Latency: every pruned model and its dense model timed in one job that runs alone (threads = all cores), so that
# no other job competes for the CPU while the clock runs, in eager PyTorch and ONNX Runtime. Its figures replace the
# in-job ones in the tables.


rule measure_latency:
    input:
        run_metrics,
    output:
        "results/tables/latency.csv",
    log:
        "logs/tables/measure_latency.log",
    benchmark:
        "results/benchmarks/tables/measure_latency.tsv"
    threads: all_cores()
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/measure_latency.py"
