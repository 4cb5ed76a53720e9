# Collect: every run's metrics.json into one tidy CSV (one row per run), and every PSP variant's per-layer weight
# change into another.


rule collect_runs:
    input:
        batches=all_batches,
        latency=latency_tables,
        benchmarks=batch_benchmarks,
        previous=config["previous_runs"],
        previous_layers=previous_layer_tables,
    output:
        runs=report(
            "results/tables/runs.csv",
            caption="../report/table_runs.rst",
            category="Tables",
            labels={"table": "runs", "format": "csv"},
        ),
        layers="results/tables/layer_updates.csv",
    log:
        "logs/tables/collect_runs.log",
    benchmark:
        "results/benchmarks/tables/collect_runs.tsv"
    params:
        runs=run_params,
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"
