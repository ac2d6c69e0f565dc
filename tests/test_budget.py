"""budget=E (estimators/budget.py): every estimator averages floor(E / e) draws, so all spend
E evaluations of f; the mean is unchanged and the variance falls by that factor."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.statistics import variance_statistics
from discograd.errors import ConfigError
from discograd.identity import config_id
from discograd.run import run
from estimators.budget import Budgeted
from estimators.reinforce import Reinforce
from helpers import ALPHA, draw, exact, mean_z, z_crit
from tasks.toy_quadratic import ToyQuadratic
from test_run import config

TASK = dict(family="bernoulli", dims=3, target=0.2, init_logit=[-1.0, 0.5, 1.5])


@pytest.mark.parametrize("inner,budget,k", [(Reinforce(), 4, 4), (Reinforce(baseline="loo", num_samples=2), 4, 2),
                                            (Reinforce(baseline="loo", num_samples=2), 5, 2)])  # fmt: skip
def test_budget_averages_and_keeps_the_mean(inner, budget, k):
    """Mean: the exact-gradient z-test at 1e-4. Variance: single / budgeted within the 1e-4
    CIs of both traces must cover k (20000 draws each make those CIs about +-5%)."""
    task = ToyQuadratic(**TASK)
    single = draw(task, inner, 20_000, seed=0)
    averaged = draw(task, Budgeted(inner, budget), 20_000, seed=1)
    z = mean_z(averaged, exact(task))
    assert np.abs(z).max() < z_crit(z.size)
    level = 1 - ALPHA / 2
    a, b = variance_statistics(single, level), variance_statistics(averaged, level)
    assert a["variance_lo"] / b["variance_hi"] <= k <= a["variance_hi"] / b["variance_lo"]
    assert not (a["variance_lo"] / b["variance_hi"] <= 1 <= a["variance_hi"] / b["variance_lo"])  # power: not 1


def test_run_records_the_budget(tmp_path):
    knobs = ("estimator=reinforce", "steps=2", "probe.samples=50")
    run(config(*knobs, "budget=6"), tmp_path)
    stats = pd.read_csv(tmp_path / "stats.csv")
    assert set(stats["evaluations"]) == {6} and set(stats["estimator"]) == {"reinforce"}
    # the budget is part of the configuration's identity
    assert set(stats["config_id"]) == {config_id(config(*knobs, "budget=6"))} != {config_id(config(*knobs))}


def test_bad_budget_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="budget must be an integer >= 1, got 0"):
        run(config("budget=0"), tmp_path)
