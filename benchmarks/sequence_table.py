r"""docs/sequence.md: every estimator that acts on sequences, on the sequence task, at one equal budget.

The task (tasks/sequence.py) at its defaults (K = 4 tokens, L = 5, so 1024 sequences, the
quadratic objective with its bigram coupling), with each of its two policies, tabular and
gru, at two points: the initial policy, and the policy after ``--train-steps`` Adam steps on
the exact gradient (the task's learning rate; the same trained point for every estimator, so
the rows compare estimators, not training runs), where the policy is more peaked. Each
estimator spends an equal budget of ``--budget`` evaluations of f per estimate (k sequences:
an estimator that spends e averages floor(budget / e) independent estimates,
estimators/budget.py), ``--samples`` probe draws against the exact gradient by enumeration,
with bias norm, variance, MSE and work-normalized variance and their 95% CIs
(analysis/statistics.py, docs/calibration.md), sorted by MSE. Local estimators act per
token, their tokens fed back into the policy; reinforce (with the leave-one-out baseline
over the budget), grpo (group-normalized, biased by the group's standard deviation) and
unordered_set (k sequences by stochastic beam search) act on whole sequences. Temperature
``--temperature`` where an estimator has one.

Usage (from the repository root)::

    .venv/bin/python benchmarks/sequence_table.py      # writes docs/sequence.md
"""
from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from estimators import ESTIMATORS
from estimators_table import measure_on, section, write_page
from primitives.sequences import SEQUENCE
from tasks.sequence import Sequence


def trained(policy: str, steps: int) -> Sequence:
    """The task with its policy after ``steps`` Adam steps on the exact gradient."""
    task = Sequence(policy=policy)
    (optimizer,) = task.optimizers()
    for _ in range(steps):
        optimizer.zero_grad()
        for name, value in task.exact_gradient().items():
            task.parameters.get_parameter(name).grad = value
        optimizer.step()
    return task


def estimators(budget: int) -> dict[str, dict]:
    """name -> knobs: every estimator for sequences, the multi-sample ones at k = budget."""
    knobs = {"reinforce": {"baseline": "loo", "num_samples": budget}, "grpo": {"num_samples": budget},
             "unordered_set": {"num_samples": budget}}  # fmt: skip
    return {name: knobs.get(name, {}) for name in sorted(ESTIMATORS) if SEQUENCE in ESTIMATORS[name].families}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10000, help="probe draws per estimator, policy and point")
    parser.add_argument("--temperature", type=float, default=0.5, help="temperature of the estimators that have one")
    parser.add_argument("--budget", type=int, default=4, help="evaluations of f (sequences) per estimate, for every estimator")
    parser.add_argument("--train-steps", type=int, default=300, help="Adam steps on the exact gradient before the second point")
    parser.add_argument("--output", type=Path, default=Path("docs/sequence.md"))
    args = parser.parse_args(argv)
    if args.samples < 2 or args.budget < 2 or not args.temperature > 0 or args.train_steps < 1:
        parser.error(f"need --samples >= 2, --budget >= 2, --temperature > 0, --train-steps >= 1; got "
                     f"{args.samples}, {args.budget}, {args.temperature}, {args.train_steps}")  # fmt: skip
    start = time.perf_counter()
    lines = ["# Estimators on sequences", "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             f"- command: `{shlex.join(['python', 'benchmarks/sequence_table.py', *argv])}`; "
             f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; budget {args.budget} sequences, "
             f"{args.samples} draws, temperature {args.temperature:g}"]  # fmt: skip
    names = estimators(args.budget)
    for policy in ("tabular", "gru"):
        for point, task in (("initial policy", Sequence(policy=policy)), (f"after {args.train_steps} steps", trained(policy, args.train_steps))):
            metrics = task.evaluate()
            measured = ((n, measure_on(task, n, args.samples, args.temperature, args.budget, knobs=k))
                        for n, k in tqdm(names.items(), desc=f"{policy}, {point}"))  # fmt: skip
            lines += section(f"## {policy} policy, {point}: E[f] = {metrics['exact_objective']:.4g}, entropy "
                             f"{metrics['entropy']:.3g} nats", measured)  # fmt: skip
    write_page(lines, start, args.output)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
