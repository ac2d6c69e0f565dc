"""The sequence task (tasks/sequence.py): its exact gradient against finite differences, its
exact metrics against a numpy re-implementation of the docstring's formulas, the edit distance
against the textbook DP, sampling frequencies against exact probabilities, gradients through
relaxed tokens, REINFORCE under vmap(grad(functional_call), randomness="different"), the
shipped yaml, bad knobs and seeding.

Deterministic comparisons run in float64 with rounding tolerances. Statistical ones follow
tests/helpers.py: fixed seeds, family-wise false alarm ALPHA = 1e-4, each paired with a wrong
variant that must land far past the same threshold.
"""
import inspect
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy.stats import chi2
from torch import nn
from torch.func import functional_call, grad, vmap

from helpers import ALPHA, max_abs_z, z_crit
from primitives.sampling import gumbel_max
from primitives.sequences import decode, enumerate_sequences, log_prob
from tasks import TASKS
from tasks.sequence import GRU, Sequence, edit_distance

CONF = Path(__file__).resolve().parents[1] / "conf" / "task" / "sequence.yaml"
SMALL = dict(vocab=3, length=3, hidden=4, init_scale=1.0)  # 27 sequences; 127 gru parameters
CASES = list(itertools.product(("tabular", "gru"), ("quadratic", "edit_distance")))


def double(**knobs) -> Sequence:
    task = Sequence(**knobs)
    task.parameters.double()
    return task


def test_registered():
    assert TASKS["sequence"] is Sequence
    task = Sequence()
    assert (task.family, task.latent_shape, task.logits()) == ("sequence", (5, 4), task.parameters)
    assert task.probe_batch() is None and task.train_batch() is None
    assert Sequence(objective="quadratic").relaxable
    assert not Sequence(objective="edit_distance").relaxable


@pytest.mark.parametrize("policy,objective", CASES)
def test_exact_gradient_equals_finite_differences(policy, objective):
    task = double(**SMALL, policy=policy, objective=objective)
    exact = task.exact_gradient()
    eps = 1e-5
    for name, param in task.estimand().items():
        numeric = torch.zeros_like(param)
        flat, out = param.data.view(-1), numeric.view(-1)
        for i in range(flat.numel()):
            value = flat[i].item()
            flat[i] = value + eps
            upper = task.evaluate()["exact_objective"]
            flat[i] = value - eps
            lower = task.evaluate()["exact_objective"]
            flat[i] = value
            out[i] = (upper - lower) / (2 * eps)
        # central differences: truncation O(eps^2) ~ 1e-10, rounding ~ 1e-16 / eps = 1e-11
        assert torch.allclose(exact[name], numeric, rtol=1e-6, atol=1e-8), name
    assert max(g.abs().max().item() for g in exact.values()) > 1e-2  # not a comparison of zeros


def numpy_probabilities(task: Sequence) -> dict[tuple[int, ...], float]:
    """p(y) of every sequence from the module docstring's formulas, in numpy."""
    policy = {k: v.detach().double().numpy() for k, v in task.parameters.named_parameters()}
    length, vocab = task.latent_shape

    def softmax(x):
        e = np.exp(x - x.max())
        return e / e.sum()

    def gru_step(s, y):
        x = np.eye(vocab)[y]
        gx = policy["token_gates.weight"] @ x + policy["token_gates.bias"]
        gs = policy["state_gates.weight"] @ s + policy["state_gates.bias"]
        h = s.shape[0]
        r = 1 / (1 + np.exp(-(gx[:h] + gs[:h])))
        z = 1 / (1 + np.exp(-(gx[h : 2 * h] + gs[h : 2 * h])))
        n = np.tanh(gx[2 * h :] + r * gs[2 * h :])
        return (1 - z) * n + z * s

    probs = {}
    for y in itertools.product(range(vocab), repeat=length):
        p, s = 1.0, policy.get("initial")
        for t in range(length):
            if isinstance(task.parameters, GRU):
                logits = policy["readout.weight"] @ s + policy["readout.bias"]
                s = gru_step(s, y[t])
            else:
                logits = policy["first"] if t == 0 else policy["transition"][t - 1][y[t - 1]]
            p *= softmax(logits)[y[t]]
        probs[y] = p
    return probs


