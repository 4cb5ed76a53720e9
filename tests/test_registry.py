"""The registry names no method module: built-in methods register through the same ``psp_bench.methods`` entry
point as outside ones, and the library never imports the baselines."""

import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from psp.registry import ENTRY_POINTS, get_method, list_methods

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
