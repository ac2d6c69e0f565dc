"""The biased estimators behave as theory says, on the bernoulli toy with D = 1 where their
means have closed forms or one-dimensional integrals.

f(b) = (b - t)^2, p = sigmoid(theta), exact gradient sigmoid'(theta) (1 - 2 t). theta = 0.5
keeps p away from 1/2, where several of these means coincide with the exact gradient.
Every z-test runs at false-alarm rate 1e-4 (tests/helpers.py); each also runs a wrong
answer (the exact gradient, or the right formula at a wrong temperature) through the same
test and requires it to fail by a margin of 5 standard errors past the threshold.
"""

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.special import expit, logit

from analysis.statistics import gradient_statistics
from estimators.gumbel_softmax import GumbelSoftmax
from estimators.sigmoid_st import SigmoidStraightThrough
from estimators.st import StraightThrough
from estimators.st_gumbel_softmax import StraightThroughGumbelSoftmax
from helpers import ALPHA, draw, exact, max_abs_z, z_crit
from tasks.toy_quadratic import ToyQuadratic

THETA, T = 0.5, 0.45
N = 100_000
P = expit(THETA)


def toy() -> ToyQuadratic:
    return ToyQuadratic(family="bernoulli", dims=1, target=T, init_logit=THETA)


def dsigmoid(x: float) -> float:
    return expit(x) * (1 - expit(x))


def relaxed_gradient(tau: float) -> float:
    """d/dtheta E[(y - t)^2], y = sigmoid((theta + logit(u)) / tau), u ~ U(0, 1), by quadrature."""

    def integrand(u: float) -> float:
        y = expit((THETA + logit(u)) / tau)
        return 2 * (y - T) * y * (1 - y) / tau

    value, error = integrate.quad(integrand, 0, 1, points=[expit(-THETA)], limit=200, epsabs=1e-12)
    assert error < 1e-8
    return value


def check_mean(estimates: np.ndarray, right: float, wrong: float) -> None:
    assert max_abs_z(estimates, [right]) < z_crit(1)
    assert max_abs_z(estimates, [wrong]) > z_crit(1) + 5


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_sigmoid_st_mean_is_its_closed_form(tau):
    # E[2 (b - t)] d sigmoid(theta / tau) / d theta = sigmoid'(theta / tau) / tau * 2 (p - t)
    closed = dsigmoid(THETA / tau) / tau * 2 * (P - T)
    x = draw(toy(), SigmoidStraightThrough(temperature=tau), N)
    check_mean(x, closed, wrong=dsigmoid(THETA) * (1 - 2 * T))
    other = 0.5 if tau == 1.0 else 1.0
    assert max_abs_z(x, [dsigmoid(THETA / other) / other * 2 * (P - T)]) > z_crit(1) + 5


def test_st_mean_is_its_closed_form():
    # identity backward: E[2 (b - t)] = 2 (p - t)
    check_mean(draw(toy(), StraightThrough(), N), 2 * (P - T), wrong=dsigmoid(THETA) * (1 - 2 * T))


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_gumbel_softmax_mean_is_the_relaxed_gradient(tau):
    x = draw(toy(), GumbelSoftmax(temperature=tau), N, seed=int(10 * tau))
    wrong_tau = {0.1: 0.5, 0.5: 0.1, 1.0: 0.1}[tau]  # relaxed gradient is not monotone in tau
    check_mean(x, relaxed_gradient(tau), wrong=relaxed_gradient(wrong_tau))


def test_gumbel_softmax_bias_falls_and_variance_grows_with_lower_temperature():
    # 64 copies of the D = 1 toy: the bias norm grows as sqrt(D) x its per-coordinate size, its CI
    # width does not, so at N = 1e5 the intervals at 0.1 and 1.0 are apart by ~20% of the bias
    task = ToyQuadratic(family="bernoulli", dims=64, target=T, init_logit=THETA)
    level = 1 - ALPHA / 5  # five intervals (two biases, three variances), each missing at 1e-4 / 5
    # (the bias is not monotone in tau at this point: 0.5 is more biased than 1.0, so only 0.1 vs 1.0)
    stats = {
        tau: gradient_statistics(draw(task, GumbelSoftmax(temperature=tau), N, seed=7), exact(task), level=level)
        for tau in (0.1, 0.5, 1.0)
    }
    assert stats[0.1]["bias_norm_hi"] < stats[1.0]["bias_norm_lo"]
    assert stats[0.1]["variance_lo"] > stats[0.5]["variance_hi"]
    assert stats[0.5]["variance_lo"] > stats[1.0]["variance_hi"]


@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_st_gumbel_softmax_evaluates_f_on_exact_hard_samples(family):
    torch.manual_seed(3)
    batch = 50_000
    if family == "bernoulli":
        logits = torch.tensor([THETA, -1.0]).expand(batch, 2).requires_grad_()
        probs = torch.sigmoid(logits[0]).detach()
    else:
        logits = torch.tensor([[0.5, -0.5, 0.0]]).expand(batch, 1, 3).requires_grad_()
        probs = torch.softmax(logits[0], -1).detach()
    seen = []

    def f(z):
        seen.append(z.detach())
        return (z - 0.3).pow(2).flatten(2).sum(-1)  # [S, B]

    estimate = StraightThroughGumbelSoftmax(temperature=0.5)(logits, f, family)
    z = seen[0]
    assert ((z == 0) | (z == 1)).all()
    if family == "categorical":
        assert (z.sum(-1) == 1).all()
    # the hard samples are exact draws of p: their mean matches the probabilities
    x = z.reshape(batch, -1).numpy()
    assert max_abs_z(x, probs.reshape(-1).numpy()) < z_crit(x.shape[1])
    assert estimate.value.item() == pytest.approx(f(z).mean().item())
    estimate.surrogate.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
