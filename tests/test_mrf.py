"""The MRF task (tasks/mrf.py) and its exact inference (tasks/grid.py) against brute force.

Every comparison here is deterministic (enumeration vs closed form vs recursion, all in
float64 for the model, float32 for the task's logits), so tolerances are rounding bounds:
1e-10 for float64 sums over at most 2^12 states, 1e-5 relative for the float32 gradients.
"""
import itertools

import pytest
import torch
import torch.nn.functional as F

from tasks.grid import Grid
from tasks.mrf import MRF

SEEDS = [0, 1, 2]
COUPLINGS = ["ferromagnetic", "antiferromagnetic", "spin_glass"]


def enumerated_objective(task: MRF) -> torch.Tensor:
    """E_q[f] = sum_x q(x) f(x) over every joint state, differentiable in the logits."""
    states = task.grid.all_states().reshape(-1, task.grid.shape[0] * task.grid.shape[1])  # [S, N]
    one_hot = F.one_hot(states, task.grid.shape[2]).to(torch.float32)  # [S, N, K]
    z = states.to(torch.float32) if task.family == "bernoulli" else one_hot
    log_q = (one_hot * task.site_log_q()).sum((-2, -1))
    return (log_q.exp() * task.objective(z)).sum()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("classes,family", [(2, "categorical"), (2, "bernoulli"), (3, "categorical")])
def test_exact_gradient_equals_enumeration(seed, classes, family):
    task = MRF(height=3, width=3, classes=classes, family=family, coupling=COUPLINGS[seed], model_seed=seed)
    with torch.no_grad():
        task.parameters.logits.normal_(generator=torch.Generator().manual_seed(seed))
    (brute,) = torch.autograd.grad(enumerated_objective(task), [task.parameters.logits])
    exact = task.exact_gradient()["logits"]
    assert torch.allclose(exact, brute, rtol=1e-5, atol=1e-5)
    assert brute.abs().max() > 0.1  # the comparison is not between two zeros


