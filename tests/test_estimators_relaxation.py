"""Gumbel-Rao, ReinMax, REBAR, RELAX, the unordered set estimator, and the conditional noise
they rest on (primitives/sampling.py).

False-alarm policy (tests/helpers.py): every statistical assertion is a test at family-wise
level ALPHA = 1e-4 with a fixed seed, Bonferroni over the coordinates it looks at (z_crit).
The unbiased estimators run the z-test of tests/test_unbiased.py against the exact gradient
on the toy quadratic and the MRF in each family they support, with N = 10000 draws; the
broken variants below (REBAR and RELAX evaluating their control variate at z itself instead
of at the conditional z~; the unordered set baseline not left out) land at 20 to 90 standard
errors at that N, and are required to be more than 10 past the threshold. The noise tests
run KS tests at N = 100000, where the plausible wrong samplers give p-values below 1e-20.
Exact tests (fixed noise, a formula by hand) compare at 1e-6 or bit for bit.
"""
import itertools

import numpy as np
import pytest
import torch
from helpers import ALPHA, draw, exact, mean_z, z_crit
from scipy import stats
from test_unbiased import TASKS  # the tasks every unbiased estimator is z-tested on

from analysis.statistics import variance_statistics
from primitives.families import sample
from discograd.run import control_optimizer, train_step
from estimators.gumbel_rao import GumbelRao
from estimators.registry import construction
from estimators.rebar import Rebar, perturb
from estimators.reinmax import ReinMax
from estimators.relax import Relax
from primitives.sampling import (
    conditional_gumbel,
    conditional_logistic,
    gumbel_noise,
    logistic_noise,
    one_hot_argmax,
    plackett_luce_log_prob,
)  # fmt: skip
from estimators.st_gumbel_softmax import StraightThroughGumbelSoftmax
from estimators.unordered_set import UnorderedSet, outside, set_log_probs

N = 10_000
N_NOISE = 100_000
CATEGORICAL = [t for t in TASKS if t.endswith("categorical")]


# ---------------------------------------------------------------- conditional noise


