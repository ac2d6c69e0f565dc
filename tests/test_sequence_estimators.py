"""Estimators on the sequence task: score-function and unordered-set estimators pass the
exact-gradient z-test (broken variants fail it), GRPO's bias is visible, every local
estimator runs per token through the policy, and estimators that cannot act on sequences,
or pathwise ones on a hard-only objective, are refused before work.

False-alarm policy (tests/helpers.py): family-wise 1e-4 per assertion, Bonferroni over the
estimand's coordinates, fixed seeds; broken variants must land far past the same threshold.
"""
import numpy as np
import pytest
import torch
from helpers import draw, exact, mean_z, z_crit

from discograd.conformance import ConformanceError, check_on_sequences
from estimators.grpo import GRPO
from estimators.registry import ESTIMATORS, create
from estimators.reinforce import Reinforce
from estimators.unordered_set import UnorderedSet
from primitives.sequences import SEQUENCE
from tasks.sequence import Sequence

SMALL = dict(vocab=3, length=3, hidden=4, init_scale=1.0)  # 27 sequences
POLICIES = ("tabular", "gru")
N = 20_000


def task(policy: str, **knobs) -> Sequence:
    return Sequence(**SMALL, policy=policy, **knobs)


class UnorderedSetNoRatio(UnorderedSet):
    """Broken: each member weighted by p(s) alone, the leave-one-out ratio R(S, s) dropped."""

    def weights(self, log_p, log_outside):
        weight, baseline_weight = super().weights(log_p, log_outside)
        return log_p.exp(), baseline_weight


class ReinforceSelfBaseline(Reinforce):
    """Broken: the baseline includes the sample's own value (the mean over all S)."""

    def baseline_values(self, values):
        return values.detach().mean(0, keepdim=True).expand_as(values)


UNBIASED = {
    "reinforce": lambda: Reinforce(),
    "reinforce-loo-4": lambda: Reinforce(baseline="loo", num_samples=4),
    "unordered_set-2": lambda: UnorderedSet(num_samples=2),
    "unordered_set-4": lambda: UnorderedSet(num_samples=4),
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", UNBIASED)
def test_unbiased_estimators_match_the_exact_gradient(name, policy):
    t = task(policy)
    z = mean_z(draw(t, UNBIASED[name](), N), exact(t))
    assert np.abs(z).max() < z_crit(z.size)


BROKEN = {
    "unordered_set-without-ratio": lambda: UnorderedSetNoRatio(num_samples=4),
    "reinforce-loo-with-own-value": lambda: ReinforceSelfBaseline(baseline="loo", num_samples=2),
    "grpo": lambda: GRPO(num_samples=4),  # biased by design: group-normalized
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", BROKEN)
def test_biased_variants_fail_the_same_test(name, policy):
    t = task(policy)
    z = mean_z(draw(t, BROKEN[name](), N), exact(t))
    assert np.abs(z).max() > z_crit(z.size) + 10


@pytest.mark.parametrize("policy", POLICIES)
def test_unordered_set_with_every_sequence_is_the_exact_gradient(policy):
    t = Sequence(vocab=2, length=3, hidden=4, init_scale=1.0, policy=policy)  # 8 sequences
    x = draw(t, UnorderedSet(num_samples=8), 3)
    assert np.allclose(x, exact(t), atol=1e-5)  # float32 rounding of 8 weighted terms


LOCAL = sorted(n for n, c in ESTIMATORS.items() if SEQUENCE in c.families and getattr(c, "pathwise", False))


def test_the_local_estimators_are_the_straight_through_and_relaxed_ones():
    assert set(LOCAL) >= {"st", "sigmoid_st", "gumbel_softmax", "st_gumbel_softmax", "gumbel_rao", "reinmax", "gst", "zgr"}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", LOCAL)
def test_local_estimators_run_per_token(name, policy):
    """Finite estimates that reach every step's parameters: the gradient of the last
    transition reaches the policy's first-step parameters only through the tokens fed back."""
    t = task(policy)
    x = draw(t, create(name, temperature=0.5), 200)
    assert np.isfinite(x).all() and np.abs(x).sum(1).min() > 0
    assert (np.abs(x).max(0) > 0).mean() > 0.5


def test_straight_through_on_sequences_feeds_hard_tokens_forward():
    """st's f sees one-hot tokens; gumbel_softmax's sees relaxed ones."""
    t = task("tabular")
    seen = {}
    for name in ("st", "gumbel_softmax"):
        f = t.bind(None, t.logits())
        create(name, temperature=0.5)(t.logits(), lambda y, n=name: seen.setdefault(n, y.detach()) is not None and f(y), SEQUENCE)
    hard, soft = seen["st"], seen["gumbel_softmax"]
    assert hard.shape == soft.shape == (1, 3, 3)
    assert ((hard == 0) | (hard == 1)).all() and (hard.sum(-1) == 1).all()
    assert not ((soft == 0) | (soft == 1)).all()


def test_a_run_is_reproducible_by_its_seed():
    for name in ("reinforce", "unordered_set", "gumbel_softmax"):
        a, b = (draw(task("gru"), create(name, temperature=0.5), 50, seed=3) for _ in range(2))
        assert np.array_equal(a, b), name


SEQUENTIAL = sorted(n for n, c in ESTIMATORS.items() if SEQUENCE in c.families)


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_the_conformance_kits_sequence_check_passes_the_registry(name):
    check_on_sequences(lambda shape: create(name, temperature=0.5, latent_shape=shape), N)


def test_the_conformance_kits_sequence_check_fails_a_broken_estimator():
    with pytest.raises(ConformanceError, match="max |z|"):
        check_on_sequences(lambda shape: UnorderedSetNoRatio(num_samples=4), N)


def test_a_sequence_sweep_through_the_cli_writes_its_report(tmp_path):
    """discograd -m task=sequence with a basket and budget: every job ok, one stats row per
    probed estimator and probe against the exact reference, and the report written; an
    estimator that cannot act on sequences is refused in one line before work."""
    from test_cli import discograd, job_folders, read_csv, read_summary

    sweep = tmp_path / "sweep"
    result = discograd(["-m", "task=sequence", "task.length=3", "task.policy=tabular,gru", "estimator=unordered_set",
                        "probe.estimators=[reinforce,gumbel_rao]", "budget=4", "steps=4", "probe.samples=50",
                        "probe.every=0", "report=true", f"hydra.sweep.dir={sweep}"], tmp_path)  # fmt: skip
    assert result.rc == 0, str(result)
    jobs = job_folders(sweep)
    assert len(jobs) == 2 and all(read_summary(j)["status"] == "ok" for j in jobs)
    for job in jobs:
        rows = read_csv(job / "stats.csv")[1]
        assert {(r["step"], r["estimator"]) for r in rows} == {(s, e) for s in ("0", "4") for e in ("unordered_set", "reinforce", "gumbel_rao")}
        assert {r["reference"] for r in rows} == {"exact"} and {r["evaluations"] for r in rows} == {"4"}
    assert (sweep / "report" / "report.html").exists()
    refused = discograd(["task=sequence", "estimator=disarm"], tmp_path)
    assert refused.rc == 2 and "estimators for sequence:" in refused.stderr and refused.stderr.count("\n") == 1
