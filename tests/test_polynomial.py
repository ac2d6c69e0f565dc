"""The polynomial task (tasks/polynomial.py): its closed forms against enumeration, the explicit
gradient formula and Monte Carlo; REINFORCE's exact-gradient z-test at p = 1.5 and 3; the
paper's objective; the shipped defaults; bad knobs.

Deterministic comparisons (enumeration in float64, closed forms in float32) use rounding
tolerances. Statistical ones follow tests/helpers.py: fixed seeds, family-wise false alarm
ALPHA = 1e-4, and each is paired with a wrong variant (the other power) that must land more than
10 standard errors past the same threshold, so a loss of power fails instead of passing.
"""
import math

import pytest
import torch
from hydra import compose, initialize_config_dir

from discograd.config import build_task
from discograd.preflight import CONF_DIR
from discograd.probe import dims
from estimators.reinforce import Reinforce
from helpers import draw, exact, max_abs_z, z_crit
from primitives.enumeration import configurations
from primitives.families import log_prob, sample
from tasks.polynomial import Polynomial
from tasks.toy_quadratic import ToyQuadratic

POWERS = [0.5, 1.5, 2.0, 3.0]
SMALL = {  # latents small enough to enumerate (2^4, 2^4, 3^3 configurations), targets of all kinds
    "bernoulli": dict(family="bernoulli", dims=4, target=0.2),
    "bernoulli-outside": dict(family="bernoulli", dims=4, target=1.3),  # any finite t for bernoulli
    "categorical-2": dict(family="categorical", dims=4, classes=2, target=0.45),
    "categorical-3": dict(family="categorical", dims=3, classes=3, target=[0.7, 0.2, 0.1]),
}


def seeded(seed: int = 0, **knobs) -> Polynomial:
    """A task with N(0, 1) logits from ``seed``."""
    task = Polynomial(**knobs)
    with torch.no_grad():
        task.parameters.logits.normal_(generator=torch.Generator().manual_seed(seed))
    return task


def enumerated_objective(task: Polynomial) -> torch.Tensor:
    """E[f] = sum_z p(z) f(z) over every configuration, in float64, differentiable in the logits."""
    z = configurations(task.latent_shape, task.family, torch.float64)  # [C, D(, K)]
    theta = task.parameters.logits.double()
    return (log_prob(z, theta, task.family).exp() * task.objective(z)).sum()


@pytest.mark.parametrize("power", POWERS)
@pytest.mark.parametrize("case", SMALL)
def test_closed_forms_equal_enumeration(case, power):
    task = seeded(**SMALL[case], power=power)
    brute = enumerated_objective(task)
    (brute_grad,) = torch.autograd.grad(brute, [task.parameters.logits])
    assert task.expected_objective().item() == pytest.approx(brute.item(), rel=1e-6)
    assert torch.allclose(task.exact_gradient()["logits"], brute_grad, rtol=1e-5, atol=1e-7)
    assert brute_grad.abs().max() > 1e-3  # the comparison is not between two zeros


def explicit_gradient(task: Polynomial) -> torch.Tensor:
    """The module docstring's formulas: pi (1 - pi) Delta / D, and (w / D) pi_k (Delta_k - <pi, Delta>)."""
    theta, t, power = task.parameters.logits.detach(), task.target, task.power
    delta = (1 - t).abs() ** power - t.abs() ** power
    if task.family == "bernoulli":
        p = torch.sigmoid(theta)
        return p * (1 - p) * delta / theta.shape[0]
    p = torch.softmax(theta, -1)
    return p * (delta - (p * delta).sum(-1, keepdim=True)) / (theta.shape[0] * theta.shape[1])


@pytest.mark.parametrize("power", POWERS)
@pytest.mark.parametrize("family,classes", [("bernoulli", 2), ("categorical", 2), ("categorical", 5)])
def test_exact_gradient_is_the_explicit_formula(family, classes, power):
    """At the paper's D = 128: the exact gradient (autograd through the closed form of E[f])
    equals the formula written out."""
    task = seeded(1, family=family, classes=classes, power=power, target=0.3)
    assert torch.allclose(task.exact_gradient()["logits"], explicit_gradient(task), rtol=1e-5, atol=1e-9)