def test_conditional_gumbel_is_the_exponential_race_by_hand():
    """At injected uniforms: the winner is -log E_b + log Z, a loser -log(E_k / e^l_k + E_b / Z),
    E = -log u (Paulus et al. 2021, the exponential race)."""
    logits = torch.tensor([[0.3, -1.2, 2.0, 0.0], [1.0, 1.0, -3.0, 0.5]], dtype=torch.float64)
    b = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)
    u = torch.rand(5, 2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    e, z = -torch.log(u), logits.exp().sum(-1, keepdim=True)
    e_b = (e * b).sum(-1, keepdim=True)
    by_hand = b * (-torch.log(e_b) + torch.log(z)) + (1 - b) * -torch.log(e / logits.exp() + e_b / z)
    got = conditional_gumbel(logits, b.expand(5, 2, 4), u)
    assert torch.allclose(got, by_hand, rtol=0, atol=1e-12)
    assert torch.equal(one_hot_argmax(got), b.expand(5, 2, 4))


def test_conditional_logistic_is_the_truncated_inverse_cdf_by_hand():
    """At injected v: theta + logit(u'), u' = (1 - p) + v p (b = 1) or v (1 - p) (b = 0) (Tucker et al. 2017)."""
    theta = torch.tensor([-1.0, 0.3, 2.0, -8.0, 8.0], dtype=torch.float64)
    v = torch.rand(6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    p = torch.sigmoid(theta)
    for value in (0.0, 1.0):
        b = torch.full((6, 5), value, dtype=torch.float64)
        u = torch.where(b > 0.5, (1 - p) + v * p, v * (1 - p))
        got = conditional_logistic(theta, b, v)
        assert torch.allclose(got, theta + torch.logit(u), rtol=0, atol=1e-9)
        assert ((got > 0) == (b > 0.5)).all()


def _wrong_top_conditional_gumbel(logits, b):
    """A plausible bug: the winner drawn as Gumbel(l_b) instead of Gumbel(logsumexp l)."""
    u = torch.rand(b.shape, dtype=logits.dtype)
    top = ((-torch.log(-torch.log(u)) + logits) * b).sum(-1, keepdim=True)
    losers = -torch.logaddexp(-top, torch.log(-torch.log(u)) - logits)
    return torch.where(b > 0.5, top, losers)


def _gumbel_ks_pvalues(z, logits):
    """KS p-values of z_k - l_k against Gumbel(0, 1) per class, and of z_0 - z_1 against Logistic(l_0 - l_1)."""
    p = [stats.kstest((z[:, k] - logits[k]).numpy(), stats.gumbel_r.cdf).pvalue for k in range(z.shape[1])]
    return p + [stats.kstest((z[:, 0] - z[:, 1]).numpy(), stats.logistic(loc=float(logits[0] - logits[1])).cdf).pvalue]


def test_conditional_gumbel_given_a_gumbel_max_sample_is_unconditional_gumbel():
    """b = argmax(l + g) drawn first, then g~ given b: l + g~ has the law of l + g (each class
    a Gumbel(l_k), and the difference of two a logistic, which a per-class check would miss)."""
    torch.manual_seed(10)
    logits = torch.tensor([1.0, 0.0, -1.0, 0.5], dtype=torch.float64)
    b = one_hot_argmax(logits + gumbel_noise((N_NOISE, 4), logits))
    z = conditional_gumbel(logits, b)
    assert torch.equal(one_hot_argmax(z), b)
    p = _gumbel_ks_pvalues(z, logits)
    assert min(p) > ALPHA / len(p)
    assert max(_gumbel_ks_pvalues(_wrong_top_conditional_gumbel(logits, b), logits)) < 1e-20  # power, every check


def test_conditional_logistic_given_a_bernoulli_sample_is_unconditional_logistic():
    torch.manual_seed(11)
    theta = torch.tensor([-1.0, 0.3, 2.0], dtype=torch.float64)
    b = (theta + logistic_noise((N_NOISE, 3), theta) > 0).double()
    z = conditional_logistic(theta, b)
    assert torch.equal((z > 0).double(), b)
    p = [stats.kstest((z[:, d] - theta[d]).numpy(), stats.logistic.cdf).pvalue for d in range(3)]
    assert min(p) > ALPHA / 3
    # power: truncated at the wrong point (the draw for -theta, shifted back by 2 theta: a sign slip)
    wrong = conditional_logistic(-theta, b) + 2 * theta
    assert max(stats.kstest((wrong[:, d] - theta[d]).numpy(), stats.logistic.cdf).pvalue for d in range(3)) < 1e-20


# ---------------------------------------------------------------- Gumbel-Rao


@pytest.mark.parametrize("task", ["toy-bernoulli", "toy-categorical"])
@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
def test_gumbel_rao_with_one_sample_is_st_gumbel_softmax_draw_for_draw(task, vectorize):
    """Same seed, same random stream: the two estimates agree bit for bit."""
    samples = 2000 if vectorize else 200
    rao = draw(TASKS[task](), GumbelRao(temperature=0.5, num_samples=1), samples, vectorize, seed=3)
    st = draw(TASKS[task](), StraightThroughGumbelSoftmax(temperature=0.5), samples, vectorize, seed=3)
    assert np.array_equal(rao, st)


@pytest.mark.parametrize("task", ["toy-bernoulli", "mrf-categorical"])
def test_gumbel_rao_keeps_the_mean_and_lowers_the_variance_of_st_gumbel_softmax(task):
    """Rao-Blackwellization: the same mean (two-sample z-test), a lower variance (the 1 - ALPHA / 2
    intervals of the two variances do not overlap; at tau = 0.5 the gap is 35 to 50 %)."""
    rao = draw(TASKS[task](), GumbelRao(temperature=0.5, num_samples=10), 5000, seed=1)
    st = draw(TASKS[task](), StraightThroughGumbelSoftmax(temperature=0.5), 5000, seed=2)
    se = np.sqrt(rao.var(0, ddof=1) / len(rao) + st.var(0, ddof=1) / len(st))
    assert np.abs((rao.mean(0) - st.mean(0)) / se).max() < z_crit(rao.shape[1])
    level = 1 - ALPHA / 2
    assert variance_statistics(rao, level)["variance_hi"] < variance_statistics(st, level)["variance_lo"]


def test_gumbel_rao_rejects_bad_knobs():
    with pytest.raises(ValueError, match="num_samples"):
        GumbelRao(num_samples=0)
    with pytest.raises(ValueError, match="temperature"):
        GumbelRao(temperature=-1.0)


# ---------------------------------------------------------------- ReinMax


def test_reinmax_backward_is_the_papers_by_hand():
    """One draw, fixed seed: d f / d logits = (2 J(pi_1) - J(pi_0) / 2) df/dD, J(pi) = diag(pi) - pi pi^T,
    pi_0 = softmax(l), pi_1 = (softmax(l / tau) + D) / 2, the sample D drawn as the estimator draws it."""
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.0], [0.0, 0.3, -0.2, 1.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.2, 0.0, -1.0, 1.5]], dtype=torch.float64)

    def f(z):  # [1, D, K] -> [1]
        return (z * w).sum((-2, -1)) ** 2

    def jacobian(pi):  # diag(pi) - pi pi^T over the last axis
        return torch.diag_embed(pi) - pi.unsqueeze(-1) * pi.unsqueeze(-2)

    tau = 2.0
    for seed in range(5):
        torch.manual_seed(seed)
        estimate = ReinMax(temperature=tau)(logits, f, "categorical")
        (got,) = torch.autograd.grad(estimate.surrogate, logits)
        torch.manual_seed(seed)
        d = sample(logits, "categorical", 1)[0]  # [D, K]
        g = 2 * (d * w).sum() * w  # df/dD at D
        pi0 = torch.softmax(logits.detach(), -1)
        pi1 = (torch.softmax(logits.detach() / tau, -1) + d) / 2
        by_hand = ((2 * jacobian(pi1) - 0.5 * jacobian(pi0)) @ g.unsqueeze(-1)).squeeze(-1)
        assert torch.allclose(got, by_hand, rtol=0, atol=1e-12)
        assert estimate.value.item() == pytest.approx(f(d.unsqueeze(0)).item())


