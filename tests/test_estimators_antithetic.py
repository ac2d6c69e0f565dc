"""arm, disarm, muprop and exact against the exact gradient of the toy quadratic and of the MRF
(every family each supports), broken variants that the same tests must catch, DisARM's
variance below ARM's, and exact's limit.

Tests (false-alarm policy of tests/helpers.py: family-wise 1e-4, Bonferroni, fixed seeds):
- unbiasedness: max over coordinates of |mean - exact| / se below z_crit(P), with N = 20000
  draws through the probe (vmap path). The tasks are those of tests/test_unbiased.py
  (gradients of order 0.1 to 1). The broken variants (ARM with its sign flipped, DisARM
  without its sigma(|l|) factor, MuProp without its analytic term) land more than 10
  standard errors past the threshold (asserted, so a loss of power fails loudly).
- exact: every draw, through both probe paths, equals the task's exact gradient to 1e-5.
- variance: DisARM is ARM Rao-Blackwellized over u, so tr Cov(DisARM) <= tr Cov(ARM). The
  test asserts that DisARM's upper confidence limit is below ARM's lower one, each CI
  (analysis.statistics.variance_statistics) at level 1 - 1e-4 / 2: if DisARM's variance
  were not below ARM's, that would need one CI to miss, probability <= 1e-4. At the points
  chosen ARM's variance is about 1.4 to 1.6 times DisARM's, so with N = 20000 the two
  intervals are far apart (the gap is asserted to exceed 10 combined standard errors).
"""
import numpy as np
import pytest
import torch
from helpers import ALPHA, draw, exact, mean_z, z_crit
from test_unbiased import TASKS  # the tasks every unbiased estimator is z-tested on

from analysis.statistics import variance_statistics
from discograd.probe import draw_estimates
from estimators.arm import ARM
from estimators.disarm import DisARM
from estimators.exact import Exact
from primitives.enumeration import MAX_CONFIGURATIONS
from estimators.muprop import MuProp
from tasks.mrf import MRF
from tasks.toy_quadratic import ToyQuadratic

N = 20_000
BERNOULLI = [t for t in TASKS if t.endswith("bernoulli")]


class SignFlippedARM(ARM):
    """Broken on purpose: the ARM learning signal with the wrong sign."""

    def learning_signal(self, u, z, values, logits):
        return -super().learning_signal(u, z, values, logits)


class DisARMWithoutSigma(DisARM):
    """Broken on purpose: DisARM without its sigma(|l|) factor."""

    def learning_signal(self, u, z, values, logits):
        return super().learning_signal(u, z, values, logits) / torch.sigmoid(logits.abs())


class MuPropWithoutAnalyticTerm(MuProp):
    """Broken on purpose: the control variate subtracted, its expectation's gradient not added back."""

    def control_variate(self, f, z, logits, family):
        h, expected_h = super().control_variate(f, z, logits, family)
        return h, expected_h.detach()


CASES = [(ARM, t) for t in BERNOULLI] + [(DisARM, t) for t in BERNOULLI] + [(MuProp, t) for t in TASKS]
BROKEN = [(SignFlippedARM, t) for t in BERNOULLI] + [(DisARMWithoutSigma, t) for t in BERNOULLI] + [
    (MuPropWithoutAnalyticTerm, t) for t in TASKS
]


@pytest.mark.parametrize("cls,task", CASES, ids=lambda x: getattr(x, "name", x))
def test_matches_exact_gradient(cls, task):
    task = TASKS[task]()
    z = mean_z(draw(task, cls(), N), exact(task))
    assert np.abs(z).max() < z_crit(z.size)


@pytest.mark.parametrize("cls,task", BROKEN, ids=lambda x: getattr(x, "__name__", x))
def test_broken_variant_fails_the_same_test(cls, task):
    task = TASKS[task]()
    z = mean_z(draw(task, cls(), N), exact(task))
    assert np.abs(z).max() > z_crit(z.size) + 10


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
def test_exact_equals_the_exact_gradient(task, vectorize):
    task = TASKS[task]()
    draws = draw(task, Exact(), 4, vectorize=vectorize)
    np.testing.assert_allclose(draws, np.broadcast_to(exact(task), draws.shape), rtol=0, atol=1e-5)


def test_exact_reports_its_configurations_as_evaluations():
    task = ToyQuadratic(family="bernoulli", dims=12)  # 2^12 = 4096: the largest allowed
    assert draw_estimates(task, Exact(), None, 2).evaluations == MAX_CONFIGURATIONS
    task = TASKS["mrf-categorical"]()
    assert draw_estimates(task, Exact(), None, 2).evaluations == 3**4


@pytest.mark.parametrize("task,message", [
    (lambda: ToyQuadratic(family="bernoulli", dims=13), "this task has 2\\^D = 2\\^13 = 8192"),
    (lambda: MRF(height=3, width=3, classes=3), "this task has K\\^D = 3\\^9 = 19683"),
    (lambda: ToyQuadratic(family="bernoulli", dims=200), "this task has 2\\^D = 2\\^200 = 1.61e\\+60"),
], ids=["toy-2^13", "mrf-3^9", "toy-2^200"])  # fmt: skip
def test_exact_rejects_a_latent_space_too_large(task, message):
    with pytest.raises(ValueError, match=f"exact needs at most 4096 latent configurations per batch element; {message}"):
        draw(task(), Exact(), 2)


@pytest.mark.parametrize("task", [
    lambda: ToyQuadratic(family="bernoulli", dims=6, target=0.45, init_logit=[2.0, -2.0, 1.0, -1.0, 0.0, 3.0]),
    lambda: MRF(height=3, width=3, family="bernoulli", init_logit=2.0),
], ids=["toy", "mrf"])  # fmt: skip
def test_disarm_has_less_variance_than_arm(task):
    task = task()
    level = 1 - ALPHA / 2
    arm = variance_statistics(draw(task, ARM(), N, seed=1), level=level)
    disarm = variance_statistics(draw(task, DisARM(), N, seed=2), level=level)
    assert disarm["variance_hi"] < arm["variance_lo"]
    se = np.hypot(arm["variance_hi"] - arm["variance"], disarm["variance_hi"] - disarm["variance"]) / z_crit(1, 1 - level)
    assert arm["variance"] - disarm["variance"] > 10 * se  # power: far from the threshold, not just past it


def test_disarm_single_draws_by_hand():
    """One coordinate, f(z) = (z - t)^2: b and b~ differ or not, so every DisARM draw is
    0 or (f(1) - f(0)) sigma(|l|) / 2, exactly (the uniform is integrated out)."""
    logit, t = 0.7, 0.2
    task = ToyQuadratic(family="bernoulli", dims=1, target=t, init_logit=logit)
    draws = draw(task, DisARM(), 2000)[:, 0]
    nonzero = (1 - 2 * t) * torch.sigmoid(torch.tensor(abs(logit))).item() / 2
    zero = np.abs(draws) < 1e-7
    assert np.allclose(draws[~zero], nonzero, rtol=1e-6, atol=0)
    assert 0 < zero.mean() < 1
