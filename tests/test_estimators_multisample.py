"""indecater and arms, the two multi-evaluation estimators: against exact gradients, against
DisARM (arms with two samples is DisARM), and broken variants that the same tests must catch.

False-alarm policy of tests/helpers.py: family-wise 1e-4 per statistical test (Bonferroni
over its coordinates), fixed seeds; the broken variants land more than 10 standard errors past
the same threshold (asserted, so a loss of power fails loudly).

- indecater on a separable f (the toy quadratic, every task of test_unbiased.py's and the
  kit's): every draw is the exact gradient up to float rounding (atol 1e-6, no Monte Carlo
  tolerance). Its variants with one category's term dropped, or with f at z in place of
  f(z_-d, k), are off by more than 1e-3 in every draw.
- indecater on the MRFs (not separable), both families, S = 1 and 2; arms on the toy and the
  bernoulli MRF, n = 2, 3, 5: the conformance kit's exact-gradient z-test, N = 20000 draws.
- the pathwise part (a weight w inside f): N = 20000 independent estimates from one call on a
  batch of N copies (batch elements are independent and the surrogate is their mean, so
  N x the gradient of element b is its estimate); z-test of the w gradient against the
  closed form, and of the logits' for arms (indecater's are exact, checked to 1e-6).
- arms(n = 2) equals DisARM: the same learning signal on the same antithetic pair, exactly
  (1e-6), for logits of both signs; and in distribution through the probe: a two-sample z-test
  on the means and second moments (x_i and x_i x_j, 5 statistics on a 2-coordinate toy with
  p = sigma(0.5) and sigma(-2), both branches of the copula) of N = 20000 arms draws against
  N = 20000 DisARM draws (independent seeds). The estimates are bounded (f takes three values),
  so each statistic's z is N(0, 1) to within the CLT at N = 20000, and Bonferroni over 5 keeps
  the false alarm at 1e-4. LOORF (arms with independent samples and no correction: unbiased
  too, so the means agree) has a second moment about 1.6 times DisARM's on the first
  coordinate and fails it by far (margin asserted).
- the Dirichlet copula: each uniform is U(0, 1) (Kolmogorov-Smirnov, 1e-4) and the pairwise
  joint P(u_i < q, u_j < q) is C(q), the correction's ingredient (binomial z-tests).
- evaluations as discograd list measures them (D = 2 and D = 3), and bad knobs refused.
"""
import numpy as np
import pytest
import torch
from helpers import ALPHA, draw, exact, mean_z, z_crit
from scipy.stats import kstest
from test_probe import two_sample_z
from test_unbiased import TASKS

from discograd.conformance import TASKS as KIT_TASKS
from discograd.conformance import ConformanceError, check_unbiased
from discograd.listing import SHAPES, estimator_node, evaluations_text
from estimators.arms import ARMS, copula_joint, correction, dirichlet_copula
from estimators.arm import antithetic_pair
from estimators.disarm import DisARM
from estimators.indecater import IndeCateR
from primitives.families import sample, soft
from tasks.toy_quadratic import ToyQuadratic

N = 20_000
SEPARABLE = {
    **{name: TASKS[name] for name in ("toy-bernoulli", "toy-categorical")},
    **{f"kit-toy-{family}": lambda family=family: KIT_TASKS["toy_quadratic"](family)
       for family in ("bernoulli", "categorical")},
}  # fmt: skip
MRFS = ["mrf-bernoulli", "mrf-categorical"]
BERNOULLI = ["toy-bernoulli", "mrf-bernoulli"]


class WithoutFirstState(IndeCateR):
    """Broken on purpose: the term of state k = 0 (the first category) dropped."""

    def score(self, values, logits, family):
        kept = torch.cat([torch.zeros_like(values[:, :1]), values[:, 1:]], 1)  # [D, K, S, *B]
        return super().score(kept, logits, family)


class AtTheSample(IndeCateR):
    """Broken on purpose: f at z for every (d, k), in place of f(z_-d, k)."""

    @staticmethod
    def configurations(z, logits, family):
        return z.expand(IndeCateR.configurations(z, logits, family).shape)


class WithoutCorrection(ARMS):
    """Broken on purpose: LOORF on the copula's samples, the correction c(q) left out."""

    def learning_signal(self, z, values, logits):
        return super().learning_signal(z, values, logits) / correction(logits, self.num_samples)


class IndependentSamples(ARMS):
    """Broken on purpose: the correction for the copula applied to independent samples."""

    def draw(self, logits):
        return sample(logits, "bernoulli", self.num_samples)


class LOORF(IndependentSamples, WithoutCorrection):
    """Leave-one-out REINFORCE on independent samples: unbiased, but not DisARM's distribution."""


