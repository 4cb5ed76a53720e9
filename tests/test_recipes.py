"""The search settings (milder balance, cosine schedule, BatchNorm re-estimation) do what they say, and the
``psp_plus`` / ``psp_fast`` recipes are registered PSP runs within the issue's epoch budgets."""

import copy
import math

import pytest
import torch

import psp.algorithms.psp as psp_module
from psp.algorithms.recipes import PSP_FAST, PSP_PLUS
from psp.methods import get_method
from psp.reconstruct.batchnorm import recalibrate_batchnorm
from psp.reconstruct.optim import balanced_lrs, phase_schedule, reconstruction_optimizer
from psp.reconstruct.taps import reconstruction_layers
from psp.settings import PruneSettings

pytestmark = pytest.mark.timeout(240)

CHEAP = {"target_macs": 2.0, "samples": 64, "batch_size": 32, "lr": 1e-2, "penalty_epochs": 2, "rec_epochs": 2}
RELEASED = PruneSettings()


def _run(method: str, ctx):
    torch.manual_seed(ctx.settings.seed)
    return get_method(method).run(ctx)


def _norm_stats(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.clone() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)
            for t in (m.running_mean, m.running_var)]


def test_balance_power_interpolates():
    """lr / (L − i)^power: 1 is the released rule, 0.5 its square root, 0 one rate for all."""
    layers = ["a", "b", "c", "d"]
    assert balanced_lrs(layers, 0.4, 1.0) == balanced_lrs(layers, 0.4)
    assert balanced_lrs(layers, 0.4, 0.5) == pytest.approx({"a": 0.2, "b": 0.4 / 3**0.5, "c": 0.4 / 2**0.5, "d": 0.4})
    assert set(balanced_lrs(layers, 0.4, 0.0).values()) == {0.4}


def test_power_zero_is_one_rate(fresh_base):
    model = fresh_base()
    opt = reconstruction_optimizer(model, reconstruction_layers(model), 0.01, balanced=True, power=0.0)
    assert {g["lr"] for g in opt.param_groups} == {0.01}


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_phase_schedule(schedule):
    """Constant keeps lr; cosine falls monotonically from lr towards zero over the phase's steps."""
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = phase_schedule(opt, schedule, steps=10)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx(0.1)
    if schedule == "constant":
        assert set(seen) == {0.1}
    else:
        assert all(a > b for a, b in zip(seen, seen[1:], strict=False))
        assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("setting", "shapes"), [("cosine", ["cosine", "cosine"]),
                                                  ("phase2_cosine", ["constant", "cosine"])])
def test_psp_steps_its_schedule(setting, shapes, fresh_base, make_context, monkeypatch):
    """PSP steps each phase's schedule once per batch; an annealed phase ends at a zero rate, a constant one at lr."""
    made = []
    real = psp_module.phase_schedule

    def recorded(optimizer, schedule, steps):
        made.append((real(optimizer, schedule, steps), schedule, steps))
        return made[-1][0]

    monkeypatch.setattr(psp_module, "phase_schedule", recorded)
    _run("psp", make_context(fresh_base(), **(CHEAP | {"lr_schedule": setting})))
    batches = math.ceil(CHEAP["samples"] / CHEAP["batch_size"])
    assert [(shape, steps) for _, shape, steps in made] == [
        (shapes[0], CHEAP["penalty_epochs"] * batches), (shapes[1], CHEAP["rec_epochs"] * batches)]
    for sched, shape, steps in made:
        assert sched.last_epoch == steps
        final = pytest.approx(0.0, abs=1e-12) if shape == "cosine" else pytest.approx(CHEAP["lr"])
        assert max(sched.get_last_lr()) == final


def test_bn_recalibrate_leaves_exact_statistics(fresh_base, make_context):
    """With --bn-recalibrate the pruned model's BatchNorm statistics are the exact averages over the calibration
    images (re-estimating again changes nothing); without it they are train-mode running averages, which differ."""
    ctx = make_context(fresh_base(), **(CHEAP | {"bn_recalibrate": True}))
    result = _run("psp", ctx)
    again = copy.deepcopy(result.model)
    recalibrate_batchnorm(again, ctx.calibration(), CHEAP["batch_size"])
    for a, b in zip(_norm_stats(result.model), _norm_stats(again), strict=True):
        torch.testing.assert_close(a, b)
    assert result.images_seen == CHEAP["samples"] * (CHEAP["penalty_epochs"] + CHEAP["rec_epochs"] + 1)
    assert not result.model.training

    plain = _run("psp", make_context(fresh_base(), **CHEAP))
    recalibrate_batchnorm(again := copy.deepcopy(plain.model), ctx.calibration(), CHEAP["batch_size"])
    assert any(not torch.allclose(a, b) for a, b in zip(_norm_stats(plain.model), _norm_stats(again), strict=True))


def _full_width_epochs(s: dict) -> float:
    """Compute of a recipe in full-width epochs: a phase-2 epoch on a 2x-pruned model costs about half of one."""
    return s.get("penalty_epochs", RELEASED.penalty_epochs) + s.get("rec_epochs", RELEASED.rec_epochs) / 2


def test_recipes_within_budget():
    """psp_plus trains at most 2x the released epochs; psp_fast at most a quarter of the released compute."""
    released = RELEASED.penalty_epochs + RELEASED.rec_epochs
    assert PSP_PLUS["penalty_epochs"] + PSP_PLUS["rec_epochs"] <= 2 * released
    assert _full_width_epochs(PSP_FAST) <= 0.25 * _full_width_epochs({})
    assert set(PSP_PLUS) | set(PSP_FAST) <= set(RELEASED.to_dict())


@pytest.mark.parametrize(("method", "recipe"), [("psp_plus", PSP_PLUS), ("psp_fast", PSP_FAST)])
def test_recipe_runs_its_settings(method, recipe, fresh_base, make_context):
    """Each recipe is PSP with its settings over the user's: the overrides are recorded, and phase 1 and phase 2 run
    the recipe's epochs whatever the user asked for."""
    assert get_method(method).uses == "calibration"
    result = _run(method, make_context(fresh_base(), **(CHEAP | {"penalty_epochs": 5, "rec_epochs": 5})))
    phases = [r["phase"] for r in result.tables["losses"]]
    assert phases == [1] * recipe["penalty_epochs"] + [2] * recipe["rec_epochs"]
    assert result.extra["overrides"] == recipe
