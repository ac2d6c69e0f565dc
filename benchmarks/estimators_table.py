r"""docs/estimators.md: one table of every registered estimator, generated, not typed.

For each estimator: the families it supports, whether it is unbiased, its evaluations of f
per estimate, its learned parameters, its paper (the first reference of its module
docstring), and its measured bias norm and variance (95% CIs) from ``--samples`` probe draws
at the default toy_quadratic (bernoulli, D=1, t=0.45, theta=0: REBAR's toy) and the default
mrf (3 x 3 ferromagnetic Ising, categorical K=2), each in the other family (K = 2) for an
estimator that lacks the default one (marked), at temperature ``--temperature`` where it
has one, against the exact gradient. Zero-width intervals are exact estimators (or, for
``exact``, float32 rounding read as bias).

Usage (from the repository root)::

    .venv/bin/python benchmarks/estimators_table.py      # writes docs/estimators.md
"""
from __future__ import annotations

import argparse
import datetime
import re
import shlex
import sys
from pathlib import Path

import torch

from analysis.statistics import gradient_statistics
from primitives.io import write_atomic
from discograd.probe import draw_estimates
from estimators import ESTIMATORS
from estimators.registry import create
from tasks.mrf import MRF
from tasks.toy_quadratic import ToyQuadratic

TASKS = {"toy_quadratic": ToyQuadratic, "mrf": MRF}


def paper(cls: type) -> str:
    """The first numbered reference of the estimator's module docstring, on one line."""
    doc = sys.modules[cls.__module__].__doc__ or ""
    references = doc.split("References:", 1)[-1]
    first = re.split(r"\n\s*\[2\]|\n\s*\n", references.strip(), maxsplit=1)[0]
    return re.sub(r"^\[1\]\s*", "", " ".join(first.split()))


def measure(name: str, task_name: str, samples: int, temperature: float) -> str:
    task, families = TASKS[task_name](), ESTIMATORS[name].families
    note = ""
    if task.family not in families:  # the same task in the family the estimator has (K = 2)
        (family,) = families
        task, note = TASKS[task_name](family=family), f" ({family})"
    estimator = create(name, temperature, latent_shape=task.latent_shape)
    torch.manual_seed(0)
    try:
        draws = draw_estimates(task, estimator, None, samples, chunk=1000)
    except ValueError as error:  # e.g. a latent space too large for `exact`
        return f"n/a ({error})"
    reference = task.exact_gradient()["logits"].reshape(-1).detach().numpy()
    s = gradient_statistics(draws.estimates, reference, None, draws.evaluations, draws.seconds_per_estimate)
    return (f"{s['bias_norm']:.3g} [{s['bias_norm_lo']:.2g}, {s['bias_norm_hi']:.2g}] / "
            f"{s['variance']:.3g} [{s['variance_lo']:.3g}, {s['variance_hi']:.3g}]{note}")


def evaluations(name: str, temperature: float) -> int:
    task = ToyQuadratic()
    families = ESTIMATORS[name].families
    family = task.family if task.family in families else sorted(families)[0]
    logits = torch.zeros((2, 3) if family == "bernoulli" else (2, 3, 4))
    estimator = create(name, temperature, latent_shape=logits.shape[1:])
    return estimator(logits, lambda z: z.flatten(2).sum(-1), family).evaluations


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--output", type=Path, default=Path("docs/estimators.md"))
    args = parser.parse_args(argv)
    lines = [
        "# Estimators",
        "",
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        f"- command: `{shlex.join(['python', *sys.argv])}`; date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "",
        "| estimator | families | unbiased | evaluations of f | learned parameters | paper | toy_quadratic: bias norm / variance | mrf: bias norm / variance |",
        "|---|---|---|---:|---:|---|---|---|",
    ]
    for name in sorted(ESTIMATORS):
        # learned parameters at the toy's latent (RELAX's network grows with it)
        cls, estimator = ESTIMATORS[name], create(name, args.temperature, latent_shape=TASKS["toy_quadratic"]().latent_shape)
        learned = sum(p.numel() for p in estimator.parameters())
        cells = [name, ", ".join(sorted(cls.families)), "yes" if cls.unbiased else "no", str(evaluations(name, args.temperature)),
                 str(learned), paper(cls)] + [measure(name, t, args.samples, args.temperature) for t in TASKS]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    write_atomic(args.output, "\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
