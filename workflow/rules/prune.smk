# Pruning: one `psp prune` run per dataset x model x method x target x calibration size x seed; a target is a MACs
# reduction (path label 2.0, --target-macs) or a global channel ratio (r0.5, --ratio). No latency is timed
# here (--latency-repeats 0): the measure_latency job times every model alone, and timing beside other jobs was
# repeated work (about 2-3 s of each ResNet-56 job).
# The path is the identity; the run folder also holds model.pt, selection.json and, for PSP variants, losses.csv
# and weight_change.csv (read by collect_runs next to metrics.json).


rule prune_model:
    input:
        unpack(base_model_inputs),
    output:
        metrics="results/{dataset}/{model}/{method}/{target}/n{samples}/s{seed}/metrics.json",
    log:
        "logs/{dataset}/{model}/{method}/{target}/n{samples}/s{seed}/prune.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/{method}/{target}/n{samples}/s{seed}/prune.tsv"
    params:
        psp=PSP,
        checkpoint=base_checkpoint,
        samples=prune_samples,
        target=target_flags,
        flags=prune_flags,
        out=subpath(output.metrics, parent=True),
    resources:
        gpu=gpus(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    shell:
        "{params.psp} prune --method {wildcards.method} --checkpoint {params.checkpoint:q} {params.target} "
        "--samples {params.samples} --seed {wildcards.seed} --dense-metrics {input.base:q} --out {params.out:q} "
        "--threads {threads} --latency-repeats 0 {params.flags} "
        "> {log:q} 2>&1"


# A part of the design: every run of one (dataset, model), for machines that split a reference into sittings
# (`snakemake results/<dataset>/<model>/runs.txt --configfile ...`); the file lists the runs' metrics.json paths.
rule model_runs:
    input:
        model_run_metrics,
    output:
        "results/{dataset}/{model}/runs.txt",
    log:
        "logs/{dataset}/{model}/runs.log",
    localrule: True
    conda:
        "../envs/psp.yaml"
    shell:
        "printf '%s\\n' {input:q} > {output:q} 2> {log:q}"
