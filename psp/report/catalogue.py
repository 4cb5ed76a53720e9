"""What the reports know about methods: each one's family, data use, traits and summary, in table order, exactly as
the registry declared them (``psp.registry.catalogue``, handed over in the design as ``design["catalogue"]``).

Tables, figures and claims pick and order methods through this, never by name, so a method registered from outside
the package reaches every report of its family with no edit here.
"""

from dataclasses import dataclass

from psp.options import FAMILIES
from psp.registry import default_family


@dataclass(frozen=True)
class Catalogue:
    methods: dict[str, dict]  # name -> {"uses", "family", "traits", "summary"}, in table order

    @classmethod
    def of(cls, design: dict) -> "Catalogue":
        return cls(design["catalogue"])

    def family(self, method: str, uses: str = "calibration") -> str:
        """The family ``method`` was registered in; for a method the registry no longer has (e.g. in an earlier
        design's runs), the one its data use implies."""
        entry = self.methods.get(method)
        return entry["family"] if entry else default_family(uses)

    def rank(self, method: str) -> int:
        """Table position: families in ``FAMILIES`` order, registration order within each; unknown methods last."""
        names = list(self.methods)
        return names.index(method) if method in names else len(names)

    def members(self, family: str, trait: str | None = None, without: str | None = None) -> list[str]:
        """The methods of ``family`` in table order, those with ``trait`` only, or those without ``without``."""
        return [name for name, entry in self.methods.items() if entry["family"] == family
                and (trait is None or trait in entry["traits"]) and (without is None or without not in entry["traits"])]

    def with_trait(self, trait: str) -> list[str]:
        """Every method with ``trait``, in table order."""
        return [name for name, entry in self.methods.items() if trait in entry["traits"]]

    def summary(self, method: str) -> str:
        entry = self.methods.get(method)
        return entry["summary"] if entry else ""


def family_rank(family: str) -> int:
    """Position of a family in the tables (registered families in ``FAMILIES`` order)."""
    return FAMILIES.index(family) if family in FAMILIES else len(FAMILIES)
