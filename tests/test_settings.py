"""PruneSettings validates itself: the library and the command line refuse the same values with the same one-line
message, and every option vocabulary has one definition."""

import pytest

from psp import options
from psp.cli import EXIT_USAGE, main
from psp.errors import UsageError
from psp.settings import PruneSettings

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(("flags", "kwargs"), [
    (["--ratio", "1.5"], {"ratio": 1.5}), (["--ratio", "0"], {"ratio": 0.0}),
    (["--target-macs", "1"], {"target_macs": 1.0}), (["--ratio", "0.5", "--samples", "0"], {"samples": 0}),
    (["--ratio", "0.5", "--lr", "0"], {"lr": 0.0}), (["--ratio", "0.5", "--rec-epochs", "-1"], {"rec_epochs": -1}),
    (["--ratio", "0.5", "--importance", "l3"], {"importance": "l3"}),
    (["--ratio", "0.5", "--penalty", "squeeze"], {"penalty": "squeeze"}),
    (["--ratio", "0.5", "--bn-mode", "frozen"], {"bn_mode": "frozen"})])
def test_library_and_command_line_refuse_alike(flags, kwargs, tmp_path, capsys):
    with pytest.raises(UsageError) as refused:
        PruneSettings(**kwargs)
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"")
    code = main(["prune", "--method", "oneshot", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"),
                 *flags])
    assert code == EXIT_USAGE
    assert capsys.readouterr().err.strip() == f"psp: error: {refused.value}"
    assert "\n" not in str(refused.value)


def test_the_vocabularies_are_the_settings_choices():
    choices = {name: f.metadata["choices"] for name, f in PruneSettings.__dataclass_fields__.items()
               if f.metadata["choices"]}
    assert choices == {"importance": options.IMPORTANCES, "selection": options.SELECTIONS,
                       "penalty": options.PENALTIES, "lr_schedule": options.LR_SCHEDULES,
                       "bn_mode": options.BN_MODES, "distill_loss": options.DISTILL_LOSSES,
                       "memory_format": options.MEMORY_FORMATS, "conv_input_grad": options.CONV_INPUT_GRADS}
    assert PruneSettings(ratio=0.5, penalty_epochs=0).ratio == 0.5  # the defaults and valid values pass
