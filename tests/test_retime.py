"""benchmarks/retime_runs.py rebuilds a run's pruned architecture from its recorded channel counts: the same layer
widths and MACs as the run's own model (what its latency depends on), and a clear error for a foreign record."""

import json
import sys
from pathlib import Path

import pytest
from test_structure import build, conv_widths

from psp.metrics import count_macs
from psp.structure.groups import channel_groups
from psp.structure.importance import score_groups
from psp.structure.removal import remove_channels
from psp.structure.selection import select_by_ratio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from retime_runs import rebuilt  # noqa: E402


@pytest.mark.parametrize("name", ["resnet20", "vgg_tiny"])
def test_rebuilt_architecture_has_the_runs_widths_and_macs(name):
    dense, x = build(name, {"width": 4} if name == "resnet20" else {})
    selection = select_by_ratio(score_groups(channel_groups(dense, x), "random", 3), 0.5)
    pruned = remove_channels(build(name, {"width": 4} if name == "resnet20" else {})[0], selection, x)
    recorded = json.loads(json.dumps({k: len(v) for k, v in selection.items()}))  # as metrics.json stores it
    again = rebuilt(dense, x, recorded)
    assert conv_widths(again) == conv_widths(pruned)
    assert count_macs(again, x) == count_macs(pruned, x) < count_macs(dense, x)


def test_unknown_group_is_refused():
    dense, x = build("vgg_tiny", {})
    with pytest.raises(ValueError, match="groups the model does not have: features.99"):
        rebuilt(dense, x, {"features.99": 2})