# --------------------------------------------------------------------------------- indecater


@pytest.mark.parametrize("task", SEPARABLE)
@pytest.mark.parametrize("num_samples", [1, 3])
def test_indecater_is_exact_on_a_separable_f(task, num_samples):
    task = SEPARABLE[task]()
    draws = draw(task, IndeCateR(num_samples), 500)
    np.testing.assert_allclose(draws, np.broadcast_to(exact(task), draws.shape), rtol=0, atol=1e-6)


@pytest.mark.parametrize("task", SEPARABLE)
@pytest.mark.parametrize("broken", [WithoutFirstState, AtTheSample], ids=lambda c: c.__name__)
def test_broken_indecater_is_off_in_every_draw(task, broken):
    task = SEPARABLE[task]()
    draws = draw(task, broken(), 500)
    assert np.abs(draws - exact(task)).max(1).min() > 1e-3  # 1000 times the rounding allowed above


@pytest.mark.parametrize("task", MRFS)
@pytest.mark.parametrize("num_samples", [1, 2])
def test_indecater_matches_the_exact_gradient_of_the_mrf(task, num_samples):
    check_unbiased(TASKS[task](), IndeCateR(num_samples), N)


@pytest.mark.parametrize("task", MRFS)
@pytest.mark.parametrize("broken", [WithoutFirstState, AtTheSample], ids=lambda c: c.__name__)
def test_broken_indecater_fails_on_the_mrf(task, broken):
    task = TASKS[task]()
    with pytest.raises(ConformanceError) as failed:
        check_unbiased(task, broken(), N)
    assert failed.value.z > z_crit(task.logits().numel()) + 10


# ------------------------------------------------------------------------------------- arms


@pytest.mark.parametrize("task", BERNOULLI)
@pytest.mark.parametrize("num_samples", [2, 3, 5])
def test_arms_matches_the_exact_gradient(task, num_samples):
    check_unbiased(TASKS[task](), ARMS(num_samples), N)


@pytest.mark.parametrize("task", BERNOULLI)
@pytest.mark.parametrize("broken,num_samples", [(WithoutCorrection, 2), (WithoutCorrection, 3),
                                                (WithoutCorrection, 5), (IndependentSamples, 3)],
                         ids=lambda x: getattr(x, "__name__", str(x)))  # fmt: skip
def test_broken_arms_fails_the_same_test(task, broken, num_samples):
    task = TASKS[task]()
    with pytest.raises(ConformanceError) as failed:
        check_unbiased(task, broken(num_samples), N)
    assert failed.value.z > z_crit(task.logits().numel()) + 10


def test_arms_with_two_samples_is_disarm_on_every_pair():
    torch.manual_seed(0)
    logits = torch.randn(500, 4) * 3  # both signs, p from about 1e-4 to 1 - 1e-4
    _, pair = antithetic_pair(logits)  # [2, 500, 4]
    values = torch.randn(2, 500)
    disarm = DisARM().learning_signal(None, pair, values, logits)
    arms = ARMS(2).learning_signal(pair, values, logits)
    torch.testing.assert_close(arms, disarm, rtol=0, atol=1e-6)
    assert (disarm != 0).float().mean() > 0.2  # the pairs differ often enough to say something


def moments(x: np.ndarray) -> np.ndarray:
    """[N, P + P (P + 1) / 2]: every coordinate and every product x_i x_j (i <= j)."""
    i, j = np.triu_indices(x.shape[1])
    return np.concatenate([x, x[:, i] * x[:, j]], 1)


@pytest.mark.parametrize("other,equal", [(ARMS, True), (LOORF, False)], ids=["arms", "loorf"])
def test_arms_with_two_samples_is_disarm_in_distribution(other, equal):
    task = ToyQuadratic(family="bernoulli", dims=2, target=0.2, init_logit=[0.5, -2.0])
    z = two_sample_z(moments(draw(task, other(2), N, seed=1).astype(np.float64)),
                     moments(draw(task, DisARM(), N, seed=2).astype(np.float64)))  # fmt: skip
    worst, threshold = np.abs(z).max(), z_crit(z.size)
    assert worst < threshold if equal else worst > threshold + 10


# ------------------------------------------------------------------------------ both: pathwise


