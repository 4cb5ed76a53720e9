# Tables (CSV, Markdown, LaTeX booktabs) and the claim verdicts, all generated from results/tables/runs.csv.


rule tabulate_comparison:
    input:
        runs="results/tables/runs.csv",
    output:
        csv=report(
            "results/tables/comparison.csv",
            caption="../report/table_comparison.rst",
            category="Tables",
            labels={"table": "comparison", "format": "csv"},
        ),
        md=report(
            "results/tables/comparison.md",
            caption="../report/table_comparison.rst",
            category="Tables",
            labels={"table": "comparison", "format": "md"},
        ),
        tex=report(
            "results/tables/comparison.tex",
            caption="../report/table_comparison.rst",
            category="Tables",
            labels={"table": "comparison", "format": "tex"},
        ),
    log:
        "logs/tables/comparison.log",
    benchmark:
        "results/benchmarks/tables/comparison.tsv"
    params:
        design=design_params(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"


rule tabulate_ablation:
    input:
        runs="results/tables/runs.csv",
    output:
        csv=report(
            "results/tables/ablation.csv",
            caption="../report/table_ablation.rst",
            category="Tables",
            labels={"table": "ablation", "format": "csv"},
        ),
        md=report(
            "results/tables/ablation.md",
            caption="../report/table_ablation.rst",
            category="Tables",
            labels={"table": "ablation", "format": "md"},
        ),
        tex=report(
            "results/tables/ablation.tex",
            caption="../report/table_ablation.rst",
            category="Tables",
            labels={"table": "ablation", "format": "tex"},
        ),
    log:
        "logs/tables/ablation.log",
    benchmark:
        "results/benchmarks/tables/ablation.tsv"
    params:
        design=design_params(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"


rule tabulate_calibration:
    input:
        runs="results/tables/runs.csv",
    output:
        csv=report(
            "results/tables/calibration.csv",
            caption="../report/table_calibration.rst",
            category="Tables",
            labels={"table": "calibration size", "format": "csv"},
        ),
        md=report(
            "results/tables/calibration.md",
            caption="../report/table_calibration.rst",
            category="Tables",
            labels={"table": "calibration size", "format": "md"},
        ),
        tex=report(
            "results/tables/calibration.tex",
            caption="../report/table_calibration.rst",
            category="Tables",
            labels={"table": "calibration size", "format": "tex"},
        ),
    log:
        "logs/tables/calibration.log",
    benchmark:
        "results/benchmarks/tables/calibration.tsv"
    params:
        design=design_params(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"


rule tabulate_compute:
    input:
        runs="results/tables/runs.csv",
    output:
        csv=report(
            "results/tables/compute.csv",
            caption="../report/table_compute.rst",
            category="Tables",
            labels={"table": "compute (budget ladders)", "format": "csv"},
        ),
        md=report(
            "results/tables/compute.md",
            caption="../report/table_compute.rst",
            category="Tables",
            labels={"table": "compute (budget ladders)", "format": "md"},
        ),
        tex=report(
            "results/tables/compute.tex",
            caption="../report/table_compute.rst",
            category="Tables",
            labels={"table": "compute (budget ladders)", "format": "tex"},
        ),
    log:
        "logs/tables/compute.log",
    benchmark:
        "results/benchmarks/tables/compute.tsv"
    params:
        design=design_params(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"


rule assess_claims:
    input:
        runs="results/tables/runs.csv",
        layers="results/tables/layer_updates.csv",
    output:
        md=report(
            "results/tables/claims.md",
            caption="../report/table_claims.rst",
            category="Claims",
            labels={"table": "claims", "format": "md"},
        ),
        csv=report(
            "results/tables/claims.csv",
            caption="../report/table_claims.rst",
            category="Claims",
            labels={"table": "claims", "format": "csv"},
        ),
    log:
        "logs/tables/claims.log",
    benchmark:
        "results/benchmarks/tables/claims.tsv"
    params:
        design=design_params(),
    threads: 1
    conda:
        "../envs/psp.yaml"
    script:
        "../scripts/report.py"
