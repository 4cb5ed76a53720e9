"""The script of every table, figure and verdict rule: it hands Snakemake's job to the library module named like the
rule (``psp.report.<rule>``), where the logic lives and the tests import it. A new report rule needs a module, not a
script."""

import importlib

importlib.import_module(f"psp.report.{snakemake.rule}").main(snakemake)  # noqa: F821  (injected by Snakemake)
