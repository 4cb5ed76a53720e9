"""Every verdict at one look: claims C1–C8 and questions Q1–Q6 (rows) by dataset/model (columns), each cell coloured
by its outcome (holds, not significant, opposite, does not hold, mixed) or grey when the run's budget is below the
paper's, and labelled with the verdict itself (so a budget-limited cell still says which way it went). Claims whose
methods the configuration ran on no model are left out (a calibration study, say, assesses C6, C7 and Q6 only)."""

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.patches import Patch

from psp.report.plotting import placeholder, save
from psp.report.summaries import start_log

COLOURS = {"holds": "#4dac26", "not significant": "#f1d54b", "opposite": "#d01c8b", "does not hold": "#f1a340",
           "mixed": "#92c5de", "budget-limited": "#bababa", "inconclusive": "#ffffff", "not run": "#f2f2f2"}


def short(verdict: str, budget_limited: bool) -> str:
    """The verdict in a few words for a cell: 'mixed (1 of 2 comparisons hold)' -> 'mixed 1/2'."""
    text = verdict.replace("does not hold (", "").rstrip(")") if verdict.startswith("does not hold (") else verdict
    if text.startswith("mixed ("):
        held, _, total = text.removeprefix("mixed (").split()[:3]
        text = f"mixed {held}/{total}"
    return text + ("\n(budget-limited)" if budget_limited else "")


def main(smk) -> None:
    log = start_log(smk.log[0])
    table = pd.read_csv(smk.input.claims)
    table = table[table.groupby("claim")["verdict"].transform(lambda v: (v != "not run").any())]
    if table.empty:
        placeholder(smk.output, "no verdicts in this configuration")
        return
    table = table.assign(setup=table["dataset"] + " / " + table["model"])
    claims = list(dict.fromkeys(table["claim"]))
    setups = sorted(table["setup"].unique())
    fig, ax = plt.subplots(figsize=(1.2 + 2.0 * len(setups), 0.42 * len(claims) + 1.2))
    for row in table.itertuples():
        x, y = setups.index(row.setup), claims.index(row.claim)
        ax.add_patch(plt.Rectangle((x, y), 1, 1, facecolor=COLOURS[row.category], edgecolor="white", linewidth=2))
        ax.text(x + 0.5, y + 0.5, short(row.verdict, row.budget_limited), ha="center", va="center", fontsize=7)
    ax.set_xlim(0, len(setups))
    ax.set_ylim(len(claims), 0)
    ax.set_xticks([i + 0.5 for i in range(len(setups))], setups, fontsize=8)
    ax.set_yticks([i + 0.5 for i in range(len(claims))], claims, fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    used = [c for c in COLOURS if c in set(table["category"])]
    ax.legend([Patch(facecolor=COLOURS[c], edgecolor="0.6") for c in used], used, loc="upper center",
              bbox_to_anchor=(0.5, -0.02), ncol=min(3, len(used)), frameon=False, fontsize=8)
    save(fig, smk.output)
    log.info("plotted %d verdicts", len(table))