def test_reinmax_matches_the_authors_pip_package_draw_for_draw(monkeypatch):
    """microsoft's ``reinmax`` package (pip install reinmax, the authors' implementation): its
    sample D ~ softmax(l) fed to ours, the gradients in the logits agree on every draw (so the
    two agree in distribution); the package's D is a multinomial draw, ours a Gumbel argmax."""
    reinmax = pytest.importorskip("reinmax")
    import estimators.reinmax as ours

    logits = torch.tensor([[0.5, -1.0, 2.0, 0.0], [0.0, 0.3, -0.2, 1.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.2, 0.0, -1.0, 1.5]], dtype=torch.float64)
    torch.manual_seed(0)
    seen = set()
    for tau in (1.0, 2.0):
        for _ in range(40):
            d, _ = reinmax.reinmax(logits, tau)  # [D, K], gradient through the authors' backward
            (theirs,) = torch.autograd.grad(((d * w).sum()) ** 2, logits)
            hard = d.detach()
            monkeypatch.setattr(ours, "sample", lambda *_, hard=hard: hard.unsqueeze(0))
            estimate = ours.ReinMax(temperature=tau)(logits, lambda z: (z * w).sum((-2, -1)) ** 2, "categorical")
            (mine,) = torch.autograd.grad(estimate.surrogate, logits)
            assert torch.allclose(mine, theirs, rtol=0, atol=1e-12), (tau, hard)
            seen.add(tuple(hard.argmax(-1).tolist()))
    assert len(seen) >= 4  # several samples, not one


def test_reinmax_refuses_bernoulli():
    with pytest.raises(ValueError, match="supports categorical, sequence, not bernoulli"):
        ReinMax()(torch.zeros(3), lambda z: z.sum(-1), "bernoulli")


# ---------------------------------------------------------------- REBAR, RELAX, unordered set


class RebarWithoutConditionalNoise(Rebar):
    """Broken on purpose: the control variate's score term at z itself instead of at z~ given b."""

    def sample(self, logits, family):
        z, b = perturb(logits, family)
        return z, b, z


class RelaxWithoutConditionalNoise(Relax):
    sample = RebarWithoutConditionalNoise.sample


