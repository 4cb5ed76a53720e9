"""Shared by the figure scripts: one seaborn theme, PNG + PDF output, and a placeholder when nothing was run."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from summaries import main_runs, read_runs  # noqa: E402

sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
PERCENT = "top-1 accuracy (%)"


def save(fig, outputs) -> None:
    """Write the figure to the rule's ``png`` and ``pdf`` outputs."""
    fig.savefig(outputs.png, dpi=150, bbox_inches="tight")
    fig.savefig(outputs.pdf, bbox_inches="tight")
    plt.close(fig)


def placeholder(outputs, message: str) -> None:
    """An explicit empty figure: the rule's outputs exist even when the configuration ran none of its methods."""
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    save(fig, outputs)


def main_runs_or_placeholder(smk) -> pd.DataFrame | None:
    """The main-table runs of a figure rule, or None after writing the placeholder when the design has none."""
    runs = main_runs(read_runs(smk.input.runs), smk.params.design["default_samples"])
    if runs.empty:
        placeholder(smk.output, "no pruning runs in this configuration")
        return None
    return runs
