r"""docs/estimators.md: every registered estimator, described and measured at one equal budget.

The first table describes each estimator: the families it supports, whether it is unbiased,
its evaluations of f per estimate, its learned parameters, its paper (the first reference of
its module docstring). Then one table per task: each estimator at an equal budget of
``--budget`` evaluations of f per estimate (estimators/budget.py: an estimator that spends e
per estimate averages floor(budget / e) independent estimates; one that spends more than the
budget spends what it must, and its row says so), ``--samples`` probe draws against the exact
gradient (the polynomial task: a tenth of them), with bias norm, variance and work-normalized
variance (variance x evaluations spent) and their 95% CIs (analysis/statistics.py;
docs/calibration.md), and MSE (bias norm^2 + variance, whose parts carry the CIs), sorted by MSE. Tasks:
the default toy_quadratic (bernoulli, D=1, t=0.45, theta=0: REBAR's toy), the polynomial
task (ReinMax's polynomial programming, D=128, t=0.45) at p = 1.5 and p = 3, and the default
mrf (3 x 3 ferromagnetic Ising, categorical K=2); an estimator that lacks the task's family
runs it in the other one (K = 2), marked. Temperature ``--temperature`` where an estimator
has one; learned parts at their initial values.

Usage (from the repository root)::

    .venv/bin/python benchmarks/estimators_table.py      # writes docs/estimators.md
"""
from __future__ import annotations

import argparse
import datetime
import math
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from tqdm.auto import tqdm

from analysis.statistics import gradient_statistics
from discograd.probe import draw_estimates, flatten
from estimators import ESTIMATORS
from estimators.budget import Budgeted
from estimators.registry import create
from primitives.families import FAMILIES
from primitives.io import write_atomic
from tasks.mrf import MRF
from tasks.polynomial import Polynomial
from tasks.toy_quadratic import ToyQuadratic

# task -> (its factory, the share of --samples it draws: the polynomial task's 64 x 128 latents
# per estimate make a draw 8000 times the toy's, and its variances rest on 256 coordinates)
TASKS: dict[str, tuple[Callable[..., Any], float]] = {
    "toy_quadratic": (ToyQuadratic, 1.0),
    "polynomial p=1.5": (lambda **kw: Polynomial(power=1.5, **kw), 0.1),
    "polynomial p=3": (lambda **kw: Polynomial(power=3.0, **kw), 0.1),
    "mrf": (MRF, 1.0),
}
DRAW_MEMORY = 2**26  # floats one chunk of draws may touch (configurations of f x latent size), for the chunk


def paper(cls: type) -> str:
    """The first numbered reference of the estimator's module docstring, on one line."""
    doc = sys.modules[cls.__module__].__doc__ or ""
    references = doc.split("References:", 1)[-1]
    first = re.split(r"\n\s*\[2\]|\n\s*\n", references.strip(), maxsplit=1)[0]
    return re.sub(r"^\[1\]\s*", "", " ".join(first.split()))


def ci(value: float, lo: float, hi: float) -> str:
    return f"{value:.3g} [{lo:.2g}, {hi:.2g}]"


def measure(name: str, task_name: str, samples: int, temperature: float, budget: int) -> dict[str, Any] | str:
    """The row of ``name`` on the task at the budget, or why it could not run."""
    build, share = TASKS[task_name]
    task, families, family_note = build(), ESTIMATORS[name].families, ""
    if task.family not in families:  # the same task in the latent family the estimator has (K = 2)
        (family,) = sorted(families & set(FAMILIES))
        task, family_note = build(family=family), f" ({family})"
    return measure_on(task, name, max(2, int(samples * share)), temperature, budget, family_note)