class UnorderedSetSharedBaseline(UnorderedSet):
    """Broken on purpose: every sample's baseline is the set's estimate sum_s' p(s') R(S, s') f(s'),
    its own value included with the wrong weight."""

    def weights(self, joint, index):
        weight, _ = super().weights(joint, index)
        return weight, weight.unsqueeze(-2).expand(weight.shape + weight.shape[-1:])


def learn(estimator, task, steps: int) -> None:
    """``steps`` training steps of the estimator's learned parts only, by the run loop's own
    mechanism (its control optimizer, from control_loss; the task's logits stay fixed)."""
    control = control_optimizer(estimator)
    for step in range(steps):
        train_step(step, task, estimator, [], control)


def trained_relax(task, steps: int = 30, cls: type[Relax] = Relax) -> Relax:
    """A RELAX whose network has left zero: ``steps`` training steps of its controls."""
    torch.manual_seed(4)
    relax = cls(eta=0.5, lr=0.05, latent_shape=task.latent_shape)
    learn(relax, task, steps)
    assert relax.network[-1].weight.abs().sum() > 0
    return relax


UNBIASED = {
    "rebar": lambda task: Rebar(),
    "rebar-eta0.5-tau0.3": lambda task: Rebar(eta=0.5, temperature=0.3),
    "relax-trained": trained_relax,
    "unordered_set-k2": lambda task: UnorderedSet(num_samples=2),
    "unordered_set-k4": lambda task: UnorderedSet(num_samples=4),
    "unordered_set-each-k2": lambda task: UnorderedSet(num_samples=2, latents="each"),
}
CASES = [(e, t) for e in UNBIASED for t in TASKS if not e.startswith("unordered_set") or t in CATEGORICAL]


@pytest.mark.parametrize("name,task", CASES)
def test_unbiased_estimators_match_the_exact_gradient(name, task):
    task = TASKS[task]()
    z = mean_z(draw(task, UNBIASED[name](task), N), exact(task))
    assert np.abs(z).max() < z_crit(z.size)


BROKEN = {
    "rebar-without-conditional-noise": lambda task: RebarWithoutConditionalNoise(),
    "relax-trained-without-conditional-noise": lambda task: trained_relax(task, cls=RelaxWithoutConditionalNoise),
    "unordered_set-shared-baseline": lambda task: UnorderedSetSharedBaseline(),
    "unordered_set-each-shared-baseline": lambda task: UnorderedSetSharedBaseline(num_samples=2, latents="each"),
}
BROKEN_CASES = [(b, t) for b in BROKEN for t in TASKS if not b.startswith("unordered_set") or t in CATEGORICAL]


@pytest.mark.parametrize("broken,task", BROKEN_CASES)
def test_broken_variants_fail_the_same_test(broken, task):
    task = TASKS[task]()
    z = mean_z(draw(task, BROKEN[broken](task), N), exact(task))
    assert np.abs(z).max() > z_crit(z.size) + 10


def test_set_probabilities_match_enumerated_orderings():
    """The subset recursion's log p(S), log p(S - s) in the domain without s, and log p(S - s - s')
    in the domain without s and s', against sums of Plackett-Luce probabilities over every
    ordering (the removed classes as logits at -inf), for a set of k = 4 of K = 6 classes."""
    logits = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.5, -0.3], dtype=torch.float64)
    joint = torch.log_softmax(logits, -1)
    index = torch.tensor([4, 0, 2, 5])

    def log_p_set(members, removed=()):
        domain = joint.clone()
        domain[list(removed)] = float("-inf")
        orders = torch.tensor(list(itertools.permutations(members))) if members else None
        return torch.logsumexp(plackett_luce_log_prob(domain, orders), 0) if members else torch.tensor(0.0)

    log_set, log_without_s, log_without_ss = set_log_probs(joint.gather(-1, index), outside(joint, index))
    items = index.tolist()
    assert torch.allclose(log_set, log_p_set(items), atol=1e-12)
    for i, s in enumerate(items):
        rest = [t for t in items if t != s]
        assert torch.allclose(log_without_s[i], log_p_set(rest, [s]), atol=1e-12)
        assert torch.allclose(log_without_ss[i, i], log_without_s[i])
        for j, t in enumerate(items):
            if t != s:
                left = [r for r in rest if r != t]
                assert torch.allclose(log_without_ss[i, j], log_p_set(left, [s, t]), atol=1e-12)


