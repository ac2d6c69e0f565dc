"""Sampling primitives (primitives/sampling.py): inverse-CDF Gumbel and logistic noise,
Gumbel-max, exact MRF sampling by Gumbel-max over joint states, Gumbel-top-k against the
Plackett-Luce formula, and Perturb-and-MAP (exact without couplings, measurably not exact
with them).

Seeds are fixed; each test's p-value threshold is ALPHA = 1e-4 (tests/helpers.py). The
sample sizes make the wrong samplers in the power checks fail with p-values below 1e-20.
"""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from primitives.sampling import (
    gumbel_from_uniform, gumbel_max, gumbel_noise, gumbel_top_k, logistic_noise, perturb_and_map, plackett_luce_log_prob,
)  # fmt: skip
from helpers import ALPHA, z_crit
from tasks.grid import Grid

N = 200_000


def test_gumbel_noise_is_gumbel():
    torch.manual_seed(0)
    g = gumbel_noise((N,), torch.zeros((), dtype=torch.float64)).numpy()
    assert stats.kstest(g, stats.gumbel_r.cdf).pvalue > ALPHA
    # power: the same test rejects a standard logistic (a plausible mix-up) at this N
    assert stats.kstest(g, stats.logistic.cdf).pvalue < 1e-20


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gumbel_noise_is_finite_at_the_ends(dtype):
    info = torch.finfo(dtype)
    u = torch.tensor([0.0, info.tiny / 2, info.tiny, 0.5, 1.0 - info.eps, 1.0 - info.eps / 4, 1.0], dtype=dtype)
    g = gumbel_from_uniform(u)
    assert torch.isfinite(g).all()
    assert (g[1:] >= g[:-1]).all()  # monotone: the inverse CDF keeps the order of u


def _chi_square_p(samples: torch.Tensor, probs: torch.Tensor) -> float:
    counts = samples.reshape(-1, probs.shape[-1]).sum(0).numpy()
    return stats.chisquare(counts, probs.numpy() * counts.sum()).pvalue


def test_gumbel_max_samples_the_softmax():
    torch.manual_seed(1)
    logits = torch.tensor([1.0, 0.0, -1.0, 0.5, -2.0], dtype=torch.float64)
    samples = gumbel_max(logits, (N,))
    assert samples.shape == (N, 5)
    assert ((samples == 0) | (samples == 1)).all() and (samples.sum(-1) == 1).all()
    assert _chi_square_p(samples, torch.softmax(logits, -1)) > ALPHA
    # power: softmax at temperature 2 (a wrong temperature) is rejected by the same test
    assert _chi_square_p(samples, torch.softmax(logits / 2, -1)) < 1e-20


