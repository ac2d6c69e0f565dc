"""Gapped straight-through (gst), ZGR (zgr) and decoupled ST-GS (decoupled_st).

False-alarm policy (tests/helpers.py): every statistical assertion is a test at family-wise
level ALPHA = 1e-4 with a fixed seed, Bonferroni over the coordinates it looks at (z_crit).
Each also runs a wrong answer or a broken variant through the same test and requires it to
fail by a stated margin past the threshold (5 standard errors for the closed-form means on
the D = 1 toy, as tests/test_biased.py; 10 for the exact-gradient z-tests, as
tests/test_unbiased.py). Exact tests (fixed noise, a formula by hand) compare at 1e-12 or
bit for bit.

The D = 1 bernoulli toy: f(b) = (b - t)^2, p = sigmoid(theta), df/db = 2 (b - t).
"""
import numpy as np
import pytest
import torch
from helpers import draw, max_abs_z, z_crit
from scipy import integrate
from scipy.special import expit, logit
from test_unbiased import TASKS  # the tasks every unbiased estimator is z-tested on

from discograd.conformance import ConformanceError, check_unbiased
from estimators.decoupled_st import DecoupledStraightThroughGumbelSoftmax as DecoupledST
from estimators.gst import GappedStraightThrough
from estimators.sample_st import as_two_classes
from estimators.st_gumbel_softmax import StraightThroughGumbelSoftmax
from estimators.zgr import ZGR
from primitives.families import sample, soft
from tasks.toy_quadratic import ToyQuadratic

THETA, T = 0.5, 0.45
P = expit(THETA)
N = 100_000
N_UNBIASED = 20_000


def toy() -> ToyQuadratic:
    return ToyQuadratic(family="bernoulli", dims=1, target=T, init_logit=THETA)


def dsigmoid(x: float) -> float:
    return expit(x) * (1 - expit(x))


def check_mean(estimates: np.ndarray, right: float | np.ndarray, wrong: float | np.ndarray,
               margin: float = 5.0) -> None:
    tests = np.size(right)
    assert max_abs_z(estimates, np.atleast_1d(right)) < z_crit(tests)
    assert max_abs_z(estimates, np.atleast_1d(wrong)) > z_crit(tests) + margin


def grad_of(estimator, logits: torch.Tensor, f, family: str, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    (grad,) = torch.autograd.grad(estimator(logits, f, family).surrogate, logits)
    return grad


def softmax_jacobian(pi: torch.Tensor) -> torch.Tensor:
    """diag(pi) - pi pi^T over the last axis."""
    return torch.diag_embed(pi) - pi.unsqueeze(-1) * pi.unsqueeze(-2)


# ---------------------------------------------------------------- GST

LOGITS = torch.tensor([[0.5, -1.0, 2.0, 0.0], [0.0, 0.3, -0.2, 1.0]], dtype=torch.float64)
WEIGHT = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.2, 0.0, -1.0, 1.5]], dtype=torch.float64)


def quadratic(z: torch.Tensor) -> torch.Tensor:  # [1, D, K] -> [1]
    return (z * WEIGHT).sum((-2, -1)) ** 2


def moved_by_hand(logits: list[float], k: int, gap: float | str) -> list[float]:
    """Fan et al.'s perturbed logits, one class at a time: the sampled k to the maximum, every
    other j to l_j - max(0, l_j - max + gap); gap "p" is -log(1 - pi_k) / pi_k."""
    top = max(logits)
    if gap == "p":
        pi = float(np.exp(logits[k]) / np.exp(logits).sum()) * (1 - 1e-5)
        gap = -np.log(1 - pi) / pi
    return [top if j == k else lj - max(0.0, lj - top + gap) for j, lj in enumerate(logits)]


def gst_mean_by_hand(logits: np.ndarray, target: np.ndarray, tau: float,
                     gap: float | str) -> np.ndarray:
    """E[GST] on the categorical toy f = mean_d ||z_d - t||^2 by enumerating each z_d:
    sum_k p_k J(softmax(l'_k / tau)) / tau 2 (e_k - t) / D."""
    dims, classes = logits.shape
    mean = np.zeros_like(logits)
    for d in range(dims):
        p = np.exp(logits[d]) / np.exp(logits[d]).sum()
        for k in range(classes):
            moved = np.array(moved_by_hand(list(logits[d]), k, gap)) / tau
            pi = np.exp(moved) / np.exp(moved).sum()
            jacobian = (np.diag(pi) - np.outer(pi, pi)) / tau
            mean[d] += p[k] * jacobian @ (2 * (np.eye(classes)[k] - target) / dims)
    return mean.reshape(-1)


