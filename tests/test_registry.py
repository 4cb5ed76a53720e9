"""The registry names no method module: built-in methods register through the same ``psp_bench.methods`` entry
point as outside ones, and the library never imports the baselines. Every method declares its family, which the
reports read from the catalogue."""

import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from psp.options import FAMILIES, TRAITS, USES
from psp.registry import ENTRY_POINTS, catalogue, default_family, get_method, list_methods, register_method

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]


def test_built_in_methods_are_entry_points():
    modules = {ep.value for ep in entry_points(group=ENTRY_POINTS)}
    assert {"psp.algorithms", "baselines"} <= modules
    assert {"psp", "oneshot", "adaprune", "l1", "greg", "depgraph", "neuron_merging"} <= set(list_methods())
    assert get_method("psp").uses == "calibration"


def test_the_library_never_imports_the_baselines():
    imports = re.compile(r"^\s*(from|import)\s+baselines\b", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "psp").rglob("*.py") if imports.search(p.read_text())]
    assert offenders == []


def test_every_method_declares_its_family_and_the_catalogue_lists_families_in_order():
    entries = catalogue()
    assert set(entries) == set(list_methods())
    ranks = [FAMILIES.index(entry["family"]) for entry in entries.values()]
    assert ranks == sorted(ranks)  # grouped by family, in the tables' order
    assert all(entry["uses"] in USES and set(entry["traits"]) <= set(TRAITS) for entry in entries.values())
    assert entries["psp"]["family"] == "PSP" and entries["oneshot_ft"]["family"] == "control"
    assert "layer-wise" in entries["gap_bn"]["traits"] and "bn-recalibrated" in entries["gap_bn"]["traits"]


def test_a_method_without_a_family_gets_the_one_its_data_implies():
    assert default_family("labels") == "retraining"
    assert default_family("calibration") == default_family("none") == "post-training"


@pytest.mark.parametrize(("kwargs", "named"), [({"uses": "images"}, "uses 'images'"),
                                               ({"uses": "none", "family": "ablation"}, "family 'ablation'"),
                                               ({"uses": "none", "traits": ("fast",)}, "traits ['fast']")])
def test_registration_refuses_an_unknown_family_use_or_trait(kwargs, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        register_method("never_registered", **kwargs)
    assert "never_registered" not in list_methods()
