"""How much to prune, as a config, a path and a table name it: a MACs reduction or a global channel ratio.

Matched MACs is the fair comparison between methods; a channel ratio is the paper's own protocol (its released scripts
prune ResNet-50 and VGG-19 at global ratios). Both are design targets of the workflow, spelled

- a number above 1, ``2.0``: dense MACs / pruned MACs (``psp prune --target-macs 2.0``; path label ``2.0``);
- ``r`` and a number in (0, 1), ``r0.5``: the fraction of prunable channels removed, ranked globally or per layer as
  the ``selection`` setting says (``psp prune --ratio 0.5``; path label ``r0.5``).

The two ranges do not overlap, so a target's number alone (the ``target`` column of runs.csv) tells its kind.
Importable without torch: the workflow parses its config with it.
"""

import math
from dataclasses import dataclass

from psp.errors import UsageError

KINDS = ("macs", "ratio")
SPELLING = "a MACs reduction above 1 (e.g. 2.0) or a global channel ratio as r<ratio in (0, 1)> (e.g. r0.5)"


@dataclass(frozen=True)
class PruningTarget:
    kind: str  # "macs" | "ratio"
    value: float

    @classmethod
    def parse(cls, entry: object) -> "PruningTarget":
        """A config entry or path label: ``2``, ``2.0``, ``"2.0"`` (MACs) or ``"r0.5"`` (ratio)."""
        text = str(entry).strip()
        kind, number = ("ratio", text[1:]) if text.startswith("r") else ("macs", text)
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        valid = (0 < value < 1) if kind == "ratio" else (value > 1 and not isinstance(entry, bool))
        if not (math.isfinite(value) and valid):
            raise UsageError(f"target {entry!r} is not {SPELLING}")
        return cls(kind, value)

    @classmethod
    def of_value(cls, value: float) -> "PruningTarget":
        """The target a runs.csv ``target`` number stands for (ratios are below 1, MACs reductions above)."""
        return cls("ratio" if value < 1 else "macs", float(value))

    @property
    def label(self) -> str:
        """The path component: ``2.0`` or ``r0.5``."""
        return ("r" if self.kind == "ratio" else "") + repr(self.value)

    @property
    def flags(self) -> str:
        """The ``psp prune`` flag that asks for it."""
        return f"--ratio {self.value!r}" if self.kind == "ratio" else f"--target-macs {self.value!r}"

    @property
    def text(self) -> str:
        """How tables, figures and verdicts name it: ``2×`` or ``ratio 0.5``."""
        return f"ratio {self.value:g}" if self.kind == "ratio" else f"{self.value:g}×"


def target_text(value: float) -> str:
    """The table name of a runs.csv ``target`` number."""
    return PruningTarget.of_value(value).text