def test_categorical_two_classes_is_the_papers_objective():
    """The authors' poly/poly_programming.py: loss |z_0 - t|^p summed over latents / latent_dim
    (lines 73-83, z the class-0 entry of the one-hot sample); expected loss |1 - t|^p qy_0 +
    |t|^p qy_1 over latent_dim (lines 113-116). The bernoulli family with logit theta_0 - theta_1
    has the same E[f], and its gradient is the categorical one's class-0 entry."""
    power, t = 1.5, 0.45
    task = seeded(2, power=power, batch_size=3)  # categorical, K = 2, D = 128: the defaults
    theta = task.parameters.logits.detach()
    z = sample(task.logits(), "categorical", 5)  # [5, 3, 128, 2]
    assert torch.allclose(task.objective(z), (z[..., 0] - t).abs().pow(power).sum(-1) / 128)
    qy = torch.softmax(theta, -1)
    papers = ((1 - t) ** power * qy[:, 0] + t**power * qy[:, 1]).sum() / 128
    assert task.expected_objective().item() == pytest.approx(papers.item(), rel=1e-6)
    one_logit = Polynomial(family="bernoulli", power=power, init_logit=(theta[:, 0] - theta[:, 1]).tolist())
    assert one_logit.expected_objective().item() == pytest.approx(papers.item(), rel=1e-6)
    grad = task.exact_gradient()["logits"]
    assert torch.allclose(grad[:, 0], -grad[:, 1], atol=1e-9)
    assert torch.allclose(one_logit.exact_gradient()["logits"], grad[:, 0], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("family,classes", [("bernoulli", 2), ("categorical", 3)])
def test_toy_quadratic_is_power_two(family, classes):
    """One implementation: the toy is the polynomial at p = 2 without the batch axis, its K
    squared differences summed (K times the polynomial's mean over them)."""
    knobs = dict(family=family, dims=3, classes=classes, target=0.2, init_logit=0.5)
    toy, poly = ToyQuadratic(**knobs), Polynomial(**knobs, power=2.0, batch_size=None)
    scale = 1 if family == "bernoulli" else classes
    z = sample(toy.logits(), family, 7)
    assert toy.logits().shape == poly.logits().shape == toy.parameters.logits.shape
    assert torch.allclose(toy.objective(z), scale * poly.objective(z))
    expected = scale * poly.expected_objective().item()
    assert toy.expected_objective().item() == pytest.approx(expected, rel=1e-6)
    assert torch.allclose(toy.exact_gradient()["logits"], scale * poly.exact_gradient()["logits"], rtol=1e-6)


MC_DRAWS = 200  # draws of the whole [64, 128(, 2)] batch: 12800 independent latents per case


@pytest.mark.parametrize("power", [1.5, 3.0])
@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_expected_objective_equals_monte_carlo_mean(family, power):
    """f at hard samples of the default batch of 64 copies, against the closed form; the closed
    form at the other power is far outside the same interval."""
    torch.manual_seed(3)
    task = seeded(3, family=family, power=power)
    values = task.objective(sample(task.logits(), family, MC_DRAWS)).flatten().double()  # [S B]
    se = values.std().item() / math.sqrt(values.numel())
    gap = lambda t: abs(values.mean().item() - t.expected_objective().item()) / se  # noqa: E731
    threshold = z_crit(4)  # four cases
    assert gap(task) < threshold
    assert gap(seeded(3, family=family, power=4.5 - power)) > threshold + 10


N = 20_000


@pytest.mark.parametrize("power", [1.5, 3.0])
@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_reinforce_matches_exact_gradient(family, power):
    """REINFORCE (leave-one-out baseline, 2 samples; unbiased) on a small task with a batch of 2
    copies passes the exact-gradient z-test; the same draws fail it against the other power."""
    knobs = dict(family=family, dims=3, classes=3, batch_size=2,
                 target=0.2 if family == "bernoulli" else [0.7, 0.2, 0.1])  # fmt: skip
    task = seeded(4, **knobs, power=power)
    x = draw(task, Reinforce(baseline="loo", num_samples=2), N, seed=4)
    threshold = z_crit(dims(task))
    assert max_abs_z(x, exact(task)) < threshold
    assert max_abs_z(x, exact(seeded(4, **knobs, power=4.5 - power))) > threshold + 10


def test_defaults_are_the_papers():
    """conf/task/polynomial.yaml composes to the authors' setting: 128 two-class latents,
    Adam at 1e-3, 64 samples per step, t = 0.45, p = 2."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        task = build_task(compose("config", overrides=["task=polynomial"]))
    assert (task.family, task.latent_shape, task.batch_size, task.power) == ("categorical", (128, 2), 64, 2.0)
    assert task.logits().shape == (64, 128, 2)
    assert task.optimizers()[0].param_groups[0]["lr"] == 1e-3
    assert task.evaluate()["exact_objective"] == pytest.approx((0.55**2 + 0.45**2) / 2)


@pytest.mark.parametrize("knobs,message", [
    (dict(power=0), "power must be > 0"),
    (dict(power=-1.5), "power must be > 0"),
    (dict(power=float("nan")), "power must be a finite number"),
    (dict(power=float("inf")), "power must be a finite number"),
    (dict(power="3"), "power must be a finite number"),
    (dict(power=True), "power must be a finite number"),
    (dict(family="bernoulli", target=float("nan")), "bernoulli target must be a finite number"),
    (dict(family="bernoulli", target=float("-inf")), "bernoulli target must be a finite number"),
    (dict(family="bernoulli", target=[0.5]), "bernoulli target must be a finite number"),
    (dict(target=float("inf")), "target must be a finite number"),
    (dict(target="0.45"), "target must be a finite number"),
    (dict(target=1.5), r"target must be in \[0, 1\]"),
    (dict(target=[0.2, 0.7]), "categorical target must be a probability vector of 2 entries"),
    (dict(target=[0.5, float("nan")]), "target must be a finite number"),
    (dict(family="gaussian"), "family must be one of bernoulli, categorical"),
    (dict(dims=0), "dims must be an integer >= 1"),
    (dict(dims=2.5), "dims must be an integer >= 1"),
    (dict(classes=1), "classes must be an integer >= 2"),
    (dict(batch_size=0), "batch_size must be an integer >= 1"),
    (dict(batch_size=True), "batch_size must be an integer >= 1"),
    (dict(lr=0.0), "lr must be > 0"),
    (dict(lr=float("nan")), "lr must be a finite number"),
    (dict(init_logit=float("nan")), "init_logit must be finite"),
    (dict(dims=2, init_logit=[1.0, 2.0, 3.0]), r"init_logit of shape \(3,\) does not broadcast"),
])  # fmt: skip
def test_bad_knobs_are_refused(knobs, message):
    with pytest.raises(ValueError, match="^polynomial " + message):
        Polynomial(**knobs)