@pytest.mark.parametrize("gap", [1.0, 0.3, "p"])
def test_gst_backward_is_the_papers_by_hand(gap):
    """One draw, fixed seed: J(softmax(l' / tau)) / tau df/dD, l' moved by hand from the draw D."""
    tau = 0.7
    logits = LOGITS.clone().requires_grad_()
    for seed in range(5):
        estimator = GappedStraightThrough(temperature=tau, gap=gap)
        got = grad_of(estimator, logits, quadratic, "categorical", seed)
        torch.manual_seed(seed)
        d = sample(logits, "categorical", 1)[0]  # [D, K], the estimator's draw
        g = 2 * (d * WEIGHT).sum() * WEIGHT  # df/dD at D
        rows = zip(LOGITS.tolist(), d.argmax(-1).tolist())
        moved = torch.tensor([moved_by_hand(row, k, gap) for row, k in rows], dtype=torch.float64)
        pi = torch.softmax(moved / tau, -1)
        by_hand = (softmax_jacobian(pi) / tau @ g.unsqueeze(-1)).squeeze(-1)
        assert torch.allclose(got, by_hand, rtol=0, atol=1e-12)


@pytest.mark.parametrize("gap", [1.0, "p"])
def test_gst_bernoulli_is_the_two_class_form(gap):
    """bernoulli: sigma'(l' / tau) / tau df/db with l' = s max(s l, gamma), s = 2 b - 1 (the
    K = 2 categorical form worked out), on both values of b."""
    tau = 0.6
    theta = torch.tensor([-2.0, -0.4, 0.0, 0.3, 1.5, 4.0], dtype=torch.float64)
    for b in (0.0, 1.0):
        logits = theta.clone().requires_grad_()
        z = torch.full((1, 6), b, dtype=torch.float64)
        proxy = GappedStraightThrough(temperature=tau, gap=gap).proxy(logits, z, "bernoulli")
        (got,) = torch.autograd.grad(proxy.sum(), logits)
        s = 2 * b - 1
        pi_b = torch.sigmoid(s * theta) * (1 - 1e-5)
        gamma = -torch.log1p(-pi_b) / pi_b if gap == "p" else gap
        moved = s * torch.maximum(s * theta, torch.as_tensor(gamma, dtype=torch.float64))
        by_hand = torch.sigmoid(moved / tau) * torch.sigmoid(-moved / tau) / tau
        assert torch.allclose(got, by_hand, rtol=0, atol=1e-12)


def gst_bernoulli_mean(tau: float, gap: float | str) -> float:
    """E[GST] on the D = 1 toy,
    p 2 (1 - t) s'(max(theta, g_1)) + (1 - p) (-2 t) s'(max(-theta, g_0)),
    s'(x) = sigma'(x / tau) / tau, g_b the gap given b."""

    def gamma(pi: float) -> float:
        pi *= 1 - 1e-5
        return -np.log(1 - pi) / pi if gap == "p" else gap

    one = dsigmoid(max(THETA, gamma(P)) / tau) / tau
    zero = dsigmoid(max(-THETA, gamma(1 - P)) / tau) / tau
    return P * 2 * (1 - T) * one - (1 - P) * 2 * T * zero


@pytest.mark.parametrize("tau,gap,wrong_gap", [(1.0, 1.0, 0.5), (0.5, 1.0, "p"), (0.5, "p", 1.0)])
def test_gst_mean_on_the_bernoulli_toy_is_its_closed_form(tau, gap, wrong_gap):
    x = draw(toy(), GappedStraightThrough(temperature=tau, gap=gap), N, seed=1)
    check_mean(x, gst_bernoulli_mean(tau, gap), gst_bernoulli_mean(tau, wrong_gap))
    exact_gradient = dsigmoid(THETA) * (1 - 2 * T)
    assert max_abs_z(x, [exact_gradient]) > z_crit(1) + 5  # biased: not the exact gradient


@pytest.mark.parametrize("gap,wrong_gap", [(1.0, "p"), ("p", 1.0)])
def test_gst_mean_on_the_categorical_toy_is_its_enumeration(gap, wrong_gap):
    task = TASKS["toy-categorical"]()
    logits, target = task.logits().detach().numpy(), task.target.numpy()
    x = draw(task, GappedStraightThrough(temperature=0.5, gap=gap), N, seed=2)
    right, wrong = (gst_mean_by_hand(logits, target, 0.5, g) for g in (gap, wrong_gap))
    check_mean(x, right, wrong)