def measure_on(task: Any, name: str, samples: int, temperature: float, budget: int, note: str = "",
               knobs: dict[str, Any] | None = None) -> dict[str, Any] | str:  # fmt: skip
    """The row of ``name`` (at ``knobs``, else its defaults) on ``task`` (its probe batch and
    parameters as they are) at the budget, ``samples`` draws against the exact gradient, or why
    it could not run."""
    batch = task.probe_batch()
    try:  # an estimator that cannot run here (a latent space too large for `exact`) says why
        estimator = Budgeted(create(name, temperature, latent_shape=task.latent_shape, **(knobs or {})), budget)
        logits = task.logits(batch)
        per_draw = estimator.inner(logits, task.bind(batch, logits), task.family).evaluations
        size = logits.numel() if isinstance(logits, torch.Tensor) else math.prod(task.latent_shape)  # a policy: L K
        chunk = max(1, min(1000, DRAW_MEMORY // (size * max(budget, per_draw))))
        torch.manual_seed(0)
        draws = draw_estimates(task, estimator, batch, samples, chunk=chunk)
    except (ValueError, RuntimeError) as error:
        return f"n/a: {str(error).splitlines()[0][:120]}"
    reference = flatten(task.exact_gradient(batch), list(task.estimand()))
    s = gradient_statistics(draws.estimates, reference, None, draws.evaluations, draws.seconds_per_estimate)
    wnv = s["variance"] * draws.evaluations, s["variance_lo"] * draws.evaluations, s["variance_hi"] * draws.evaluations
    return {"estimator": name + note, "evaluations": draws.evaluations, "over": draws.evaluations > budget,
            "bias": ci(s["bias_norm"], s["bias_norm_lo"], s["bias_norm_hi"]),
            "variance": ci(s["variance"], s["variance_lo"], s["variance_hi"]), "mse": s["mse"], "wnv": ci(*wnv),
            "warning": s["warning"]}  # fmt: skip


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The markdown table of measured rows, sorted by MSE."""
    lines = ["| estimator | evaluations spent | bias norm | variance | MSE | work-normalized variance | warning |",
             "|---|---:|---|---|---:|---|---|"]  # fmt: skip
    return lines + [f"| {r['estimator']} | {r['evaluations']}{' (over budget)' if r['over'] else ''} | {r['bias']} | "
                    f"{r['variance']} | {r['mse']:.3g} | {r['wnv']} | {r['warning']} |"
                    for r in sorted(rows, key=lambda r: r["mse"])]  # fmt: skip


def section(heading: str, measured: Iterable[tuple[str, dict[str, Any] | str]]) -> list[str]:
    """A heading, the table of the (name, row) pairs measured, and those that could not run, why."""
    rows, skipped = [], []
    for name, row in measured:
        (skipped.append(f"{name}: {row}") if isinstance(row, str) else rows.append(row))
    return ["", heading, "", *table(rows)] + (["", "Not run: " + "; ".join(skipped)] if skipped else [])


def write_page(lines: list[str], start: float, output: Path) -> None:
    """The page with its run time, written atomically."""
    lines = lines + ["", f"This run: {(time.perf_counter() - start) / 60:.1f} min."]
    write_atomic(output, "\n".join(lines) + "\n")
    print(f"wrote {output}")


def evaluations(name: str, temperature: float) -> int:
    task = ToyQuadratic()
    families = ESTIMATORS[name].families
    family = task.family if task.family in families else sorted(families & set(FAMILIES))[0]
    logits = torch.zeros((2, 3) if family == "bernoulli" else (2, 3, 4))
    estimator = create(name, temperature, latent_shape=logits.shape[1:])
    return estimator(logits, lambda z: z.flatten(2).sum(-1), family).evaluations


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10000, help="probe draws per estimator and task")
    parser.add_argument("--temperature", type=float, default=0.5, help="temperature of the estimators that have one")
    parser.add_argument("--budget", type=int, default=4, help="evaluations of f per estimate, for every estimator")
    parser.add_argument("--output", type=Path, default=Path("docs/estimators.md"))
    args = parser.parse_args(argv)
    if args.samples < 2 or args.budget < 1 or not args.temperature > 0:
        parser.error(f"need --samples >= 2, --budget >= 1, --temperature > 0; got {args.samples}, {args.budget}, {args.temperature}")
    start = time.perf_counter()
    intro = __doc__.split("\n\n")[1].replace("\n", " ")
    lines = ["# Estimators", "", intro, "",
             f"- command: `{shlex.join(['python', 'benchmarks/estimators_table.py', *argv])}`; "
             f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; budget {args.budget} evaluations, "
             f"{args.samples} draws, temperature {args.temperature:g}", "",
             "| estimator | families | unbiased | evaluations of f | learned parameters | paper |", "|---|---|---|---:|---:|---|"]  # fmt: skip
    for name in sorted(ESTIMATORS):
        # learned parameters at the toy's latent (RELAX's network grows with it)
        cls, estimator = ESTIMATORS[name], create(name, args.temperature, latent_shape=ToyQuadratic().latent_shape)
        learned = sum(p.numel() for p in estimator.parameters())
        cells = [name, ", ".join(sorted(cls.families)), "yes" if cls.unbiased else "no",
                 str(evaluations(name, args.temperature)), str(learned), paper(cls)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    for task_name in TASKS:
        draws = max(2, int(args.samples * TASKS[task_name][1]))
        measured = ((n, measure(n, task_name, args.samples, args.temperature, args.budget))
                    for n in tqdm(sorted(ESTIMATORS), desc=task_name))  # fmt: skip
        lines += section(f"## {task_name}: equal budget of {args.budget} evaluations, {draws} draws", measured)
    write_page(lines, start, args.output)


if __name__ == "__main__":
    main()