def test_gumbel_max_batches_independently():
    torch.manual_seed(2)
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    samples = gumbel_max(logits, (N // 4,))  # [S, 2, 3]
    for row in range(2):
        assert _chi_square_p(samples[:, row], torch.softmax(logits[row].double(), -1)) > ALPHA


def test_logistic_noise_is_logistic_and_finite():
    torch.manual_seed(3)
    x = logistic_noise((N,), torch.zeros((), dtype=torch.float64)).numpy()
    assert stats.kstest(x, stats.logistic.cdf).pvalue > ALPHA
    assert stats.kstest(x, stats.gumbel_r.cdf).pvalue < 1e-20  # power: a Gumbel is rejected
    torch.manual_seed(0)
    assert torch.isfinite(logistic_noise((10**6,), torch.zeros(()))).all()


def _pooled_chi_square_p(observed: np.ndarray, probs: np.ndarray) -> float:
    """Chi-square p-value, cells with expected count < 5 pooled into one (the test's validity rule)."""
    expected = probs * observed.sum()
    small = expected < 5
    if small.any():
        observed = np.append(observed[~small], observed[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    return stats.chisquare(observed, expected).pvalue


def test_gumbel_max_over_joint_states_samples_a_small_mrf_exactly():
    grid = Grid.potts(3, 3, 2, 0.5, 0.5, "spin_glass", seed=0)
    torch.manual_seed(4)
    n = N // 4  # the sampler holds [n, 512] noise; 50000 draws still reject the wrong temperature at p < 1e-20
    states = grid.sample((n,))  # [n, 3, 3]
    index = (states.reshape(n, -1) * 2 ** torch.arange(8, -1, -1)).sum(-1)  # base-2 code, all_states() order
    counts = np.bincount(index.numpy(), minlength=512)
    log_p = -grid.state_energy(grid.all_states())
    probs = torch.softmax(log_p, 0).numpy()
    assert _pooled_chi_square_p(counts, probs) > ALPHA
    # power: the same model at temperature 1.25 (energies scaled by 0.8) is rejected
    assert _pooled_chi_square_p(counts, torch.softmax(0.8 * log_p, 0).numpy()) < 1e-20


def test_gumbel_top_k_is_plackett_luce():
    """K = 5, k = 3: 60 ordered triples, each with its Plackett-Luce probability."""
    logits = torch.tensor([1.0, 0.0, -1.0, 0.5, -0.5], dtype=torch.float64)
    torch.manual_seed(5)
    draws = gumbel_top_k(logits, 3, (N,))  # [N, 3]
    assert draws.shape == (N, 3) and (draws[:, 0] != draws[:, 1]).all() and (draws[:, 1] != draws[:, 2]).all()
    triples = list(itertools.permutations(range(5), 3))
    base5 = np.array([25, 5, 1])
    counts = np.bincount(draws.numpy() @ base5, minlength=125)[np.array(triples) @ base5]
    probs = plackett_luce_log_prob(logits, torch.tensor(triples)).exp().numpy()
    assert abs(probs.sum() - 1) < 1e-12
    assert _pooled_chi_square_p(counts, probs) > ALPHA
    # power: sampling with replacement (independent Gumbel-max draws, renormalized over distinct triples) is rejected
    p = torch.softmax(logits, 0).numpy()
    with_replacement = np.array([p[a] * p[b] * p[c] for a, b, c in triples])
    assert _pooled_chi_square_p(counts, with_replacement / with_replacement.sum()) < 1e-20


def test_plackett_luce_log_prob_by_hand():
    logits = torch.tensor([0.3, -1.2, 2.0, 0.0])
    p = torch.softmax(logits, 0)
    by_hand = p[2] * p[0] / (1 - p[2]) * p[3] / (1 - p[2] - p[0])
    assert torch.allclose(plackett_luce_log_prob(logits, torch.tensor([2, 0, 3])).exp(), by_hand)


def _map_marginal_z(coupling_scale: float, seed: int) -> np.ndarray:
    """z-scores of Perturb-and-MAP's site marginals against p's exact ones (3 x 3 Ising, N draws)."""
    grid = Grid.potts(3, 3, 2, 0.5, coupling_scale, "ferromagnetic", seed=0)
    _, exact = grid.exact()
    torch.manual_seed(seed)
    frequency = F.one_hot(perturb_and_map(grid.fields, grid.map_state, (N,)), 2).double().mean(0)
    return (((frequency - exact) / (exact * (1 - exact) / N).sqrt())[..., 1]).numpy()


def test_perturb_and_map_is_exact_without_couplings():
    assert np.abs(_map_marginal_z(0.0, seed=6)).max() < z_crit(9)


def test_perturb_and_map_is_not_exact_on_a_coupled_grid():
    """At coupling 2 the MAP of unary-perturbed potentials over-concentrates; the same z-test
    that passes above sees it tens of standard errors away (docs/perturb_and_map.md)."""
    assert np.abs(_map_marginal_z(2.0, seed=7)).max() > z_crit(9) + 10


def test_gumbel_top_k_rejects_bad_k():
    with pytest.raises(ValueError, match="1 <= k <= 5"):
        gumbel_top_k(torch.zeros(5), 6)


@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_family_log_prob_and_sample_match_torch_distributions(family):
    """primitives.families writes out torch.distributions' formulas for speed: on hard samples
    the same log-probabilities (values and gradients, float64 to 1e-12 absolute), and the same
    hard draws for the same random state (bernoulli; categorical samples by Gumbel-max, tested
    above). On relaxed samples it is the one-hot form, linear in z: sum z log p (written out
    here by hand), with its gradient in z, where OneHotCategorical would take the argmax."""
    from torch.distributions import Bernoulli, OneHotCategorical

    from primitives.families import log_prob, relaxed_sample, sample

    torch.manual_seed(0)
    shape = (4, 3) if family == "bernoulli" else (4, 3, 5)
    logits = (3 * torch.randn(shape, dtype=torch.float64)).requires_grad_()
    dist = Bernoulli(logits=logits) if family == "bernoulli" else OneHotCategorical(logits=logits)
    z = dist.sample((6,))
    ours, theirs = log_prob(z, logits, family), dist.log_prob(z).sum(-1)
    assert ours.shape == theirs.shape == (6, 4)
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-12)
    weights = torch.randn(6, 4, dtype=torch.float64)
    grads = [torch.autograd.grad((weights * v).sum(), logits)[0] for v in (ours, theirs)]
    assert torch.allclose(*grads, rtol=0, atol=1e-12)
    relaxed = relaxed_sample(logits.detach(), family, 0.5, 6).requires_grad_()
    if family == "bernoulli":
        by_hand = (relaxed * F.logsigmoid(logits) + (1 - relaxed) * F.logsigmoid(-logits)).sum(-1)
    else:
        by_hand = (relaxed * F.log_softmax(logits, -1)).sum((-2, -1))
    value = log_prob(relaxed, logits, family)
    assert torch.allclose(value, by_hand, rtol=0, atol=1e-12)
    (dz,) = torch.autograd.grad(value.sum(), relaxed)
    assert dz.abs().sum() > 0  # z carries gradient, as a pathwise estimator through f needs
    if family == "bernoulli":
        draws = []
        for draw in (lambda: sample(logits, family, 7), lambda: Bernoulli(logits=logits.detach()).sample((7,))):
            torch.manual_seed(1)
            draws.append(draw())
        assert torch.equal(*draws)