def levenshtein(a, b) -> int:
    """The textbook O(len(a) len(b)) dynamic programme."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i, j in itertools.product(range(1, len(a) + 1), range(1, len(b) + 1)):
        d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


def numpy_objective(task: Sequence, y: tuple[int, ...]) -> float:
    length, vocab = task.latent_shape
    target = task.target_tokens.tolist()
    if task.objective_name == "edit_distance":
        return levenshtein(y, target) / length
    Y, T, W = np.eye(vocab)[list(y)], np.eye(vocab)[target], task.weights.double().numpy()
    pairs = sum(Y[t] @ W @ Y[t + 1] for t in range(length - 1))
    return ((Y - T) ** 2).sum() / length - task.coupling * pairs


@pytest.mark.parametrize("policy,objective", CASES)
def test_evaluate_equals_numpy_enumeration(policy, objective):
    task = double(**SMALL, policy=policy, objective=objective)
    probs = numpy_probabilities(task)
    expected = sum(p * numpy_objective(task, y) for y, p in probs.items())
    entropy = -sum(p * math.log(p) for p in probs.values())
    metrics = task.evaluate()
    assert set(metrics) == {"exact_objective", "entropy"}
    assert metrics["exact_objective"] == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert metrics["entropy"] == pytest.approx(entropy, rel=1e-10)
    assert entropy < math.log(27) - 0.1  # the seeded policy is not uniform


def test_edit_distance_equals_textbook_dp():
    generator = torch.Generator().manual_seed(0)
    for length, target_length in [(1, 1), (4, 4), (5, 3), (2, 6)]:
        tokens = torch.randint(3, (200, length), generator=generator)  # [S, L]
        target = torch.randint(3, (target_length,), generator=generator)
        brute = [levenshtein(row, target.tolist()) for row in tokens.tolist()]
        assert edit_distance(tokens, target).tolist() == brute
    two_axes = torch.randint(3, (4, 5, 4), generator=generator)  # [S1, S2, L]
    assert edit_distance(two_axes, target[:4]).shape == (4, 5)


@pytest.mark.parametrize("policy", ["tabular", "gru"])
def test_log_prob_of_the_enumeration_sums_to_one(policy):
    task = double(vocab=4, length=4, policy=policy)
    y = enumerate_sequences(4, 4, like=next(task.parameters.parameters()))  # float64
    assert torch.logsumexp(log_prob(task.parameters, y), 0).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("policy", ["tabular", "gru"])
def test_gumbel_max_decoding_draws_the_exact_probabilities(policy):
    """Pearson's chi-square over the 8 sequences of K = 2, L = 3 at false alarm 1e-5 (every
    expected count is over 90, so the chi-square law holds); the wrong variant, another
    model_seed's probabilities, must exceed 5 times the threshold (measured: about 10^4)."""
    task, other = (Sequence(vocab=2, length=3, policy=policy, model_seed=s) for s in (0, 1))
    n, y = 40_000, enumerate_sequences(3, 2)  # [8, L, K]
    torch.manual_seed(0)
    with torch.no_grad():
        draws = decode(task.parameters, gumbel_max, (n,))  # [N, L, K]
        index = (draws.argmax(-1) * torch.tensor([4, 2, 1])).sum(-1)  # [N]: lexicographic, as y
        counts = torch.bincount(index, minlength=8).double()  # [8]

        def statistic(source: Sequence) -> float:
            expected = n * log_prob(source.parameters, y).double().exp()  # [8]
            return ((counts - expected) ** 2 / expected).sum().item()

        threshold = chi2.isf(1e-5, 7)
        assert statistic(task) < threshold
        assert statistic(other) > 5 * threshold


@pytest.mark.parametrize("policy", ["tabular", "gru"])
def test_relaxed_tokens_carry_the_gradient_to_later_steps(policy):
    """f reads only the last token; an offset on the first token's logits reaches it only
    through the relaxed token fed to advance (and does not once that first token is detached)."""
    task = double(vocab=3, length=4, policy=policy, init_scale=1.0)
    offset = torch.zeros(3, dtype=torch.float64, requires_grad=True)

    def last_token_gradient(detach: bool) -> torch.Tensor:
        steps = iter(range(4))

        def choose(logits):
            first = next(steps) == 0
            token = torch.softmax(logits + (offset if first else 0), -1)
            return token.detach() if detach and first else token

        y = decode(task.parameters, choose, (2,))  # [2, L, K]
        (g,) = torch.autograd.grad(y[:, -1, 0].sum(), [offset], allow_unused=True)
        return torch.zeros(3, dtype=torch.float64) if g is None else g

    assert last_token_gradient(False).abs().max() > 1e-4
    assert last_token_gradient(True).abs().max() == 0
    if policy == "tabular":  # theta's first-token logits, through the bigram only
        y = decode(task.parameters, lambda logits: torch.softmax(logits, -1), (2,))
        (g,) = torch.autograd.grad(y[:, -1, 0].sum(), [task.parameters.first])
        assert g.abs().max() > 1e-4


