"""The estimator contract (estimators/base.py), run on every registered estimator and
every family it supports: adding an estimator to the registry adds it to these tests."""
import sys

import pytest
import torch

from estimators import ESTIMATORS, Estimator
from primitives.families import FAMILIES

CASES = [(name, family) for name in sorted(ESTIMATORS) for family in FAMILIES if family in ESTIMATORS[name].families]
LOGIT_SHAPES = {"bernoulli": (4, 3), "categorical": (4, 3, 5)}  # [B, D] and [B, D, K]


def build(name: str) -> Estimator:
    cls = ESTIMATORS[name]
    knobs = {"num_samples": 2, "baseline": "loo"} if name == "reinforce" else {}
    estimator = cls(**knobs)
    if estimator.temperature is not None:
        estimator.set_temperature(0.5)
    return estimator


def objective(weight: torch.Tensor):
    """f with a parameter of its own: [S, B, D(, K)] -> [S, B]."""
    return lambda z: (z * weight).flatten(2).sum(-1).pow(2)


@pytest.mark.parametrize("name,family", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_estimate_has_the_promised_shapes_and_gradients(name, family, dtype):
    torch.manual_seed(0)
    logits = torch.randn(LOGIT_SHAPES[family], dtype=dtype, requires_grad=True)
    weight = torch.randn(LOGIT_SHAPES[family][1:], dtype=dtype, requires_grad=True)
    estimate = build(name)(logits, objective(weight), family)
    assert estimate.surrogate.shape == () and estimate.value.shape == ()
    assert not estimate.value.requires_grad
    assert isinstance(estimate.evaluations, int) and estimate.evaluations >= 1
    estimate.surrogate.backward()
    for tensor in (logits, weight):  # upstream of logits, and inside f (pathwise)
        assert tensor.grad is not None and tensor.grad.shape == tensor.shape and tensor.grad.dtype == dtype
        assert torch.isfinite(tensor.grad).all()


@pytest.mark.parametrize("name,family", CASES)
def test_value_is_f_at_hard_samples(name, family):
    """f(z) = sum z (1 - z) is 0 on every binary or one-hot z and positive on relaxed ones: the
    value is 0 unless the class declares relaxed_value (gumbel_softmax)."""
    torch.manual_seed(0)
    estimate = build(name)(torch.randn(LOGIT_SHAPES[family]), lambda z: (z * (1 - z)).flatten(2).sum(-1), family)
    assert (estimate.value.item() > 0) == ESTIMATORS[name].relaxed_value


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA here"))]


@pytest.mark.parametrize("name,family", CASES)
@pytest.mark.parametrize("device", DEVICES)
def test_estimate_stays_on_the_logits_device(name, family, device):
    logits = torch.randn(LOGIT_SHAPES[family], device=device, requires_grad=True)
    estimate = build(name).to(device)(logits, lambda z: (z * z).flatten(2).sum(-1), family)
    estimate.surrogate.backward()
    assert estimate.value.device.type == device and logits.grad.device.type == device


@pytest.mark.parametrize("name,family", CASES)
def test_unbatched_logits(name, family):
    logits = torch.zeros(LOGIT_SHAPES[family][1:], requires_grad=True)
    estimate = build(name)(logits, lambda z: z.flatten(1).sum(-1), family)
    estimate.surrogate.backward()
    assert logits.grad.shape == logits.shape


@pytest.mark.parametrize("name,family", CASES)
def test_f_of_the_wrong_shape_is_rejected(name, family):
    logits = torch.zeros(LOGIT_SHAPES[family])
    with pytest.raises(ValueError, match="f must map samples"):
        build(name)(logits, lambda z: z.sum(), family)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_unknown_family_and_bad_rank_are_rejected(name):
    with pytest.raises(ValueError, match="valid: bernoulli, categorical"):
        build(name)(torch.zeros(3), lambda z: z.sum(-1), "gaussian")
    if "categorical" in ESTIMATORS[name].families:
        with pytest.raises(ValueError, match="at least 2 axes"):
            build(name)(torch.zeros(3), lambda z: z.sum(-1), "categorical")


def test_unsupported_family_is_rejected():
    class BernoulliOnly(type(build("st"))):
        families = frozenset({"bernoulli"})

    with pytest.raises(ValueError, match="supports bernoulli, not categorical"):
        BernoulliOnly()(torch.zeros(3, 2), lambda z: z.flatten(1).sum(-1), "categorical")


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_temperature_setter(name):
    estimator = build(name)
    if estimator.temperature is None:
        with pytest.raises(TypeError, match="has no temperature"):
            estimator.set_temperature(0.5)
        return
    estimator.set_temperature(0.25)
    assert estimator.temperature == 0.25
    for bad in (0.0, -1.0, float("nan"), "hot"):
        with pytest.raises(ValueError, match="temperature"):
            estimator.set_temperature(bad)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        type(estimator)(temperature=0.0)


def test_registry_names_and_capabilities():
    assert set(ESTIMATORS) >= {"reinforce", "st", "sigmoid_st", "gumbel_softmax", "st_gumbel_softmax"}
    assert ESTIMATORS["reinforce"].unbiased
    assert not any(ESTIMATORS[n].unbiased for n in ("st", "sigmoid_st", "gumbel_softmax", "st_gumbel_softmax"))
    for name, cls in ESTIMATORS.items():
        assert cls.name == name
        doc = sys.modules[cls.__module__].__doc__ or ""
        assert "References" in doc and ".. math::" in doc, f"{name}: the module docstring gives the formula and paper"
