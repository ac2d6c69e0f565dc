r"""The nonlinear binary VAE: the cost of our training step against a minimal hand-written
PyTorch loop, and the probe's vectorized path against its loop path.

1. One training step (batch 50, the DisARM nonlinear model on 784 pixels) with each
   estimator, through ``discograd.run.train_step`` (the task's batch, the estimator module,
   the divergence checks, both optimizers), against a hand-written step of the same model and
   estimator written inline below (no task, no estimator classes, no checks; the same dynamic
   binarization of each batch), timed in the same process and interleaved. Target: at most
   10% overhead.
2. 1000 encoder-gradient estimates on the probe batch, vectorized vs loop. Target: >= 5x.

Usage (from the repository root)::

    .venv/bin/python benchmarks/vae_step.py          # writes docs/performance-vae.md
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from discograd.io import write_atomic
from discograd.probe import draw_estimates
from discograd.run import train_step
from estimators.registry import create
from tasks.binary_vae import BinaryVAE

TEMPERATURE = 0.5
HAND_WRITTEN = ("reinforce", "st", "sigmoid_st", "gumbel_softmax", "st_gumbel_softmax")  # written inline below
DATA = {"name": "fashion_mnist", "binarize": "dynamic", "root": None, "download": False}


def hand_written_step(task: BinaryVAE, name: str, batches: list[torch.Tensor], optimizers: list) -> Callable[[], None]:
    """The same model and estimator as a plain loop: one forward, backward and optimizer step."""
    modules, state = task.parameters, {"i": 0}

    def step() -> None:
        x = torch.bernoulli(batches[state["i"] % len(batches)])  # dynamic binarization, as the task does
        state["i"] += 1
        logits = modules.encoder(x - modules.input_mean)  # [B, D]
        if name == "gumbel_softmax" or name == "st_gumbel_softmax":
            u = torch.rand_like(logits).clamp(1e-7, 1 - 1e-7)
            y = torch.sigmoid((logits + u.log() - (-u).log1p()) / TEMPERATURE)
            z = y if name == "gumbel_softmax" else (y > 0.5).float() + y - y.detach()
        else:
            b = torch.bernoulli(torch.sigmoid(logits.detach()))
            proxy = {"st": logits, "sigmoid_st": torch.sigmoid(logits / TEMPERATURE), "reinforce": None}[name]
            z = b if proxy is None else b + proxy - proxy.detach()
        a = modules.prior
        f = (
            F.binary_cross_entropy_with_logits(modules.decoder(z), x, reduction="none").sum(-1)
            - (z * F.logsigmoid(a) + (1 - z) * F.logsigmoid(-a)).sum(-1)
            + (z * F.logsigmoid(logits) + (1 - z) * F.logsigmoid(-logits)).sum(-1)
        )  # [B]
        if name == "reinforce":
            log_q = (z * F.logsigmoid(logits) + (1 - z) * F.logsigmoid(-logits)).sum(-1)
            f = f + log_q * f.detach()
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        f.mean().backward()
        for optimizer in optimizers:
            optimizer.step()

    return step


def timed(calls: dict[str, Callable[[], object]], repeats: int, inner: int) -> dict[str, float]:
    """Median seconds per call over ``repeats`` rounds of ``inner`` calls, round robin."""
    for fn in calls.values():
        for _ in range(inner):
            fn()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(repeats):
        for key, fn in calls.items():
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            times[key].append((time.perf_counter() - start) / inner)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--inner", type=int, default=20, help="steps per timing")
    parser.add_argument("--probe-samples", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=Path("docs/performance-vae.md"))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    lines = [
        "# The nonlinear binary VAE: step overhead and probe speed",
        "",
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; load average at start {os.getloadavg()[0]:.2f}",
        "",
        "| estimator | ours, ms/step | hand-written, ms/step | overhead | <= 10% |",
        "|---|---:|---:|---:|:---:|",
    ]
    for name in HAND_WRITTEN:
        ours, theirs = BinaryVAE(DATA, encoder="nonlinear"), BinaryVAE(DATA, encoder="nonlinear")
        theirs.parameters.load_state_dict(ours.parameters.state_dict())
        estimator, our_optimizers = create(name, TEMPERATURE), ours.optimizers()
        grey = theirs.splits["train"].images
        batches = [grey[i * theirs.batch_size : (i + 1) * theirs.batch_size] for i in range(args.inner)]
        our_step = lambda: train_step(0, ours, estimator, our_optimizers)  # noqa: E731
        times = timed({"ours": our_step, "theirs": hand_written_step(theirs, name, batches, theirs.optimizers())}, args.repeats, args.inner)
        overhead = times["ours"] / times["theirs"] - 1
        lines.append(f"| {name} | {times['ours'] * 1e3:.2f} | {times['theirs'] * 1e3:.2f} | {overhead:+.1%} | {'yes' if overhead <= 0.10 else 'NO'} |")
        print(lines[-1], flush=True)
    lines += ["", f"## Probe: {args.probe_samples} encoder-gradient estimates on the probe batch (50 points)", "",
              "| estimator | vectorized, s | loop, s | vectorized / loop | >= 5x |", "|---|---:|---:|---:|:---:|"]  # fmt: skip
    task = BinaryVAE(DATA, encoder="nonlinear")
    batch = task.probe_batch()
    for name in HAND_WRITTEN:
        estimator = create(name, TEMPERATURE)
        times = timed({
            "vec": lambda: draw_estimates(task, estimator, batch, args.probe_samples, 1000, True),
            "loop": lambda: draw_estimates(task, estimator, batch, args.probe_samples, 1000, False),
        }, repeats=1, inner=1)  # fmt: skip
        ratio = times["loop"] / times["vec"]
        lines.append(f"| {name} | {times['vec']:.2f} | {times['loop']:.2f} | {ratio:.1f}x | {'yes' if ratio >= 5 else 'NO'} |")
        print(lines[-1], flush=True)
    page = "\n".join(lines) + "\n"
    write_atomic(args.output, page)  # never a half-written page
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
