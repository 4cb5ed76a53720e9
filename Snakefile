# psp-bench workflow: base models -> pruning runs -> runs.csv -> tables, figures and claim verdicts.
#
#   snakemake --cores all                                   # the embedded tiny CPU benchmark (config/config.yaml)
#   snakemake --cores all --configfile config/cifar10-jpg.yaml   # a paper config (replaces config/config.yaml)
#   snakemake --report results/report.html                  # tables, figures and claims with captions
#
# Layout: workflow/rules/<stage>.smk (rules only), workflow/rules/common.smk (config validation, design, input
# functions), workflow/scripts/, workflow/schemas/config.schema.yaml, workflow/report/*.rst.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/base.smk"
include: "workflow/rules/prune.smk"
include: "workflow/rules/latency.smk"
include: "workflow/rules/collect.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
