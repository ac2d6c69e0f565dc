r"""The conformance kit: the one implementation of the estimator contract and of the
exact-gradient test. ``discograd check TARGET`` runs it on an estimator that lives anywhere;
tests/test_contract.py and tests/test_unbiased.py run the same functions over the registry.

TARGET is ``module:ClassName`` (importable from the current folder or the environment) or a
yaml file with a ``_target_`` (and knobs; ``${temperature}`` resolves to 0.5). The kit
builds a fresh estimator per check (one that needs the latent's shape gets it) and runs, for
every family it declares:

- the contract (estimators/base.py): scalar surrogate and value, value detached, an integer
  count of evaluations; gradients of the logits and of a parameter inside f of the right
  shape and dtype (float32, float64), finite; value is f at hard samples unless the class
  declares ``relaxed_value``; the estimate on the logits' device (cpu, and cuda where
  present); unbatched logits; f of the wrong shape, an unknown family and logits of the
  wrong rank rejected; the temperature setter (refused where there is no temperature or
  where it is learned); no control loss in eval mode, and in training mode one with a
  gradient in the estimator's own parameters where it learns any; the gradient probe;
- if the class says ``unbiased = True``: the exact-gradient z-test on toy_quadratic and on a
  2 x 3 MRF: N draws through the probe, every coordinate's |mean - exact| / se below the
  Bonferroni threshold at family-wise false alarm ``ALPHA`` = 1e-4;
- if it lists ``sequence``: on the sequence task (3 tokens of 3, 27 sequences, a GRU
  policy) through the probe, finite estimates that reach the policy, and where it says
  ``unbiased = True`` the same z-test against the exact gradient by enumeration.

A failed check raises :class:`ConformanceError` (never a bare ``assert``, so ``python -O``
changes nothing); ``run_checks`` turns each into a pass/fail row with its evidence.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf
from scipy.stats import norm

from discograd.probe import dims, draw_estimates
from estimators import Estimator
from estimators.registry import construction
from primitives.families import ALL_FAMILIES, FAMILIES
from primitives.sequences import SEQUENCE
from tasks import Task
from tasks.mrf import MRF
from tasks.sequence import Sequence
from tasks.toy_quadratic import ToyQuadratic

ALPHA = 1e-4
LOGIT_SHAPES = {"bernoulli": (4, 3), "categorical": (4, 3, 5)}  # [B, D] and [B, D, K]
# tasks with exact gradients of order 1 in every coordinate (as tests/test_unbiased.py's)
TASKS: dict[str, Callable[[str], Task]] = {
    "toy_quadratic": lambda family: ToyQuadratic(family=family, dims=3, classes=3, target=0.2,
                                                 init_logit=[-1.0, 0.5, 1.5] if family == "bernoulli" else 0.5),
    "mrf": lambda family: MRF(height=2, width=3, family=family, coupling="spin_glass", init_logit=0.5),
}  # fmt: skip
DEVICES = ("cpu", "cuda")

# builds a fresh estimator for a latent shape ((D,) or (D, K))
Factory = Callable[[tuple[int, ...]], Estimator]


class ConformanceError(Exception):
    """A contract or exact-gradient check that failed; ``z`` is the max |z| of a z-test."""

    def __init__(self, message: str, z: float | None = None) -> None:
        super().__init__(message)
        self.z = z


def require(condition: bool, message: str) -> None:
    """Raise ConformanceError(message) unless ``condition`` holds."""
    if not condition:
        raise ConformanceError(message)


def factory(cls: type, **knobs) -> Factory:
    """A Factory for ``cls(**knobs)``, passing latent_shape where the class takes it."""
    return lambda shape: cls(**knobs, **construction(cls, shape))


def _logits(family: str, dtype: torch.dtype = torch.float32, **kwargs) -> torch.Tensor:
    return torch.randn(LOGIT_SHAPES[family], dtype=dtype, **kwargs)


def _make(make: Factory, family: str) -> Estimator:
    return make(LOGIT_SHAPES[family][1:])


# ---------------------------------------------------------------------------- the contract


def check_gradients(make: Factory, family: str, dtype: torch.dtype = torch.float32) -> str:
    torch.manual_seed(0)
    estimator = _make(make, family)
    logits = _logits(family, dtype, requires_grad=True)
    weight = torch.randn(LOGIT_SHAPES[family][1:], dtype=dtype, requires_grad=True)
    estimate = estimator(logits, lambda z: (z * weight).flatten(2).sum(-1).pow(2), family)
    require(estimate.surrogate.shape == () and estimate.value.shape == (), "surrogate and value must be scalars")
    require(not estimate.value.requires_grad, "value must be detached")
    require(isinstance(estimate.evaluations, int) and estimate.evaluations >= 1, "evaluations must be an int >= 1")
    estimate.surrogate.backward()
    for what, tensor in (("logits", logits), ("a parameter of f", weight)):
        require(tensor.grad is not None, f"no gradient for {what}")
        require(tensor.grad.shape == tensor.shape and tensor.grad.dtype == dtype, f"gradient of {what}: wrong shape or dtype")
        require(bool(torch.isfinite(tensor.grad).all()), f"gradient of {what} is not finite")
    return f"logits {tuple(logits.shape)} {str(dtype).removeprefix('torch.')}, {estimate.evaluations} evaluation(s)"


EXTREME_BATCH = 4096  # half-precision noise: u rounds to 0 or 1 about once in 2^11 draws, so a naive log(-log u) meets it here surely


def check_finite_at_extreme_logits(make: Factory, family: str) -> str:
    """Samples and estimates stay finite where naive Gumbel or logistic noise does not: logits
    of magnitude 300 (float32: sigmoid and softmax saturate, log p = -inf), and float16 /
    bfloat16 logits over EXTREME_BATCH rows (uniform noise rounds to 0 or 1)."""
    cases = []
    for dtype, scale in ((torch.float32, 300.0), (torch.float16, 3.0), (torch.bfloat16, 3.0)):
        torch.manual_seed(0)
        shape = (EXTREME_BATCH if scale < 300 else LOGIT_SHAPES[family][0], *LOGIT_SHAPES[family][1:])
        logits = torch.randn(shape)
        logits = (logits.sign() * scale if scale == 300 else logits * scale).to(dtype).requires_grad_(True)
        weight = torch.randn(LOGIT_SHAPES[family][1:]).to(dtype).requires_grad_(True)
        estimate = _make(make, family).to(dtype)(logits, lambda z: (z * weight).flatten(2).sum(-1).pow(2), family)
        estimate.surrogate.backward()
        name = f"{str(dtype).removeprefix('torch.')} |logits| {'= 300' if scale == 300 else '~ 3'}"
        require(bool(torch.isfinite(estimate.value)), f"{name}: value {estimate.value.item()} is not finite")
        for what, tensor in (("logits", logits), ("a parameter of f", weight)):
            require(tensor.grad is not None and bool(torch.isfinite(tensor.grad).all()), f"{name}: gradient of {what} is not finite")
        cases.append(name)
    return "finite: " + ", ".join(cases)


def check_value_at_hard_samples(make: Factory, family: str) -> str:
    """f(z) = sum z (1 - z) is 0 on every binary or one-hot z and positive on relaxed ones."""
    torch.manual_seed(0)
    estimator = _make(make, family)
    value = estimator(_logits(family), lambda z: (z * (1 - z)).flatten(2).sum(-1), family).value.item()
    relaxed = type(estimator).relaxed_value
    require((value > 0) == relaxed, f"value {value:.3g} of f = sum z(1-z), but relaxed_value = {relaxed}")
    return f"value {value:.3g} (relaxed_value = {relaxed})"


def check_device(make: Factory, family: str, device: str = "cpu") -> str:
    logits = _logits(family, device=device, requires_grad=True)
    estimate = _make(make, family).to(device)(logits, lambda z: (z * z).flatten(2).sum(-1), family)
    estimate.surrogate.backward()
    require(estimate.value.device.type == device, f"value on {estimate.value.device}, logits on {device}")
    require(logits.grad is not None and logits.grad.device.type == device, f"gradient not on {device}")
    return f"value and gradient on {device}"


def check_unbatched(make: Factory, family: str) -> str:
    logits = torch.zeros(LOGIT_SHAPES[family][1:], requires_grad=True)
    _make(make, family)(logits, lambda z: z.flatten(1).sum(-1), family).surrogate.backward()
    require(logits.grad is not None and logits.grad.shape == logits.shape, "gradient of unbatched logits: wrong shape")
    return f"logits {tuple(logits.shape)}"


def _raises(call: Callable[[], object], error: type[Exception], match: str, what: str) -> str:
    try:
        call()
    except error as raised:
        require(match in str(raised), f"{what}: {error.__name__} without {match!r}: {raised}")
        return f"{error.__name__}: {raised}"
    raise ConformanceError(f"{what} was accepted")


def check_rejects_bad_input(make: Factory, family: str) -> str:
    """f of the wrong shape, an unknown family, and (categorical) logits of too low a rank."""
    estimator = _make(make, family)
    found = [_raises(lambda: estimator(torch.zeros(LOGIT_SHAPES[family]), lambda z: z.sum(), family),
                     ValueError, "f must map samples", "f returning a scalar instead of [S, B]")]  # fmt: skip
    found.append(_raises(lambda: estimator(torch.zeros(3), lambda z: z.sum(-1), "gaussian"),
                         ValueError, "valid: bernoulli, categorical", "family 'gaussian'"))  # fmt: skip
    if family == "categorical":
        found.append(_raises(lambda: estimator(torch.zeros(3), lambda z: z.sum(-1), "categorical"),
                             ValueError, "at least 2 axes", "categorical logits of shape (3,)"))  # fmt: skip
    return f"{len(found)} bad inputs rejected"


def check_temperature(make: Factory, family: str) -> str:
    """No temperature: set_temperature is a TypeError; a learned one: also; else it sets a
    positive number and refuses 0, -1, nan and a string. A constructor that takes a
    temperature refuses 0."""
    estimator = _make(make, family)
    if estimator.temperature is None or estimator.learns_temperature:
        reason = "has no temperature" if estimator.temperature is None else "learns its temperature"
        evidence = _raises(lambda: estimator.set_temperature(0.5), TypeError, reason, "set_temperature")
    else:
        estimator.set_temperature(0.25)
        require(estimator.temperature == 0.25, f"set_temperature(0.25) reads back {estimator.temperature}")
        for bad in (0.0, -1.0, float("nan"), "hot"):
            _raises(lambda: estimator.set_temperature(bad), ValueError, "temperature", f"temperature {bad!r}")
        evidence = "0.25 set; 0, -1, nan, 'hot' refused"
    if _builds_alone(type(estimator)):
        cls, extra = type(estimator), construction(type(estimator), LOGIT_SHAPES[family][1:])
        _raises(lambda: cls(temperature=0.0, **extra), ValueError, "temperature must be > 0",
                "constructor temperature 0")  # fmt: skip
        evidence += "; constructor refuses temperature 0"
    return evidence


def _builds_alone(cls: type) -> bool:
    """Whether ``cls`` takes a temperature and needs no knob but it and latent_shape."""
    params = inspect.signature(cls).parameters
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    needed = [n for n, p in params.items() if p.default is p.empty and p.kind in named]
    return "temperature" in params and set(needed) <= {"temperature", "latent_shape"}


def check_control_loss(make: Factory, family: str) -> str:
    """Eval mode: no control loss. Training mode: none, or a finite scalar with a gradient in
    the estimator's own parameters; one is required where ``control_lr`` says it learns."""
    torch.manual_seed(0)
    estimator = _make(make, family)
    f = lambda z: (z - 0.3).pow(2).flatten(2).sum(-1)  # noqa: E731
    estimator.eval()
    require(estimator(_logits(family, requires_grad=True), f, family).control_loss is None, "a control loss in eval mode")
    estimator.train()
    loss = estimator(_logits(family, requires_grad=True), f, family).control_loss
    if loss is None:
        require(estimator.control_lr is None, f"control_lr = {estimator.control_lr}, but no control loss in training")
        return "no learned parameters"
    require(isinstance(loss, torch.Tensor) and loss.shape == () and bool(torch.isfinite(loss)),
            f"control_loss must be a finite scalar tensor, got {loss!r}")  # fmt: skip
    params = [p for p in estimator.parameters() if p.requires_grad]
    reachable = loss.requires_grad and params
    grads = torch.autograd.grad(loss, params, allow_unused=True) if reachable else []
    require(any(g is not None for g in grads), "control_loss has no gradient in the estimator's parameters")
    return f"control loss {loss.item():.3g}, gradient in {sum(g is not None for g in grads)} parameter tensor(s)"