def test_unordered_set_over_the_whole_space_is_the_exact_gradient():
    """k >= K^D: the set is every joint state (9 here), each draw the exact gradient."""
    task = TASKS["toy-categorical"]()
    estimates = draw(task, UnorderedSet(num_samples=16), 50)
    assert np.allclose(estimates, exact(task), rtol=0, atol=1e-6)


def test_unordered_set_rejects_large_product_spaces_and_bad_knobs():
    with pytest.raises(ValueError, match="joint states"):
        UnorderedSet()(torch.zeros(17, 2), lambda z: z.flatten(1).sum(-1), "categorical")
    for bad in (0, 17):
        with pytest.raises(ValueError, match="num_samples"):
            UnorderedSet(num_samples=bad)
    with pytest.raises(ValueError, match="valid: joint, each"):
        UnorderedSet(latents="product")


def test_unordered_set_each_holds_the_other_latents_at_one_sample():
    """latents=each: D k configurations, each the shared sample with one latent changed, the k
    values of a latent distinct; any D (here 20 latents of 10 classes, 10^20 joint states)."""
    logits = torch.randn(2, 20, 10, generator=torch.Generator().manual_seed(2))
    seen = []

    def f(z):  # keeps what it was given
        seen.append(z)
        return z.sum((-2, -1))

    estimate = UnorderedSet(num_samples=3, latents="each")(logits, f, "categorical")
    (z,) = seen
    assert estimate.evaluations == 60 and z.shape == (60, 2, 20, 10)
    z = z.unflatten(0, (3, 20))  # [k, D (set), B, D (latent), K]
    base = torch.stack([z[0, (d + 1) % 20, :, d] for d in range(20)], 1)  # [B, D, K]: each latent where another is set
    assert base.sum(-1).eq(1).all()
    other = ~torch.eye(20, dtype=torch.bool)
    for d in range(20):
        for j in range(3):
            assert torch.equal(z[j, d][:, other[d]], base[:, other[d]])
        chosen = z[:, d, :, d].argmax(-1)  # [k, B]
        assert (chosen[0] != chosen[1]).all() and (chosen[1] != chosen[2]).all() and (chosen[0] != chosen[2]).all()


@pytest.mark.parametrize("cls", [Rebar, Relax])
def test_controls_learn_in_training_mode_only(cls):
    """Eval mode carries no control loss and the run loop's step moves nothing; training mode
    moves eta and lambda; learn=false builds no optimizer at all."""
    task = TASKS["mrf-bernoulli"]()
    estimator = cls(learn=True, lr=0.05, **construction(cls, task.latent_shape))
    estimator.eval()
    learn(estimator, task, 1)
    assert estimator.eta.item() == 1.0 and estimator.temperature == 1.0
    estimator.train()
    learn(estimator, task, 1)
    assert estimator.eta.item() != 1.0 and estimator.temperature != 1.0
    before = {n: p.detach().clone() for n, p in estimator.named_parameters()}
    estimator.eval()
    learn(estimator, task, 1)
    assert all(torch.equal(before[n], p) for n, p in estimator.named_parameters())
    frozen = cls(learn=False)
    assert control_optimizer(frozen) is None and getattr(frozen, "network", None) is None
    assert frozen(task.logits(), task.objective, task.family).control_loss is None


def test_learning_lowers_rebars_variance():
    """From eta = 0 (plain REINFORCE) the variance step finds a useful control variate: after 100
    training calls the variance's 1 - ALPHA / 2 interval lies below the initial one."""
    task = TASKS["toy-bernoulli"]()
    torch.manual_seed(5)
    rebar = Rebar(eta=0.0, learn=True, lr=0.05)
    level = 1 - ALPHA / 2
    before = variance_statistics(draw(task, rebar, 4000, seed=6), level)
    learn(rebar, task, 100)
    after = variance_statistics(draw(task, rebar, 4000, seed=7), level)
    assert after["variance_hi"] < before["variance_lo"]