def test_gst_categorical_with_two_classes_is_the_bernoulli_estimator_in_distribution():
    """Logits (0, theta), target (1 - t, t): f is twice the bernoulli toy's, so d/dtheta has
    twice the bernoulli mean, and d/dl_0 = -d/dtheta on every draw (a softmax Jacobian)."""
    task = ToyQuadratic(family="categorical", dims=1, classes=2, target=[1 - T, T],
                        init_logit=[[0.0, THETA]])
    x = draw(task, GappedStraightThrough(temperature=0.5), N, seed=3)
    assert np.allclose(x[:, 0], -x[:, 1], rtol=0, atol=1e-6)
    check_mean(x[:, 1:], 2 * gst_bernoulli_mean(0.5, 1.0), 2 * gst_bernoulli_mean(0.5, 0.5))


@pytest.mark.parametrize("gap", [-1.0, float("nan"), float("inf"), "q", None])
def test_gst_rejects_bad_gaps(gap):
    with pytest.raises(ValueError, match="gst gap must be"):
        GappedStraightThrough(gap=gap)


# ---------------------------------------------------------------- ZGR


def test_zgr_backward_is_the_formula_by_hand():
    """Categorical: d/dl <g, (p + sg(x - p) log p_x) / 2> = (J(p) g + <x - p, g> (x - p)) / 2;
    bernoulli: (b (1 - p) + (1 - b) p) / 2 g; the sample drawn as the estimator draws it."""
    logits = LOGITS.clone().requires_grad_()
    theta = torch.tensor([-1.0, 0.2, 2.5], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    for seed in range(5):
        got = grad_of(ZGR(), logits, quadratic, "categorical", seed)
        torch.manual_seed(seed)
        x = sample(logits, "categorical", 1)[0]
        g = 2 * (x * WEIGHT).sum() * WEIGHT
        p = torch.softmax(LOGITS, -1)
        straight = (softmax_jacobian(p) @ g.unsqueeze(-1)).squeeze(-1)
        darn = ((x - p) * g).sum(-1, keepdim=True) * (x - p)
        assert torch.allclose(got, 0.5 * (straight + darn), rtol=0, atol=1e-12)

        got = grad_of(ZGR(), theta, lambda b: ((b * w).sum(-1) ** 2), "bernoulli", seed)
        torch.manual_seed(seed)
        b = sample(theta, "bernoulli", 1)[0]
        q = torch.sigmoid(theta.detach())
        by_hand = 0.5 * (b * (1 - q) + (1 - b) * q) * 2 * (b * w).sum() * w
        assert torch.allclose(got, by_hand, rtol=0, atol=1e-12)


def test_zgr_bernoulli_jacobian_is_the_categorical_one_on_two_classes():
    """On logits (0, theta) and x = (1 - b, b), d x~_1 / d theta of the categorical formula is the
    bernoulli Jacobian, for both values of b."""
    theta = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.0], dtype=torch.float64)
    for b in (0.0, 1.0):
        z = torch.full((1, 5), b, dtype=torch.float64)
        bern = theta.clone().requires_grad_()
        (got,) = torch.autograd.grad(ZGR().proxy(bern, z, "bernoulli").sum(), bern)
        cat = theta.clone().requires_grad_()
        two, z2 = as_two_classes(cat, z)
        (want,) = torch.autograd.grad(ZGR().proxy(two, z2, "categorical")[..., 1].sum(), cat)
        assert torch.allclose(got, want, rtol=0, atol=1e-12)


class ZGRWithoutHalf(ZGR):
    """Broken on purpose: the sum of the straight-through and DARN Jacobians, not their mean."""

    def proxy(self, logits, z, family):
        return 2 * super().proxy(logits, z, family)


class ZGRWithoutLogProb(ZGR):
    """Broken on purpose: the DARN term (the log-probability of the sample) left out."""

    def proxy(self, logits, z, family):
        return 0.5 * soft(logits, family, 1.0)


@pytest.mark.parametrize("task", TASKS)
def test_zgr_is_unbiased_for_quadratic_f(task):
    """The toy quadratic is quadratic in z and the MRF's f multilinear in the sites: ZGR's mean is
    the exact gradient there [Shekhovtsov 2023], and its broken variants are far from it."""
    check_unbiased(TASKS[task](), ZGR(), N_UNBIASED)
    for broken in (ZGRWithoutHalf(), ZGRWithoutLogProb()):
        with pytest.raises(ConformanceError) as failed:
            check_unbiased(TASKS[task](), broken, N_UNBIASED)
        assert failed.value.z > z_crit(TASKS[task]().logits().numel()) + 10