def check_probe(make: Factory, family: str) -> str:
    task = TASKS["toy_quadratic"](family)
    estimator = make(tuple(task.latent_shape))
    draws = draw_estimates(task, estimator, None, 64, chunk=32)
    require(draws.estimates.shape == (64, task.logits().numel()), f"probe estimates of shape {draws.estimates.shape}")
    require(bool(np.isfinite(draws.estimates).all()), "non-finite probe estimates")
    return f"{'vmap' if type(estimator).vmappable else 'loop'} path, 64 draws"


# ------------------------------------------------------------------- the exact-gradient test


def z_crit(tests: int, alpha: float = ALPHA) -> float:
    """Two-sided threshold for the max of ``tests`` |z| scores at family-wise level alpha."""
    return float(norm.isf(alpha / (2 * tests)))


def mean_z(estimates: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-coordinate z-scores of the sample mean of estimates [N, P] against target [P]."""
    x = np.asarray(estimates, dtype=np.float64)
    se = x.std(0, ddof=1) / np.sqrt(x.shape[0])
    gap = x.mean(0) - np.asarray(target, dtype=np.float64).reshape(-1)
    # a coordinate every draw agrees on to rounding (a VAE weight on an always-blank pixel; every
    # coordinate of exact, and of indecater on a separable f, whose draws differ in the last bits)
    # has an se of rounding, not of noise: its z is 0 if the draws equal the target to rounding,
    # else infinite (a certain failure)
    rounding = 1e-6 * (1 + np.abs(x).max(0))
    exact = np.abs(gap) <= rounding
    z = np.divide(gap, se, out=np.where(exact, 0.0, np.inf), where=se > 0)
    return np.where(np.ptp(x, 0) <= rounding, np.where(exact, 0.0, np.inf), z)


def exact_gradient(task: Task) -> np.ndarray:
    """[P] the task's exact gradient of its estimand, flattened in estimand() order."""
    grads = task.exact_gradient(task.probe_batch())
    require(grads is not None, f"task {task.label()!r} has no exact gradient")
    return torch.cat([grads[n].reshape(-1) for n in task.estimand()]).detach().cpu().numpy()


def check_unbiased(task: Task, estimator: Estimator, samples: int, seed: int = 0, vectorize: bool = True) -> float:
    """max |z| of ``samples`` probe draws against the exact gradient; a ConformanceError (with
    ``z``) above the Bonferroni threshold at family-wise false alarm ALPHA."""
    torch.manual_seed(seed)
    x = draw_estimates(task, estimator, task.probe_batch(), samples, chunk=min(samples, 5000), vectorize=vectorize).estimates
    z = np.abs(mean_z(x, exact_gradient(task)))
    worst, threshold = float(z.max()), z_crit(z.size)
    if not worst < threshold:
        raise ConformanceError(f"max |z| = {worst:.2f} vs threshold {threshold:.2f} (N={samples}, P={z.size}, "
                               f"false alarm {ALPHA:g})", worst)  # fmt: skip
    return worst


def small_sequence_task() -> Sequence:
    """27 sequences (K = 3, L = 3) of a seeded GRU policy: exact gradient by enumeration, fast."""
    return Sequence(vocab=3, length=3, hidden=4, init_scale=1.0, policy="gru")


def check_on_sequences(make: Factory, samples: int) -> str:
    """Finite estimates through the probe on the small sequence task that reach the policy;
    the z-test against the exact gradient where the estimator says it is unbiased."""
    task = small_sequence_task()
    estimator = make(tuple(task.latent_shape))
    if estimator.unbiased:
        worst = check_unbiased(task, estimator, samples)
        return f"max |z| = {worst:.2f} vs threshold {z_crit(dims(task)):.2f} (N={samples}, false alarm {ALPHA:g})"
    torch.manual_seed(0)
    x = draw_estimates(task, estimator, None, 200, chunk=200).estimates
    require(np.isfinite(x).all(), "non-finite estimates on the sequence task")
    require(np.abs(x).max(0).max() > 0, "every estimate is zero: nothing reaches the policy")
    return f"200 finite estimates, {int((np.abs(x).max(0) > 0).sum())} of {x.shape[1]} coordinates reached"


def _unbiased(make: Factory, family: str, task_name: str, samples: int) -> str:
    task = TASKS[task_name](family)
    worst = check_unbiased(task, make(tuple(task.latent_shape)), samples)
    return f"max |z| = {worst:.2f} vs threshold {z_crit(task.logits().numel()):.2f} (N={samples}, false alarm {ALPHA:g})"


# ------------------------------------------------------------------------------ the command


@dataclass
class Check:
    check: str
    family: str
    passed: bool
    evidence: str


def contract_checks(family: str) -> dict[str, Callable[[Factory], str]]:
    """Every contract check for ``family``, by name (what tests/test_contract.py parametrizes)."""
    checks: dict[str, Callable[[Factory], str]] = {
        f"shapes and gradients, {str(d).removeprefix('torch.')}": lambda m, d=d: check_gradients(m, family, d)
        for d in (torch.float32, torch.float64)
    }
    checks["finite at extreme logits"] = lambda m: check_finite_at_extreme_logits(m, family)
    checks["value is f at hard samples"] = lambda m: check_value_at_hard_samples(m, family)
    for device in DEVICES:
        if device == "cpu" or torch.cuda.is_available():
            checks[f"estimate on {device}"] = lambda m, device=device: check_device(m, family, device)
    checks["unbatched logits"] = lambda m: check_unbatched(m, family)
    checks["rejects bad input"] = lambda m: check_rejects_bad_input(m, family)
    checks["temperature setter"] = lambda m: check_temperature(m, family)
    checks["control loss"] = lambda m: check_control_loss(m, family)
    checks["gradient probe"] = lambda m: check_probe(m, family)
    return checks


def _run(name: str, family: str, body: Callable[[], str]) -> Check:
    """One check: passed with body's evidence, or failed with the exception's last line."""
    try:
        return Check(name, family, True, body())
    except Exception as error:  # a conformance failure is a result, not a crash
        last = traceback.format_exception_only(type(error), error)[-1].strip()
        return Check(name, family, False, last)


def run_checks(cls: type, make: Factory, samples: int = 20_000) -> list[Check]:
    """Every check on the estimator class ``cls`` built by ``make``."""
    checks = [Check("is an estimators.Estimator", "", isinstance(cls, type) and issubclass(cls, Estimator), cls.__qualname__)]
    families = sorted(getattr(cls, "families", ()))
    checks.append(Check("declares its families", "", bool(families) and set(families) <= set(ALL_FAMILIES), ", ".join(families)))
    if not checks[0].passed:
        return checks
    for family in (f for f in families if f in FAMILIES):
        checks += [_run(name, family, lambda c=check: c(make)) for name, check in contract_checks(family).items()]
        if cls.unbiased:
            for task_name in TASKS:
                checks.append(_run(f"unbiased on {task_name}", family, lambda t=task_name: _unbiased(make, family, t, samples)))
    if SEQUENCE in families:
        checks.append(_run("on the sequence task", SEQUENCE, lambda: check_on_sequences(make, samples)))
    return checks


def load(target: str) -> tuple[type, Factory]:
    """(class, factory) of ``module:ClassName`` (its defaults) or of a yaml file with a
    _target_ (its knobs; ${temperature} at 0.5). Estimators with a temperature start at 0.5."""
    if target.endswith((".yaml", ".yml")):
        node = OmegaConf.merge({"temperature": 0.5}, {"estimator": OmegaConf.load(target)}).estimator
        cls = get_class(node._target_)
        return cls, lambda shape: instantiate(node, **construction(cls, shape))
    module, _, name = target.partition(":")
    if not name:
        raise ValueError(f"check target must be module:ClassName or a .yaml file, got {target!r}")
    sys.path.insert(0, str(Path.cwd()))
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Estimator)):
        raise ValueError(f"{target} is not a subclass of estimators.Estimator")
    knobs = {"temperature": 0.5} if "temperature" in inspect.signature(cls).parameters else {}
    return cls, factory(cls, **knobs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="discograd check", description="Run the conformance kit on an estimator.")
    parser.add_argument("target", help="module:ClassName, or a yaml file with a _target_")
    parser.add_argument("--samples", type=int, default=20_000, help="draws per exact-gradient z-test")
    args = parser.parse_args(argv)
    try:
        cls, make = load(args.target)
        make(LOGIT_SHAPES[sorted(cls.families)[0]][1:])  # it builds
    except Exception as error:
        print(f"discograd check: error: cannot load {args.target}: {error}", file=sys.stderr)
        return 2
    checks = run_checks(cls, make, args.samples)
    table = pd.DataFrame([vars(c) for c in checks]).assign(passed=lambda d: d["passed"].map({True: "pass", False: "FAIL"}))
    print(f"{args.target} ({'unbiased' if cls.unbiased else 'biased'}, {cls.label()})")
    print(table.to_string(index=False, justify="left"))
    failed = sum(not c.passed for c in checks)
    print(f"\n{len(checks) - failed} of {len(checks)} checks passed")
    return 0 if failed == 0 else 1

