# Figures (PNG and PDF, seaborn), all drawn from the collected CSVs.


rule plot_accuracy_vs_macs:
    input:
        runs="results/tables/runs.csv",
    output:
        png=report(
            "results/figures/accuracy_vs_macs.png",
            caption="../report/figure_accuracy_vs_macs.rst",
            category="Figures",
            labels={"figure": "top-1 vs MACs reduction", "format": "png"},
        ),
        pdf=report(
            "results/figures/accuracy_vs_macs.pdf",
            caption="../report/figure_accuracy_vs_macs.rst",
            category="Figures",
            labels={"figure": "top-1 vs MACs reduction", "format": "pdf"},
        ),
    log:
        "logs/figures/accuracy_vs_macs.log",
    benchmark:
        "results/benchmarks/figures/accuracy_vs_macs.tsv"
    params:
        design=design_params(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"


rule plot_accuracy_vs_samples:
    input:
        runs="results/tables/runs.csv",
    output:
        png=report(
            "results/figures/accuracy_vs_samples.png",
            caption="../report/figure_accuracy_vs_samples.rst",
            category="Figures",
            labels={"figure": "top-1 vs calibration images", "format": "png"},
        ),
        pdf=report(
            "results/figures/accuracy_vs_samples.pdf",
            caption="../report/figure_accuracy_vs_samples.rst",
            category="Figures",
            labels={"figure": "top-1 vs calibration images", "format": "pdf"},
        ),
    log:
        "logs/figures/accuracy_vs_samples.log",
    benchmark:
        "results/benchmarks/figures/accuracy_vs_samples.tsv"
    params:
        design=design_params(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"


rule plot_ablation:
    input:
        runs="results/tables/runs.csv",
    output:
        png=report(
            "results/figures/ablation.png",
            caption="../report/figure_ablation.rst",
            category="Figures",
            labels={"figure": "ablation", "format": "png"},
        ),
        pdf=report(
            "results/figures/ablation.pdf",
            caption="../report/figure_ablation.rst",
            category="Figures",
            labels={"figure": "ablation", "format": "pdf"},
        ),
    log:
        "logs/figures/ablation.log",
    benchmark:
        "results/benchmarks/figures/ablation.tsv"
    params:
        design=design_params(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"


rule plot_layer_updates:
    input:
        layers="results/tables/layer_updates.csv",
    output:
        png=report(
            "results/figures/layer_updates.png",
            caption="../report/figure_layer_updates.rst",
            category="Figures",
            labels={"figure": "per-layer update magnitude", "format": "png"},
        ),
        pdf=report(
            "results/figures/layer_updates.pdf",
            caption="../report/figure_layer_updates.rst",
            category="Figures",
            labels={"figure": "per-layer update magnitude", "format": "pdf"},
        ),
    log:
        "logs/figures/layer_updates.log",
    benchmark:
        "results/benchmarks/figures/layer_updates.tsv"
    params:
        design=design_params(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"


rule plot_speedup:
    input:
        runs="results/tables/runs.csv",
    output:
        png=report(
            "results/figures/speedup_vs_macs.png",
            caption="../report/figure_speedup_vs_macs.rst",
            category="Figures",
            labels={"figure": "latency speed-up vs MACs reduction", "format": "png"},
        ),
        pdf=report(
            "results/figures/speedup_vs_macs.pdf",
            caption="../report/figure_speedup_vs_macs.rst",
            category="Figures",
            labels={"figure": "latency speed-up vs MACs reduction", "format": "pdf"},
        ),
    log:
        "logs/figures/speedup_vs_macs.log",
    benchmark:
        "results/benchmarks/figures/speedup_vs_macs.tsv"
    params:
        design=design_params(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"


rule plot_calibration_cost:
    input:
        runs="results/tables/runs.csv",
    output:
        png=report(
            "results/figures/calibration_cost.png",
            caption="../report/figure_calibration_cost.rst",
            category="Figures",
            labels={"figure": "time and memory vs calibration images", "format": "png"},
        ),
        pdf=report(
            "results/figures/calibration_cost.pdf",
            caption="../report/figure_calibration_cost.rst",
            category="Figures",
            labels={"figure": "time and memory vs calibration images", "format": "pdf"},
        ),
    log:
        "logs/figures/calibration_cost.log",
    benchmark:
        "results/benchmarks/figures/calibration_cost.tsv"
    params:
        design=design_params(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"


rule plot_verdicts:
    input:
        claims="results/tables/claims.csv",
    output:
        png=report(
            "results/figures/verdicts.png",
            caption="../report/figure_verdicts.rst",
            category="Claims",
            labels={"figure": "verdicts at one look", "format": "png"},
        ),
        pdf=report(
            "results/figures/verdicts.pdf",
            caption="../report/figure_verdicts.rst",
            category="Claims",
            labels={"figure": "verdicts at one look", "format": "pdf"},
        ),
    log:
        "logs/figures/verdicts.log",
    benchmark:
        "results/benchmarks/figures/verdicts.tsv"
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"


rule plot_compute:
    input:
        runs="results/tables/runs.csv",
    output:
        png=report(
            "results/figures/compute.png",
            caption="../report/figure_compute.rst",
            category="Figures",
            labels={"figure": "top-1 vs compute (Pareto)", "format": "png"},
        ),
        pdf=report(
            "results/figures/compute.pdf",
            caption="../report/figure_compute.rst",
            category="Figures",
            labels={"figure": "top-1 vs compute (Pareto)", "format": "pdf"},
        ),
    log:
        "logs/figures/compute.log",
    benchmark:
        "results/benchmarks/figures/compute.tsv"
    params:
        design=design_params(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"