def test_a_wrong_gradient_fails_the_same_comparison():
    """Power: the gradient of E_q[E] alone (the entropy term forgotten) is far from brute force."""
    task = MRF(classes=3, coupling="spin_glass", model_seed=1)
    with torch.no_grad():  # away from uniform, where the entropy's gradient vanishes
        task.parameters.logits.normal_(generator=torch.Generator().manual_seed(1))
    (brute,) = torch.autograd.grad(enumerated_objective(task), [task.parameters.logits])
    mu = task.marginals()
    (energy_only,) = torch.autograd.grad(task.grid.energy(mu.reshape(3, 3, 3)), [task.parameters.logits])
    assert not torch.allclose(energy_only, brute, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("height,width,classes", [(3, 3, 2), (2, 5, 2), (5, 2, 2), (1, 7, 2), (7, 1, 3), (4, 3, 2), (2, 3, 3)])
@pytest.mark.parametrize("coupling", COUPLINGS)
def test_transfer_matrix_equals_enumeration(height, width, classes, coupling):
    grid = Grid.potts(height, width, classes, 1.0, 0.8, coupling, seed=height * 10 + width)
    log_z, marginals = grid.exact("enumerate")
    log_z_t, marginals_t = grid.exact("transfer")
    assert abs(log_z - log_z_t) < 1e-10
    assert torch.allclose(marginals, marginals_t, atol=1e-10)
    assert torch.allclose(marginals.sum(-1), torch.ones(height, width, dtype=torch.float64))


def test_transfer_matrix_on_a_grid_too_large_to_enumerate():
    """10 x 30 (2^300 states): without couplings the sites are independent, so log Z is the sum
    of each site's logsumexp and p's marginals are the softmax of the fields."""
    grid = Grid.potts(10, 30, 2, 1.0, 0.0, "ferromagnetic", seed=0)
    log_z, marginals = grid.exact()
    assert abs(log_z - torch.logsumexp(grid.fields, -1).sum().item()) < 1e-8
    assert torch.allclose(marginals, torch.softmax(grid.fields, -1), atol=1e-12)
    coupled = Grid.potts(30, 10, 2, 1.0, 0.5, "spin_glass", seed=0)  # taller than wide: swept along rows
    log_z, marginals = coupled.exact()
    assert torch.isfinite(torch.tensor(log_z)) and torch.allclose(marginals.sum(-1), torch.ones(30, 10, dtype=torch.float64))


def test_energy_on_one_hots_equals_energy_on_states():
    grid = Grid.potts(3, 4, 3, 1.0, 1.0, "spin_glass", seed=5)
    states = grid.all_states()[:: 97]
    assert torch.allclose(grid.energy(F.one_hot(states, 3).double()), grid.state_energy(states), atol=1e-12)


@pytest.mark.parametrize("height,width", [(3, 3), (4, 2), (1, 6), (6, 1)])
def test_max_product_finds_the_map_of_perturbed_fields(height, width):
    grid = Grid.potts(height, width, 2, 1.0, 1.5, "spin_glass", seed=3)
    fields = grid.fields + torch.randn((20,) + grid.fields.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    states = grid.all_states()  # [S, H, W]
    energies = grid.state_energy(states.unsqueeze(1), fields.unsqueeze(0))  # [S, 20]
    expected = states[energies.argmin(0)]
    assert torch.equal(grid.map_state(fields), expected)


def test_evaluate_reports_true_kl():
    task = MRF(height=2, width=3, classes=3, coupling="spin_glass", model_seed=4)
    with torch.no_grad():
        task.parameters.logits.normal_(generator=torch.Generator().manual_seed(4))
    metrics = task.evaluate()
    # KL(q || p) by enumeration, in float64
    states = task.grid.all_states()
    log_p = -task.grid.state_energy(states)
    log_p = log_p - torch.logsumexp(log_p, 0)
    log_q = (F.one_hot(states.reshape(len(states), -1), 3).double() * task.site_log_q().double()).sum((-2, -1))
    kl = (log_q.exp() * (log_q - log_p)).sum().item()
    assert metrics["kl"] == pytest.approx(kl, abs=1e-5) and metrics["kl"] > 0
    p_marginals = (log_p.exp()[:, None, None] * F.one_hot(states.reshape(len(states), -1), 3).double()).sum(0)
    mae = (task.marginals().double() - p_marginals).abs().mean().item()
    assert metrics["marginal_mae"] == pytest.approx(mae, abs=1e-6)


@pytest.mark.parametrize("knobs,message", [
    (dict(classes=1), "classes must be an integer >= 2"),
    (dict(height=0), "height must be an integer >= 1"),
    (dict(width=0), "width must be an integer >= 1"),
    (dict(family="bernoulli", classes=3), "family=bernoulli needs classes=2"),
    (dict(coupling="ferro"), "valid|must be one of ferromagnetic, antiferromagnetic, spin_glass"),
    (dict(height=40, width=40), r"K\^min\(H,W\) <= 2\^10 .* H=40, W=40, K=2"),
])  # fmt: skip
def test_bad_knobs_are_one_clear_error(knobs, message):
    with pytest.raises(ValueError, match=message):
        MRF(**knobs)


def test_a_large_grid_trains_without_exact_log_z():
    task = MRF(height=40, width=40, exact_log_z=False)
    assert set(task.evaluate()) == {"exact_objective"}
    assert task.exact_gradient()["logits"].shape == (1600, 2)


def test_relaxed_samples_are_accepted():
    """f is written on one-hot sites, so a relaxed (soft) sample gives a finite value with a gradient."""
    task = MRF(classes=3)
    relaxed = torch.softmax(torch.randn(4, 9, 3), -1).requires_grad_()
    values = task.objective(relaxed)
    assert values.shape == (4,) and torch.isfinite(values).all()
    (grad,) = torch.autograd.grad(values.sum(), [relaxed])
    assert grad.abs().sum() > 0


def test_unique_states_cover_the_enumeration():
    grid = Grid.potts(2, 2, 3, 1.0, 1.0, "ferromagnetic", seed=0)
    states = {tuple(s.reshape(-1).tolist()) for s in grid.all_states()}
    assert states == set(itertools.product(range(3), repeat=4))
