# Base models: trained from the config by `psp train`, or imported from a checkpoint and evaluated by `psp eval`.
# Both write results/{dataset}/{model}/base/metrics.json (the dense model's test metrics).
# Base models run first (priority): every pruning run of a model waits for its base, and a base job wanting more
# threads than the one-thread pruning jobs leave free would otherwise wait until no pruning job is left to start.


rule train_base_model:
    output:
        model="results/{dataset}/{model}/base/model.pt",
        metrics="results/{dataset}/{model}/base/metrics.json",
    log:
        "logs/{dataset}/{model}/base/train.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/base/train.tsv"
    wildcard_constraints:
        model=alternatives(TRAINED_MODELS),
    params:
        psp=PSP,
        arch=model_arch,
        data=data_spec,
        train=train_flags,
        normalize=normalize_flag,
        out=subpath(output.model, parent=True),
    resources:
        gpu=gpus(),
    priority: 10
    threads: 2
    conda:
        "../envs/psp.yaml"
    shell:
        "{params.psp} train --model {params.arch} --data {params.data:q} {params.train} {params.normalize} "
        "--out {params.out:q} --threads {threads} > {log:q} 2>&1"


rule import_base_model:
    output:
        metrics="results/{dataset}/{model}/base/metrics.json",
    log:
        "logs/{dataset}/{model}/base/import.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/base/import.tsv"
    wildcard_constraints:
        model=alternatives(IMPORTED_MODELS),
    params:
        psp=PSP,
        arch=model_arch,
        data=data_spec,
        checkpoint=base_checkpoint,
        normalize=normalize_flag,
    priority: 10
    threads: 1
    conda:
        "../envs/psp.yaml"
    shell:
        "{params.psp} eval --checkpoint {params.checkpoint:q} --model {params.arch} --data {params.data:q} {params.normalize} "
        "--out {output.metrics:q} --threads {threads} > {log:q} 2>&1"
