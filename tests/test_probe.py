"""The gradient probe (discograd/probe.py): the vectorized and the loop path draw from the
same distribution, chunking changes nothing, the toy's exact gradient is right.

Two-sample z-tests at family-wise false alarm 1e-4 (tests/helpers.py): on the mean of every
coordinate and on the variance (trace of the covariance, CLT on squared deviations).
"""
import numpy as np
import pytest
import torch

from hydra import compose, initialize_config_dir

from analysis.schema import STATS, read_csv
from analysis.statistics import gradient_statistics, variance_statistics
from discograd.config import CONF_DIR, build_task
from discograd.draw_file import draw_path
from discograd.probe import draw_estimates, flatten
from discograd.run import run
from estimators import ESTIMATORS
from estimators.registry import create
from helpers import draw, exact, z_crit
from tasks.toy_quadratic import ToyQuadratic

TASKS = {
    "bernoulli": dict(family="bernoulli", dims=3, target=0.2, init_logit=[-1.0, 0.5, 1.5]),
    "categorical": dict(family="categorical", dims=2, classes=3, target=[0.7, 0.2, 0.1],
                        init_logit=[[0.5, -0.5, 0.0], [1.0, 0.0, -1.0]]),
}  # fmt: skip
N_LOOP = 3000


def two_sample_z(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
    return np.divide(a.mean(0) - b.mean(0), se, out=np.zeros(a.shape[1]), where=se > 0)


def variance_z(a: np.ndarray, b: np.ndarray) -> float:
    va, vb = variance_statistics(a), variance_statistics(b)
    se = lambda v, n: (v["variance_hi"] - v["variance"]) / 1.959964  # noqa: E731  (CI half-width back to se)
    return (va["variance"] - vb["variance"]) / np.hypot(se(va, len(a)), se(vb, len(b)))


@pytest.mark.parametrize("name,family", [(n, f) for n in sorted(ESTIMATORS) for f in TASKS if f in ESTIMATORS[n].families])
def test_vectorized_and_loop_paths_agree(name, family):
    task = ToyQuadratic(**TASKS[family])
    estimator = create(name, latent_shape=task.latent_shape)
    few = draw(task, estimator, 32, seed=1), draw(task, estimator, 32, vectorize=False, seed=2)
    if all(np.ptp(x, 0).max() < 1e-6 for x in few):  # deterministic (exact): the paths agree to rounding
        np.testing.assert_allclose(few[0], np.broadcast_to(few[1][0], few[0].shape), rtol=0, atol=1e-6)
        return
    vectorized = draw(task, estimator, 4 * N_LOOP, seed=1)
    loop = draw(task, estimator, N_LOOP, vectorize=False, seed=2)
    z = two_sample_z(vectorized, loop)
    tests = z.size + 1
    assert np.abs(z).max() < z_crit(tests)
    assert abs(variance_z(vectorized, loop)) < z_crit(tests)


def test_chunking_does_not_change_the_draws():
    task = ToyQuadratic(**TASKS["categorical"])
    estimator = ESTIMATORS["gumbel_softmax"](temperature=0.5)
    runs = []
    for chunk in (7, 64, 500):
        torch.manual_seed(5)
        runs.append(draw_estimates(task, estimator, None, 500, chunk=chunk).estimates)
    assert runs[0].shape == (500, 6)
    assert np.isfinite(runs[0]).all()
    # chunks draw different noise, but from one distribution: same mean within noise
    for other in runs[1:]:
        assert np.abs(two_sample_z(runs[0], other)).max() < z_crit(6)


def test_probe_reports_cost_and_leaves_state_alone():
    task = ToyQuadratic(**TASKS["bernoulli"])
    estimator = ESTIMATORS["reinforce"](baseline="moving_average")
    before = task.parameters.logits.detach().clone()
    draws = draw_estimates(task, estimator, None, 100)
    assert draws.evaluations == 1 and draws.seconds_per_estimate > 0
    assert estimator.training and estimator.running_mean.item() == 0.0
    assert torch.equal(task.parameters.logits.detach(), before)
    loo = draw_estimates(task, ESTIMATORS["reinforce"](baseline="loo", num_samples=3), None, 10)
    assert loo.evaluations == 3


@pytest.mark.parametrize("family", TASKS)
def test_toy_exact_gradient_matches_enumeration(family):
    """E[f] by summing f over every joint state, differentiated by autograd."""
    task = ToyQuadratic(**TASKS[family])
    theta = task.parameters.logits
    if family == "bernoulli":
        states = torch.cartesian_prod(*[torch.tensor([0.0, 1.0])] * theta.shape[0])  # [2^D, D]
        p = torch.sigmoid(theta)
        prob = (states * p + (1 - states) * (1 - p)).prod(-1)
    else:
        d, k = theta.shape
        index = torch.cartesian_prod(*[torch.arange(k)] * d).reshape(-1, d)  # [K^D, D]
        states = torch.nn.functional.one_hot(index, k).float()  # [K^D, D, K]
        prob = (states * torch.softmax(theta, -1)).sum(-1).prod(-1)
    expected = (prob * task.objective(states)).sum()
    (grad,) = torch.autograd.grad(expected, theta)
    np.testing.assert_allclose(exact(task), grad.reshape(-1).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(task.evaluate()["exact_objective"], expected.item(), rtol=1e-6)


@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
def test_the_first_part_is_timed_apart(vectorize):
    """seconds_per_estimate is the warm rate: the first part (a tenth of the draws, one chunk
    at most; one draw on the loop path) is reported as warmup_seconds; every draw is kept."""
    from discograd.probe import warmup_size

    assert [warmup_size(n, 1000, True) for n in (2, 200, 10**5)] == [1, 20, 1000]
    assert warmup_size(10**5, 1000, False) == 1
    task = ToyQuadratic(**TASKS["bernoulli"])
    draws = draw_estimates(task, ESTIMATORS["st"](), None, 50, chunk=16, vectorize=vectorize)
    assert draws.warmup_seconds > 0 and draws.seconds_per_estimate > 0
    assert np.isfinite(draws.estimates).all() and (np.abs(draws.estimates).sum(1) > 0).all()


@pytest.mark.parametrize("reference", ["exact", "estimated"])
def test_streaming_probe_equals_gradient_statistics_on_its_draws(reference, tmp_path):
    """The run's streaming probe (draws never held) and analysis.gradient_statistics on the
    same draws, saved by probe.save_draws, give the same numbers (to float64 rounding)."""
    overrides = ["task=mrf", "steps=0", "probe.samples=700", "probe.chunk=128", f"probe.reference={reference}",
                 "probe.reference_samples=900", "probe.save_draws=true"]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    run(cfg, tmp_path)
    row = read_csv(STATS, tmp_path / "stats.csv").iloc[0]
    x = np.load(draw_path(tmp_path, 0, row["estimator"]))
    assert x.shape[0] == 700
    if reference == "exact":
        task = build_task(cfg)
        s = gradient_statistics(x, flatten(task.exact_gradient(task.probe_batch()), list(task.estimand())), chunk=128)
    else:
        y = np.load(draw_path(tmp_path, 0, "reference"))
        assert y.shape[0] == 900
        s = gradient_statistics(x, reference_draws=y, chunk=128)
    for key in ("bias_sq", "bias_norm_lo", "bias_norm_hi", "bias_p", "variance", "variance_lo", "variance_hi", "snr", "cosine"):
        assert s[key] == pytest.approx(row[key], rel=1e-9, abs=1e-12), key


def test_the_memory_plan_counts_every_evaluation_an_estimate_spends():
    """indecater spends D K evaluations per sample, each holding a draw's activations: the plan
    counts them (the most any probed estimator spends), and counting leaves the random stream
    as it was."""
    from omegaconf import OmegaConf

    from discograd.plan import evaluations_per_estimate, plan_probe
    from estimators.indecater import IndeCateR
    from estimators.st import StraightThrough

    task = ToyQuadratic(family="categorical", dims=3, classes=4)
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    spent = evaluations_per_estimate(task, None, [StraightThrough(), IndeCateR(num_samples=2)])
    assert spent == 2 * 3 * 4 and torch.equal(torch.rand(3), before)
    cfg = OmegaConf.create({"probe": {"max_memory": 1.0, "samples": 1000, "chunk": 1000}})
    one, many = (plan_probe(task, cfg, torch.device("cpu"), False, e) for e in (1, spent))
    assert many.peak_bytes - one.peak_bytes == one.chunk * (spent - 1) * task.draw_bytes
