"""Shared by the figure scripts: one seaborn theme, one look per method (its family's colour, its own marker and
line style), curves with seed bands, a legend grouped by family beside the panels, PNG + PDF output, and a
placeholder when nothing was run."""

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from psp.options import FAMILIES  # noqa: E402
from psp.report.catalogue import Catalogue  # noqa: E402
from psp.report.summaries import main_runs, read_runs, sweep_runs  # noqa: E402

sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
PERCENT = "top-1 accuracy (%)"
DENSE_LINE = {"color": "0.45", "linestyle": "--", "linewidth": 1}  # the unpruned model's top-1
# One hue per family: with fifteen-plus methods, one hue per method is unreadable.
FAMILY_COLOURS = {"PSP": "#b2182b", "control": "#1b7837", "post-training": "#2166ac", "retraining": "#762a83"}
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1.5)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2, 1, 2))]


@dataclass(frozen=True)
class Style:
    """How one method is drawn."""

    family: str
    colour: tuple[float, float, float]
    marker: str
    linestyle: str | tuple

    def line(self) -> dict:
        return {"color": self.colour, "marker": self.marker, "linestyle": self.linestyle}


def _shade(colour: str, amount: float) -> tuple[float, float, float]:
    """``colour`` mixed with white by ``amount`` (0: the colour itself)."""
    return tuple(c + (1 - c) * amount for c in to_rgb(colour))


def method_styles(methods: dict[str, str], catalogue: Catalogue) -> dict[str, Style]:
    """Each method (name -> uses) in table order: its registered family's colour, lighter for later members (at most
    45 % white), and a marker and line style of its own within the family."""
    by_family: dict[str, list[str]] = {}
    for method in sorted(methods, key=catalogue.rank):
        by_family.setdefault(catalogue.family(method, methods[method]), []).append(method)
    styles = {}
    for name, members in by_family.items():
        base = FAMILY_COLOURS.get(name, "#555555")
        for i, method in enumerate(members):
            amount = 0.45 * i / max(1, len(members) - 1)
            styles[method] = Style(name, _shade(base, amount), MARKERS[i % len(MARKERS)],
                                   LINESTYLES[i % len(LINESTYLES)])
    return styles


def styles_of(runs: pd.DataFrame, design: dict) -> dict[str, Style]:
    """The styles of the methods in ``runs``, by the families the design's catalogue declares."""
    return method_styles(runs.drop_duplicates("method").set_index("method")["uses"].to_dict(), Catalogue.of(design))


def drawn(styles: dict[str, Style]) -> str:
    """The methods a figure drew, each with its family (for the rule's log)."""
    return ", ".join(f"{method} ({style.family})" for method, style in styles.items())


def families_present(styles: dict[str, Style]) -> list[str]:
    """The families of ``styles`` in the tables' order (families of outside methods last)."""
    present = {s.family for s in styles.values()}
    return [f for f in FAMILIES if f in present] + sorted(present - set(FAMILIES))


def curve(ax, runs: pd.DataFrame, x: str, y: str, style: Style, label: str, by: str = "target", band: bool = True,
          **line) -> None:
    """Mean of ``y`` over seeds at each value of ``by`` against the mean of ``x`` there (``x`` may be measured, e.g.
    the MACs reduction at a target), points joined in the order of ``x``, with a ± 1 std band when there are two or
    more seeds."""
    grouped = runs.groupby(by, sort=True)
    order = grouped[x].mean().sort_values(kind="stable").index
    xs, means = grouped[x].mean()[order], grouped[y].mean()[order]
    stds = grouped[y].std(ddof=1).fillna(0.0)[order]
    ax.plot(xs, means, label=label, **(style.line() | {"markersize": 5, "linewidth": 1.4} | line))
    if band and grouped.size().max() > 1:
        ax.fill_between(xs, means - stds, means + stds, color=style.colour, alpha=0.15, linewidth=0)


def ratio_points(ax, runs: pd.DataFrame, y: str, style: Style) -> None:
    """Runs at channel-ratio targets as hollow markers at the MACs reduction they gave (mean over seeds, ± 1 std),
    each labelled with its ratio: not joined to the MACs-target curve, whose x is the asked reduction."""
    for target, part in runs[runs["target_kind"] == "ratio"].groupby("target", sort=True):
        x, mean, std = part["macs_reduction"].mean(), part[y].mean(), part[y].std(ddof=1)
        ax.errorbar(x, mean, yerr=0.0 if pd.isna(std) else std, marker=style.marker, markersize=6, linestyle="none",
                    color=style.colour, markerfacecolor="white", capsize=2)
        ax.annotate(f"r{target:g}", (x, mean), textcoords="offset points", xytext=(4, 4), fontsize=6,
                    color=style.colour)


def family_legend(fig, styles: dict[str, Style], extra: list[tuple[Line2D, str]] = ()) -> None:
    """One legend to the right of the panels, methods grouped under their family's name (never over the data)."""
    handles, labels = [], []
    for name in families_present(styles):
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(name)
        for method, style in styles.items():
            if style.family == name:
                handles.append(Line2D([], [], markersize=5, **style.line()))
                labels.append(method)
    for handle, label in extra:
        handles.append(handle)
        labels.append(label)
    legend = fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
                        handlelength=3.0)
    headers = set(families_present(styles))
    for text in legend.get_texts():
        if text.get_text() in headers:
            text.set_fontweight("bold")


def save_with_legend(fig, styles: dict[str, Style], outputs, extra: list[tuple[Line2D, str]] = ()) -> None:
    """The family legend beside the panels, then :func:`save`."""
    family_legend(fig, styles, extra)
    fig.tight_layout()
    save(fig, outputs)


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


def sweep_runs_or_placeholder(smk) -> pd.DataFrame | None:
    """The calibration-size study's runs, or None after writing the placeholder when the design has no study."""
    runs = sweep_runs(read_runs(smk.input.runs), smk.params.design)
    if runs.empty or runs["samples"].nunique() < 2:
        placeholder(smk.output, "no calibration-size study in this configuration (sweep_methods / samples)")
        return None
    return runs