# ---------------------------------------------------------------- decoupled ST-GS


@pytest.mark.parametrize("task", ["toy-bernoulli", "toy-categorical"])
@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
def test_decoupled_st_at_both_temperatures_one_is_st_gumbel_softmax(task, vectorize):
    """Draw for draw: same seed, same random stream, the two estimates agree bit for bit."""
    samples = 2000 if vectorize else 200
    decoupled = DecoupledST(temperature=1.0, forward_temperature=1.0)
    st = StraightThroughGumbelSoftmax(temperature=1.0)
    x, y = (draw(TASKS[task](), e, samples, vectorize, seed=4) for e in (decoupled, st))
    assert np.array_equal(x, y)


def decoupled_mean(tau_f: float, tau_b: float, scaled_noise: bool = False) -> float:
    """E[decoupled ST-GS] on the D = 1 toy by quadrature over the logistic noise logit(u):
    b = 1[theta / tau_f + logit(u) > 0], y = sigma(theta / tau_b + logit(u)), estimate
    2 (b - t) y (1 - y) / tau_b. ``scaled_noise``: the backward sigma((theta + tau_f logit(u)) / tau_b)
    of ST-GS on the tempered logits (this module's earlier reading, a wrong answer now)."""

    def integrand(u: float) -> float:
        b = float(THETA / tau_f + logit(u) > 0)
        y = expit((THETA + tau_f * logit(u)) / tau_b) if scaled_noise else expit(THETA / tau_b + logit(u))
        return 2 * (b - T) * y * (1 - y) / tau_b

    jump = expit(-THETA / tau_f)  # where b jumps from 0 to 1
    value, error = integrate.quad(integrand, 0, 1, points=[jump], limit=200, epsabs=1e-12)
    assert error < 1e-8
    return value


@pytest.mark.parametrize("tau_f,tau_b", [(2.0, 0.5), (0.5, 1.0), (1.0, 0.5)])
def test_decoupled_st_mean_on_the_bernoulli_toy_is_its_integral(tau_f, tau_b):
    """Wrong answers: the forward temperature ignored (what a hard argmax of
    softmax((theta + g) / tau_f) would give), the two temperatures swapped, and the noise
    scaled by tau_f / tau_b in the backward."""
    x = draw(toy(), DecoupledST(temperature=tau_b, forward_temperature=tau_f), N, seed=5)
    wrong = decoupled_mean(1.0, tau_b) if tau_f != 1.0 else decoupled_mean(tau_b, 1.0)
    check_mean(x, decoupled_mean(tau_f, tau_b), wrong)
    assert max_abs_z(x, [decoupled_mean(tau_f, tau_b, scaled_noise=True)]) > z_crit(1) + 5
    if tau_f != 1.0:
        assert max_abs_z(x, [decoupled_mean(tau_b, tau_f)]) > z_crit(1) + 5


def test_decoupled_st_samples_the_tempered_distribution():
    """The hard samples are draws of softmax(l / tau_f), not of softmax(l); f sees them only."""
    torch.manual_seed(6)
    batch, tau_f = 50_000, 2.0
    logits = torch.tensor([[1.5, -0.5, 0.0]]).expand(batch, 1, 3).requires_grad_()
    seen = []

    def f(z):
        seen.append(z.detach())
        return (z - 0.3).pow(2).flatten(2).sum(-1)  # [S, B]

    estimate = DecoupledST(temperature=0.5, forward_temperature=tau_f)(logits, f, "categorical")
    z = seen[0]
    assert ((z == 0) | (z == 1)).all() and (z.sum(-1) == 1).all()
    x = z.reshape(batch, -1).numpy()
    tempered = torch.softmax(logits[0] / tau_f, -1).detach().reshape(-1).numpy()
    assert max_abs_z(x, tempered) < z_crit(3)
    assert max_abs_z(x, torch.softmax(logits[0], -1).detach().reshape(-1).numpy()) > z_crit(3) + 10
    assert estimate.value.item() == pytest.approx(f(z).mean().item())


@pytest.mark.parametrize("knobs,message", [
    (dict(forward_temperature=0.0), "decoupled_st forward_temperature must be > 0"),
    (dict(forward_temperature="hot"), "decoupled_st forward_temperature must be a positive number"),
    (dict(temperature=-1.0), "temperature must be > 0"),
])  # fmt: skip
def test_decoupled_st_rejects_bad_knobs(knobs, message):
    with pytest.raises(ValueError, match=message):
        DecoupledST(**knobs)
