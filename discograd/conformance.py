r"""``discograd check TARGET``: the conformance kit for an estimator that lives anywhere.

TARGET is ``module:ClassName`` (importable from the current folder or the environment) or a
yaml file with a ``_target_`` (and knobs; ``${temperature}`` resolves to 0.5). The kit runs,
on the estimator and every family it declares:

- the contract (estimators/base.py): an Estimator subclass; a scalar surrogate and value,
  an integer count of evaluations; gradients of the logits' shape and dtype (float32 and
  float64), for a batch of logits and for unbatched ones; f of the wrong shape rejected;
  the gradient probe (vmap path, or the loop path for ``vmappable = False``) drawing finite
  estimates;
- if the class says ``unbiased = True``: the exact-gradient z-test on toy_quadratic and on
  the 2 x 3 MRF: N draws through the probe, every coordinate's |mean - exact| / se below
  the Bonferroni threshold at family-wise false alarm 1e-4 (the tests' own policy).

It prints one row per check with its evidence and exits 0 only if every check passed.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy.stats import norm

from discograd.probe import draw_estimates
from estimators import Estimator
from primitives.families import FAMILIES
from tasks.mrf import MRF
from tasks.toy_quadratic import ToyQuadratic

ALPHA = 1e-4
LOGIT_SHAPES = {"bernoulli": (4, 3), "categorical": (4, 3, 5)}  # [B, D] and [B, D, K]
# tasks with exact gradients of order 1 in every coordinate (as tests/test_unbiased.py)
TASKS: dict[str, Callable] = {
    "toy_quadratic": lambda family: ToyQuadratic(family=family, dims=3, classes=3, target=0.2,
                                                 init_logit=[-1.0, 0.5, 1.5] if family == "bernoulli" else 0.5),
    "mrf": lambda family: MRF(height=2, width=3, family=family, coupling="spin_glass", init_logit=0.5),
}  # fmt: skip


@dataclass
class Check:
    check: str
    family: str
    passed: bool
    evidence: str


def load(target: str) -> Estimator:
    """The estimator named by ``module:ClassName`` or by a yaml file with a _target_."""
    if target.endswith((".yaml", ".yml")):
        node = OmegaConf.merge({"temperature": 0.5}, {"estimator": OmegaConf.load(target)})
        return instantiate(node.estimator)
    module, _, name = target.partition(":")
    if not name:
        raise ValueError(f"check target must be module:ClassName or a .yaml file, got {target!r}")
    sys.path.insert(0, str(Path.cwd()))
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Estimator)):
        raise ValueError(f"{target} is not a subclass of estimators.Estimator")
    estimator = cls()
    if estimator.temperature is not None:
        estimator.set_temperature(0.5)
    return estimator


def _run(name: str, family: str, body: Callable[[], str]) -> Check:
    """One check: passed with body's evidence, or failed with the exception's last line."""
    try:
        return Check(name, family, True, body())
    except Exception as error:  # a conformance failure is a result, not a crash
        last = traceback.format_exception_only(type(error), error)[-1].strip()
        return Check(name, family, False, last)


def _gradients(estimator: Estimator, family: str, dtype: torch.dtype) -> str:
    torch.manual_seed(0)
    logits = torch.randn(LOGIT_SHAPES[family], dtype=dtype, requires_grad=True)
    weight = torch.randn(LOGIT_SHAPES[family][1:], dtype=dtype, requires_grad=True)
    estimate = estimator(logits, lambda z: (z * weight).flatten(2).sum(-1).pow(2), family)
    assert estimate.surrogate.shape == () and estimate.value.shape == (), "surrogate and value must be scalars"
    assert not estimate.value.requires_grad, "value must be detached"
    assert isinstance(estimate.evaluations, int) and estimate.evaluations >= 1, "evaluations must be an int >= 1"
    estimate.surrogate.backward()
    for what, tensor in (("logits", logits), ("a parameter of f", weight)):
        assert tensor.grad is not None, f"no gradient for {what}"
        assert tensor.grad.shape == tensor.shape and tensor.grad.dtype == dtype, f"gradient of {what}: wrong shape or dtype"
        assert torch.isfinite(tensor.grad).all(), f"gradient of {what} is not finite"
    return f"logits {tuple(logits.shape)} {str(dtype).removeprefix('torch.')}, {estimate.evaluations} evaluation(s)"


def _unbatched(estimator: Estimator, family: str) -> str:
    logits = torch.zeros(LOGIT_SHAPES[family][1:], requires_grad=True)
    estimator(logits, lambda z: z.flatten(1).sum(-1), family).surrogate.backward()
    assert logits.grad is not None and logits.grad.shape == logits.shape, "gradient of unbatched logits: wrong shape"
    return f"logits {tuple(logits.shape)}"


def _rejects_wrong_f(estimator: Estimator, family: str) -> str:
    try:
        estimator(torch.zeros(LOGIT_SHAPES[family]), lambda z: z.sum(), family)
    except ValueError:
        return "ValueError for f -> scalar"
    raise AssertionError("f returning a scalar instead of [S, B] was accepted")


def _probe(estimator: Estimator, family: str) -> str:
    task = TASKS["toy_quadratic"](family)
    draws = draw_estimates(task, estimator, None, 64, chunk=32)
    assert draws.estimates.shape == (64, task.logits().numel()), f"probe estimates of shape {draws.estimates.shape}"
    assert np.isfinite(draws.estimates).all(), "non-finite probe estimates"
    return f"{'vmap' if type(estimator).vmappable else 'loop'} path, 64 draws"


def _unbiased(estimator: Estimator, family: str, task_name: str, samples: int) -> str:
    task = TASKS[task_name](family)
    torch.manual_seed(0)
    x = draw_estimates(task, estimator, None, samples, chunk=min(samples, 5000)).estimates.astype(np.float64)
    exact = task.exact_gradient()["logits"].reshape(-1).detach().numpy().astype(np.float64)
    se = x.std(0, ddof=1) / np.sqrt(samples)
    z = np.abs(x.mean(0) - exact) / np.where(se > 0, se, np.inf)
    threshold = float(norm.isf(ALPHA / (2 * z.size)))
    evidence = f"max |z| = {z.max():.2f} vs {threshold:.2f} (N={samples}, P={z.size}, false alarm {ALPHA:g})"
    assert z.max() < threshold, evidence
    return evidence


def run_checks(estimator: Estimator, samples: int = 20_000) -> list[Check]:
    cls = type(estimator)
    checks = [Check("is an estimators.Estimator", "", isinstance(estimator, Estimator), cls.__qualname__)]
    families = sorted(getattr(cls, "families", ()))
    checks.append(Check("declares its families", "", bool(families) and set(families) <= set(FAMILIES), ", ".join(families)))
    for family in families:
        for dtype in (torch.float32, torch.float64):
            checks.append(_run(f"shapes and gradients, {str(dtype).removeprefix('torch.')}", family,
                               lambda: _gradients(estimator, family, dtype)))  # fmt: skip
        checks.append(_run("unbatched logits", family, lambda: _unbatched(estimator, family)))
        checks.append(_run("rejects f of the wrong shape", family, lambda: _rejects_wrong_f(estimator, family)))
        checks.append(_run("gradient probe", family, lambda: _probe(estimator, family)))
        if cls.unbiased:
            for task_name in TASKS:
                checks.append(_run(f"unbiased on {task_name}", family, lambda: _unbiased(estimator, family, task_name, samples)))
    return checks


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="discograd check", description="Run the conformance kit on an estimator.")
    parser.add_argument("target", help="module:ClassName, or a yaml file with a _target_")
    parser.add_argument("--samples", type=int, default=20_000, help="draws per exact-gradient z-test")
    args = parser.parse_args(argv)
    try:
        estimator = load(args.target)
    except Exception as error:
        print(f"discograd check: error: cannot load {args.target}: {error}", file=sys.stderr)
        return 2
    checks = run_checks(estimator, args.samples)
    table = pd.DataFrame([vars(c) for c in checks]).assign(passed=lambda d: d["passed"].map({True: "pass", False: "FAIL"}))
    print(f"{args.target} ({'unbiased' if type(estimator).unbiased else 'biased'}, {type(estimator).label()})")
    print(table.to_string(index=False, justify="left"))
    failed = sum(not c.passed for c in checks)
    print(f"\n{len(checks) - failed} of {len(checks)} checks passed")
    return 0 if failed == 0 else 1
