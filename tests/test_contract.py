"""The estimator contract, run on every registered estimator and every family it supports
through the conformance kit (discograd/conformance.py, the one implementation of the
checks): adding an estimator to the registry adds it to these tests."""
import inspect
import sys

import pytest
import torch

from discograd.conformance import ConformanceError, contract_checks, factory, require
from estimators import ESTIMATORS, Estimate
from estimators.reinforce import Reinforce
from primitives.families import FAMILIES

KNOBS = {"reinforce": {"num_samples": 2, "baseline": "loo"}}  # the other estimators at their defaults


def make(name: str):
    """A factory of the registered estimator ``name`` (at temperature 0.5 if it has one)."""
    cls = ESTIMATORS[name]
    knobs = dict(KNOBS.get(name, {}))
    if "temperature" in inspect.signature(cls).parameters:
        knobs["temperature"] = 0.5
    return factory(cls, **knobs)


CASES = [
    pytest.param(name, family, check, id=f"{name}-{family}-{check}")
    for name in sorted(ESTIMATORS) for family in FAMILIES if family in ESTIMATORS[name].families
    for check in contract_checks(family)
]  # fmt: skip


@pytest.mark.parametrize("name,family,check", CASES)
def test_contract(name, family, check):
    contract_checks(family)[check](make(name))  # raises ConformanceError with the evidence


def test_a_broken_estimator_fails_the_kit_with_its_own_error():
    """The kit's verdicts are its own exception, not assert (python -O keeps them)."""
    class ValueNotDetached(type(make("st")(()))):
        def forward(self, logits, f, family):
            estimate = super().forward(logits, f, family)
            return type(estimate)(estimate.surrogate, estimate.surrogate, estimate.evaluations)

    with pytest.raises(ConformanceError, match="value must be detached"):
        contract_checks("bernoulli")["shapes and gradients, float32"](factory(ValueNotDetached))
    with pytest.raises(ConformanceError, match="boom"):
        require(False, "boom")


class LossInEval(Reinforce):
    """Broken on purpose: a control loss in eval mode too."""

    def forward(self, logits, f, family):
        estimate = super().forward(logits, f, family)
        return Estimate(estimate.surrogate, estimate.value, estimate.evaluations, estimate.surrogate)


class LearnsNothing(Reinforce):
    """Broken on purpose: a control_lr, but never a control loss."""

    control_lr = 1e-3


class LossOffParameters(Reinforce):
    """Broken on purpose: a training-mode control loss that reaches no parameter of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.eta = torch.nn.Parameter(torch.ones(()))

    def forward(self, logits, f, family):
        estimate = super().forward(logits, f, family)
        loss = estimate.surrogate.pow(2) if self.training else None
        return Estimate(estimate.surrogate, estimate.value, estimate.evaluations, loss)


@pytest.mark.parametrize("cls,message", [
    (LossInEval, "a control loss in eval mode"),
    (LearnsNothing, "but no control loss in training"),
    (LossOffParameters, "no gradient in the estimator's parameters"),
], ids=lambda x: getattr(x, "__name__", ""))  # fmt: skip
def test_the_control_loss_check_catches_broken_estimators(cls, message):
    with pytest.raises(ConformanceError, match=message):
        contract_checks("bernoulli")["control loss"](factory(cls))


def test_unsupported_family_is_rejected():
    class BernoulliOnly(type(make("st")(()))):
        families = frozenset({"bernoulli"})

    with pytest.raises(ValueError, match="supports bernoulli, not categorical"):
        BernoulliOnly()(torch.zeros(3, 2), lambda z: z.flatten(1).sum(-1), "categorical")


def test_registry_names_and_capabilities():
    assert set(ESTIMATORS) >= {"reinforce", "st", "sigmoid_st", "gumbel_softmax", "st_gumbel_softmax"}
    assert ESTIMATORS["reinforce"].unbiased
    assert not any(ESTIMATORS[n].unbiased for n in ("st", "sigmoid_st", "gumbel_softmax", "st_gumbel_softmax"))
    for name, cls in ESTIMATORS.items():
        assert cls.name == name
        doc = sys.modules[cls.__module__].__doc__ or ""
        assert "References" in doc and ".. math::" in doc, f"{name}: the module docstring gives the formula and paper"


class NaiveScore(Reinforce):
    """Broken on purpose: REINFORCE with the textbook log-probability b log sigma(l) +
    (1 - b) log(1 - sigma(l)), which is 0 * log 0 = NaN at |l| = 300 (float32 sigma is 0 or 1)."""

    def forward(self, logits, f, family):
        b = torch.bernoulli(torch.sigmoid(logits.detach())).unsqueeze(0)
        p = torch.sigmoid(logits)
        log_p = (b * torch.log(p) + (1 - b) * torch.log(1 - p)).sum(-1)
        values = f(b)
        return Estimate((values.detach() * log_p + values).mean(), values.detach().mean(), 1)


def test_the_extreme_logits_check_catches_a_naive_score():
    """The registry passes "finite at extreme logits" (above); the textbook log-probability does not."""
    with pytest.raises(ConformanceError, match="not finite"):
        contract_checks("bernoulli")["finite at extreme logits"](factory(NaiveScore))