def weighted_quadratic(family: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, target t, weight w) of f(z) = sum w (z - t)^2, on 3 latents (K = 3)."""
    if family == "bernoulli":
        logits, target = torch.tensor([-1.0, 0.5, 1.5]), torch.tensor(0.2)
    else:
        logits = torch.tensor([[0.5, -0.5, 0.0], [1.0, 0.0, -1.0], [0.0, 2.0, 0.0]])
        target = torch.tensor([0.7, 0.2, 0.1])
    return logits, target, torch.linspace(0.5, 1.5, logits.numel()).reshape(logits.shape)


def batched_draws(estimator, family: str, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """([N, P] estimates of the gradient in (logits, w) of E[sum w (z - t)^2], [P] its exact
    value): one call on a batch of N copies, each element's gradient times N."""
    torch.manual_seed(0)
    logits, target, weight = weighted_quadratic(family)
    rows = [x.expand((samples,) + x.shape).clone().requires_grad_() for x in (logits, weight)]
    f = lambda z: (rows[1] * (z - target) ** 2).flatten(2).sum(-1)  # noqa: E731
    estimator(rows[0], f, family).surrogate.backward()
    estimates = samples * torch.cat([r.grad.flatten(1) for r in rows], 1)
    leaves = [x.clone().requires_grad_() for x in (logits, weight)]
    expected = (leaves[1] * (target**2 + soft(leaves[0], family, 1.0) * (1 - 2 * target))).sum()
    grads = torch.autograd.grad(expected, leaves)
    return estimates.numpy(), torch.cat([g.flatten() for g in grads]).numpy()


@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_indecater_pathwise_part(family):
    estimates, expected = batched_draws(IndeCateR(), family, N)
    logit_part = weighted_quadratic(family)[0].numel()
    exact_part = np.broadcast_to(expected[:logit_part], (N, logit_part))
    np.testing.assert_allclose(estimates[:, :logit_part], exact_part, rtol=0, atol=1e-5)
    z = mean_z(estimates[:, logit_part:], expected[logit_part:])
    assert np.abs(z).max() < z_crit(z.size)


@pytest.mark.parametrize("num_samples", [2, 5])
def test_arms_pathwise_part(num_samples):
    estimates, expected = batched_draws(ARMS(num_samples), "bernoulli", N)
    z = mean_z(estimates, expected)
    assert np.abs(z).max() < z_crit(z.size)


# ------------------------------------------------------------------------------------ copula


@pytest.mark.parametrize("num_samples", [3, 5])
def test_the_copula_has_uniform_marginals_and_joint_c(num_samples):
    torch.manual_seed(0)
    draws = 100_000
    q = torch.tensor([0.05, 0.2, 0.35, 0.5], dtype=torch.float64)
    u = dirichlet_copula(torch.zeros(draws, dtype=torch.float64), num_samples)  # [n, N]
    assert kstest(u[0].numpy(), "uniform").pvalue > ALPHA / 2
    both = ((u[0] < q[:, None]) & (u[1] < q[:, None])).double().mean(1)  # [4]
    joint = copula_joint(q, num_samples)
    z = (both - joint) / torch.sqrt(joint * (1 - joint) / draws).clamp_min(1e-12)
    assert z.abs().max() < z_crit(q.numel(), ALPHA / 2)
    assert joint[0] == 0 and joint[-1] > 0.1  # both regimes of C: 0 below 2^-(n-1), > 0 above


# ------------------------------------------------------------------------- cost and knobs


@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
@pytest.mark.parametrize("num_samples", [1, 3])
def test_indecater_counts_d_k_evaluations_per_sample(family, num_samples):
    for shape in SHAPES[family]:  # D = 2, then 3 (K = 3), as discograd list measures
        calls = []
        logits = torch.zeros((1,) + shape, requires_grad=True)
        f = lambda z: calls.append(z.shape[0]) or z.flatten(2).sum(-1)  # noqa: E731
        estimate = IndeCateR(num_samples)(logits, f, family)
        classes = 2 if family == "bernoulli" else shape[1]
        assert estimate.evaluations == sum(calls) == num_samples * shape[0] * classes


def test_discograd_list_counts():
    both = ["bernoulli", "categorical"]
    assert evaluations_text(estimator_node("indecater"), both) == "num_samples (default 1)"
    assert evaluations_text(estimator_node("arms"), ["bernoulli"]) == "num_samples (default 2)"
    assert ARMS(5)(torch.zeros(1, 3), lambda z: z.sum(-1), "bernoulli").evaluations == 5


@pytest.mark.parametrize("cls,knobs", [
    (IndeCateR, dict(num_samples=0)), (IndeCateR, dict(num_samples=1.5)),
    (ARMS, dict(num_samples=1)), (ARMS, dict(num_samples=True)),
])  # fmt: skip
def test_bad_knobs_are_refused(cls, knobs):
    with pytest.raises(ValueError, match="num_samples must be an integer >= "):
        cls(**knobs)
