"""REINFORCE (every baseline) against the exact gradient of the toy quadratic and of the MRF
(both families each), and broken variants that the same z-test must catch.

Test: the conformance kit's exact-gradient z-test (discograd.conformance.check_unbiased): max
over coordinates of |mean - exact| / se below z_crit(P) (family-wise false alarm 1e-4). Targets are chosen so that gradients are not tiny
(bernoulli t = 0.2, categorical t = (0.7, 0.2, 0.1); the MRFs start away from uniform
and have fields and couplings of order 1): with N = 20000 draws the broken
variants land more than 10 standard errors past the threshold (asserted below, so a drop in
power shows up as a failure, not as a silent pass).
"""
import pytest
import torch

from estimators.reinforce import Reinforce
from discograd.conformance import ConformanceError, check_unbiased, z_crit
from tasks.mrf import MRF
from tasks.toy_quadratic import ToyQuadratic

N = 20_000
TASKS = {
    "toy-bernoulli": lambda: ToyQuadratic(family="bernoulli", dims=3, target=0.2, init_logit=[-1.0, 0.5, 1.5]),
    "toy-categorical": lambda: ToyQuadratic(family="categorical", dims=2, classes=3, target=[0.7, 0.2, 0.1],
                                            init_logit=[[0.5, -0.5, 0.0], [1.0, 0.0, -1.0]]),
    "mrf-bernoulli": lambda: MRF(height=2, width=3, family="bernoulli", coupling="spin_glass",
                                 init_logit=[1.0, -1.0, 0.5, 0.0, -0.5, 1.5]),
    "mrf-categorical": lambda: MRF(height=2, width=2, classes=3, coupling="antiferromagnetic", field_scale=1.0,
                                   init_logit=[[1.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-0.5, 0.5, 1.0], [0.0, 0.0, 0.0]]),
}  # fmt: skip
BASELINES = [dict(baseline="none"), dict(baseline="none", num_samples=3), dict(baseline="moving_average"),
             dict(baseline="loo", num_samples=2), dict(baseline="loo", num_samples=4)]  # fmt: skip


class SignFlipped(Reinforce):
    """Broken on purpose: the score term with the wrong sign."""

    def forward(self, logits, f, family):
        estimate = super().forward(logits, f, family)
        return type(estimate)(-estimate.surrogate, estimate.value, estimate.evaluations)


class BaselineNotLeftOut(Reinforce):
    """Broken on purpose: the baseline includes the sample's own value (mean over all S)."""

    def baseline_values(self, values):
        return values.detach().mean(0, keepdim=True).expand_as(values)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("knobs", BASELINES, ids=lambda k: "-".join(map(str, k.values())))
def test_reinforce_matches_exact_gradient(task, knobs):
    task = TASKS[task]()
    estimator = Reinforce(**knobs)
    if knobs["baseline"] == "moving_average":
        estimator.running_mean.fill_(0.3)  # any value the baseline has reached: still unbiased
    check_unbiased(task, estimator, N)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("broken", [SignFlipped(), BaselineNotLeftOut(baseline="loo", num_samples=2)], ids=type)
def test_broken_reinforce_fails_the_same_test(task, broken):
    task = TASKS[task]()
    with pytest.raises(ConformanceError) as failed:
        check_unbiased(task, broken, N)
    assert failed.value.z > z_crit(task.logits().numel()) + 10


def test_moving_average_updates_in_training_only():
    task = ToyQuadratic(family="bernoulli", dims=2, target=0.2)
    estimator = Reinforce(baseline="moving_average", decay=0.75)
    estimate = estimator(task.logits(), task.objective, task.family)
    assert estimator.running_mean.item() == pytest.approx(0.25 * estimate.value.item())
    estimator.eval()
    before = estimator.running_mean.clone()
    estimator(task.logits(), task.objective, task.family)
    assert torch.equal(estimator.running_mean, before)


@pytest.mark.parametrize("knobs,message", [
    (dict(baseline="loo", num_samples=1), "num_samples"),
    (dict(baseline="bogus"), "valid: none, moving_average, loo"),
    (dict(decay=1.0), "decay"),
    (dict(num_samples=0), "num_samples"),
])  # fmt: skip
def test_reinforce_rejects_bad_knobs(knobs, message):
    with pytest.raises(ValueError, match=message):
        Reinforce(**knobs)
