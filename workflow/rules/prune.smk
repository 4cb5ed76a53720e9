# Pruning: one job per dataset x model x method x seed runs that method at every target (a MACs reduction, path
# label 2.0, or a global channel ratio, r0.5) and calibration size of the design in one `psp prune` process
# (`--run`, once per run), so torch, the data, the checkpoint and the support probe load once per batch. The batch
# folder is the job's output: under it, each run's <target>/n<samples>/ holds metrics.json, model.pt,
# selection.json, calib_indices.txt (for methods that read data) and the method's CSVs (losses.csv,
# weight_change.csv, ...). No latency is timed here (--latency-repeats 0): the measure_latency jobs time every model
# alone.


rule prune_model:
    input:
        unpack(base_model_inputs),
    output:
        directory(BATCH_PATTERN),
    log:
        "logs/{dataset}/{model}/{method}/s{seed}/prune.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/{method}/s{seed}/prune.tsv"
    params:
        psp=PSP,
        checkpoint=base_checkpoint,
        runs=batch_runs,
        flags=prune_flags,
    resources:
        gpu=gpus(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    shell:
        "{params.psp} prune --method {wildcards.method} --checkpoint {params.checkpoint:q} {params.runs} "
        "--dense-metrics {input.base:q} --threads {threads} --latency-repeats 0 {params.flags} "
        "> {log:q} 2>&1"


# A part of the design: every run of one (dataset, model), for machines that split a reference into sittings
# (`snakemake results/<dataset>/<model>/runs.txt --configfile ...`); the file lists the runs' metrics.json paths.
rule model_runs:
    input:
        model_batches,
    output:
        "results/{dataset}/{model}/runs.txt",
    log:
        "logs/{dataset}/{model}/runs.log",
    params:
        metrics=model_run_metrics,
    localrule: True
    conda:
        "../envs/psp.yaml"
    shell:
        "printf '%s\\n' {params.metrics:q} > {output:q} 2> {log:q}"
