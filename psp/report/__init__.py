"""The reports of the workflow: runs.csv, tables, figures and claim verdicts, one module per rule (named like it).

Every module here reads files the pruning runs wrote and imports neither torch nor Snakemake, so a report rule starts
in a second; ``workflow/scripts/report.py`` hands each rule's job (inputs, outputs, params, log) to ``main`` here.
"""
