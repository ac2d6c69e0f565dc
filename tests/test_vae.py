"""The VAE tasks (tasks/vae.py, binary_vae.py, categorical_vae.py) on scikit-learn's digits
(no download): the exact gradient by enumeration against finite differences, reinforce's
mean against it (z-test, false alarm 1e-4, tests/helpers.py) with a sign-flipped variant
that must fail, and short training runs that must lower the test negative ELBO.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from discograd.run import run
from primitives.families import log_prob
from estimators.reinforce import Reinforce
from helpers import draw, exact, mean_z, z_crit
from tasks.binary_vae import BinaryVAE
from tasks.categorical_vae import CategoricalVAE
from test_run import config
from test_unbiased import SignFlipped

DIGITS = {"name": "digits", "binarize": "dynamic", "root": None, "download": False}
TINY = {
    "binary": lambda: BinaryVAE(DIGITS, dims=6, encoder="linear", batch_size=8),
    "categorical-analytic": lambda: CategoricalVAE(DIGITS, dims=3, classes=3, hidden=[16], batch_size=8),
    "categorical-sampled": lambda: CategoricalVAE(DIGITS, dims=3, classes=3, hidden=[16], batch_size=8, kl="sampled"),
}


def tiny(name: str, seed: int = 0):
    torch.manual_seed(seed)
    task = TINY[name]()
    task.probe_batch()  # loads the data and runs the data-dependent initialization
    return task


@pytest.mark.parametrize("name", TINY)
def test_exact_gradient_matches_finite_differences(name):
    """Central differences (float64, step 1e-6) of the enumerated E_q[f] on 12 encoder
    coordinates; agreement to 1e-6 relative is what float64 rounding allows at that step."""
    task = tiny(name)
    task.parameters.double()
    batch = task.probe_batch().double()
    grads = task.exact_gradient(batch, chunk=7)  # an odd chunk: the accumulation over chunks is tested too
    configurations = task.configurations().double()

    def expected() -> float:
        with torch.no_grad():
            z = configurations.unsqueeze(1).expand((-1, batch.shape[0]) + task.latent_shape)
            weights = log_prob(z, task.logits(batch), task.family).exp()
            return (weights * task.objective(z, batch)).sum(0).mean().item()

    generator = torch.Generator().manual_seed(1)
    for name_, param in task.estimand().items():
        for _ in range(3):
            index = tuple(torch.randint(0, n, (1,), generator=generator).item() for n in param.shape)
            old = param.data[index].item()
            param.data[index] = old + 1e-6
            up = expected()
            param.data[index] = old - 1e-6
            down = expected()
            param.data[index] = old
            numeric = (up - down) / 2e-6
            assert grads[name_][index].item() == pytest.approx(numeric, rel=1e-6, abs=1e-8), (name_, index)


def test_analytic_and_sampled_kl_have_the_same_exact_gradient():
    analytic, sampled = tiny("categorical-analytic"), tiny("categorical-sampled")
    sampled.parameters.load_state_dict(analytic.parameters.state_dict())
    a, s = exact(analytic), exact(sampled)
    assert np.allclose(a, s, rtol=1e-4, atol=1e-6) and np.abs(a).max() > 1e-3


@pytest.mark.parametrize("name", ["binary", "categorical-analytic"])
def test_reinforce_matches_the_exact_gradient(name):
    """N = 20000 draws (loo, 2 samples); the sign-flipped variant must land > 10 sd past the
    same threshold."""
    task = tiny(name)
    reference = exact(task)
    z = mean_z(draw(task, Reinforce(baseline="loo", num_samples=2), 20_000), reference)
    assert np.abs(z).max() < z_crit(z.size)
    flipped = mean_z(draw(task, SignFlipped(baseline="loo", num_samples=2), 20_000, seed=1), reference)
    assert np.abs(flipped).max() > z_crit(z.size) + 10


@pytest.mark.parametrize("estimator", ["reinforce", "gumbel_softmax", "st_gumbel_softmax"])
def test_short_training_lowers_the_test_negative_elbo(tmp_path, estimator):
    """300 Adam steps (lr 1e-2) of a small binary VAE on digits: the test -ELBO (297 fixed test points,
    one sample each) must fall by more than 2 nats; its evaluation noise is about 0.3 nats."""
    extra = ["estimator.baseline=loo", "estimator.num_samples=2"] if estimator == "reinforce" else []
    cfg = config(f"estimator={estimator}", *extra, "temperature=0.5", "task=binary_vae", "task.dims=16", "task.encoder=linear",
                 "task.lr=1e-2", "task.eval_every=300", "task.eval_points=297", "task.iwae_samples=10",
                 "steps=300", "probe.every=0", "probe.samples=10", "probe.reference_samples=10", "log_every=300")  # fmt: skip
    run(cfg, tmp_path)
    train = pd.read_csv(tmp_path / "train.csv")
    first, last = train["test_neg_elbo"].iloc[0], train["test_neg_elbo"].iloc[-1]
    assert last < first - 2, (first, last)
    assert (train["test_iwae_10"] <= train["test_neg_elbo"] + 0.5).all()  # the IWAE bound is the tighter one


def test_iwae_bound_tightens_to_the_exact_likelihood():
    """On a tiny categorical VAE (81 configurations) -log p(x) is exact by enumeration; the
    IWAE bound must sit above it and close in as k grows (bound - exact shrinks from k=1 to
    k=1000; at k=1000 it is within 0.05 nats, well above the Monte Carlo noise of 200 points)."""
    torch.manual_seed(0)
    task = CategoricalVAE(DIGITS, dims=4, classes=3, hidden=[32])
    x = task.fixed("test", 200, seed=1)
    with torch.no_grad():
        z = task.configurations().unsqueeze(1).expand((-1, 200) + task.latent_shape)
        exact_nll = -torch.logsumexp(task.log_likelihood(z, x) + task.log_prior(z), 0).mean().item()
        gaps = [task.iwae_bound(x, k).mean().item() - exact_nll for k in (1, 1000)]
    assert -0.01 < gaps[1] < 0.05 and gaps[1] < gaps[0]