class Reinforce(nn.Module):
    """A one-sample score-function surrogate f(y) log p(y), y decoded with Gumbel-max."""

    def __init__(self, task: Sequence, sign: float = 1.0) -> None:
        super().__init__()
        self.policy, self.task, self.sign = task.parameters, task, sign

    def forward(self, _) -> torch.Tensor:
        y = decode(self.policy, gumbel_max, (1,))  # [1, L, K]
        return self.sign * (self.task.objective(y).detach() * log_prob(self.policy, y)).sum()


@pytest.mark.parametrize("policy,objective", CASES)
def test_reinforce_under_vmap_grad_functional_call_is_unbiased(policy, objective):
    """N = 20000 vmapped draws, each with its own noise, average to the exact gradient
    (max |z| below the Bonferroni threshold); the sign-flipped surrogate lands far past it."""
    task = Sequence(**SMALL, policy=policy, objective=objective)
    exact = torch.cat([g.reshape(-1) for g in task.exact_gradient().values()]).numpy()
    threshold = z_crit(exact.size, ALPHA)
    torch.manual_seed(0)
    for sign in (1.0, -1.0):
        module = Reinforce(task, sign)
        params = {k: v.detach() for k, v in module.named_parameters()}
        surrogate = grad(lambda p, _: functional_call(module, p, (None,)))
        draw = vmap(surrogate, in_dims=(None, 0), randomness="different")
        grads = draw(params, torch.arange(20_000))
        estimates = torch.cat([grads[k].reshape(20_000, -1) for k in params], 1).numpy()  # [N, P]
        assert len(np.unique(estimates, axis=0)) > 10  # the draws differ (27 sequences)
        z = max_abs_z(estimates, exact)
        assert (z < threshold) if sign > 0 else (z > threshold + 10), (sign, z, threshold)


def test_the_shipped_yaml_builds_the_class_defaults():
    task = instantiate(OmegaConf.load(CONF))
    defaults = {k: p.default for k, p in inspect.signature(Sequence).parameters.items()}
    assert set(OmegaConf.load(CONF)) - {"_target_", "_convert_"} == set(defaults)
    for knob, value in OmegaConf.load(CONF).items():
        assert knob.startswith("_") or value == defaults[knob], knob
    assert isinstance(task, Sequence) and task.optimizers()[0].param_groups[0]["lr"] == 0.01


@pytest.mark.parametrize("knobs,message", [
    (dict(vocab=1), "vocab must be an integer >= 2"),
    (dict(vocab=2.5), "vocab must be an integer >= 2"),
    (dict(length=0), "length must be an integer >= 1"),
    (dict(policy="lstm"), "policy must be one of tabular, gru, got 'lstm'"),
    (dict(objective="hamming"), "objective must be one of quadratic, edit_distance, got 'hamming'"),
    (dict(coupling=float("nan")), "coupling must be a finite number"),
    (dict(hidden=0), "hidden must be an integer >= 1"),
    (dict(init_scale=-1.0), "init_scale must be >= 0"),
    (dict(lr=0.0), "lr must be > 0"),
    (dict(model_seed=-1), "model_seed must be an integer >= 0"),
    (dict(vocab=2, length=17), r"vocab=2, length=17 gives 2\*\*17 = 131,072 > 65,536"),
    (dict(vocab=4, length=9), r"vocab=4, length=9"),
])  # fmt: skip
def test_bad_knobs_raise(knobs, message):
    with pytest.raises(ValueError, match=message):
        Sequence(**knobs)
    Sequence(vocab=4, length=8)  # 4^8 = 2^16 sequences: allowed


@pytest.mark.parametrize("policy", ["tabular", "gru"])
def test_the_same_seed_gives_the_same_policy_and_objective(policy):
    torch.manual_seed(123)  # the global generator plays no part
    a = Sequence(policy=policy, model_seed=3)
    torch.manual_seed(7)
    b, c = Sequence(policy=policy, model_seed=3), Sequence(policy=policy, model_seed=4)
    for x, y, same in ((a, b, True), (a, c, False)):
        state = zip(x.parameters.state_dict().values(), y.parameters.state_dict().values())
        assert all(torch.equal(p, q) for p, q in state) == same
        assert torch.equal(x.weights, y.weights) == same
    assert torch.equal(a.target_tokens, b.target_tokens)
