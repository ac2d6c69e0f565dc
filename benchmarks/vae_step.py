r"""The nonlinear binary VAE: the cost of our training step against a minimal hand-written
PyTorch loop, and the probe's vectorized path against its loop path.

1. One training step (batch 50, the DisARM nonlinear model on 784 pixels) with each
   estimator, through ``discograd.run.train_step`` (the task's batch, the estimator module,
   the divergence checks, both optimizers), against a hand-written step of the same model and
   estimator written inline below (no task, no estimator classes, no checks; the same dynamic
   binarization of each batch and the task's own optimizers, i.e. fused Adam). The two run
   back to back in each of ``--rounds`` rounds; the overhead is the median over rounds of
   the paired ratio, with a distribution-free 95% interval (order statistics of the
   rounds' ratios), since this shared machine's step times drift by more than the target
   between rounds. Target: at most 10% overhead. A third column is the hand-written step
   with torch.optim.Adam's default (per-tensor) implementation, as most loops are written.
2. 1000 encoder-gradient estimates on the probe batch, vectorized vs loop, and the floating
   point work of each (counted by torch.utils.flop_counter per estimate) against the
   machine's matrix-multiply rate (a 2048 x 2048 matmul): the work bounds the ratio any
   vectorization can reach. Target: >= 5x.

Usage (from the repository root)::

    .venv/bin/python benchmarks/vae_step.py          # writes docs/performance-vae.md
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import binom
from torch.utils.flop_counter import FlopCounterMode

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


def paired(ours: Callable[[], object], theirs: Callable[[], object], rounds: int, inner: int) -> np.ndarray:
    """Per-round ratios [rounds] of seconds per call, ours / theirs, the two timed back to back
    (order alternating) after ``inner`` untimed warm-up calls each."""
    for fn in (ours, theirs):
        for _ in range(inner):
            fn()
    ratios = []
    for r in range(rounds):
        seconds = {}
        for key, fn in ((("ours", ours), ("theirs", theirs)) if r % 2 == 0 else (("theirs", theirs), ("ours", ours))):
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            seconds[key] = time.perf_counter() - start
        ratios.append(seconds["ours"] / seconds["theirs"])
    return np.asarray(ratios)


def median_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """The median and a distribution-free interval for it: order statistics k and n + 1 - k,
    with k the largest such that P(Binomial(n, 1/2) < k) <= (1 - level) / 2."""
    ordered, n = np.sort(values), len(values)
    k = max(1, int(binom.ppf((1 - level) / 2, n, 0.5)))
    return float(np.median(values)), float(ordered[k - 1]), float(ordered[n - k])


def seconds_per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def matmul_rate(size: int = 2048) -> float:
    """FLOP/s of a size x size float32 matmul: the machine's practical peak for this work."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    return 2 * size**3 / min(seconds_per_call(lambda: a @ b, 5) for _ in range(3))


def flops_per_estimate(task: BinaryVAE, estimator: torch.nn.Module, batch: torch.Tensor, vectorize: bool, samples: int = 64) -> float:
    """Floating point operations per estimate, counted by torch.utils.flop_counter (matmuls)."""
    with FlopCounterMode(display=False) as counter:
        draw_estimates(task, estimator, batch, samples, samples, vectorize)
    return counter.get_total_flops() / samples


def verdict(low: float, high: float, target: float) -> str:
    return "yes" if high <= target else "NO" if low > target else "unclear"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=41, help="paired timing rounds per estimator")
    parser.add_argument("--inner", type=int, default=10, help="steps per timing")
    parser.add_argument("--probe-samples", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=Path("docs/performance-vae.md"))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    lines = [
        "# The nonlinear binary VAE: step overhead and probe speed",
        "",
        *__doc__.split("\n\n")[1].splitlines(),
        "",
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; load average at start {os.getloadavg()[0]:.2f}",
        "",
        f"## Training step ({args.rounds} paired rounds of {args.inner} steps)",
        "",
        "| estimator | ours, ms/step | hand-written, ms/step | overhead, median [95% CI] | <= 10% | hand-written with default Adam, ms/step |",
        "|---|---:|---:|---:|:---:|---:|",
    ]
    for name in HAND_WRITTEN:
        ours, theirs, default = (BinaryVAE(DATA, encoder="nonlinear") for _ in range(3))
        for other in (theirs, default):
            other.parameters.load_state_dict(ours.parameters.state_dict())
        estimator, our_optimizers = create(name, TEMPERATURE), ours.optimizers()
        grey = theirs.splits["train"].images
        batches = [grey[i * theirs.batch_size : (i + 1) * theirs.batch_size] for i in range(args.inner)]
        our_step = lambda: train_step(0, ours, estimator, our_optimizers)  # noqa: E731
        their_step = hand_written_step(theirs, name, batches, theirs.optimizers())
        modules = default.parameters
        plain = [torch.optim.Adam([*modules.encoder.parameters(), *modules.decoder.parameters()], lr=default.lr),
                 torch.optim.SGD([modules.prior], lr=default.prior_lr)]  # fmt: skip
        default_step = hand_written_step(default, name, batches, plain)
        ratios = paired(our_step, their_step, args.rounds, args.inner)
        median, low, high = (r - 1 for r in median_interval(ratios))
        ms = {k: 1e3 * seconds_per_call(fn, 5 * args.inner) for k, fn in (("ours", our_step), ("theirs", their_step), ("default", default_step))}
        lines.append(f"| {name} | {ms['ours']:.2f} | {ms['theirs']:.2f} | {median:+.1%} [{low:+.1%}, {high:+.1%}] "
                     f"| {verdict(low, high, 0.10)} | {ms['default']:.2f} |")  # fmt: skip
        print(lines[-1], flush=True)
    peak = matmul_rate()
    task = BinaryVAE(DATA, encoder="nonlinear")
    batch = task.probe_batch()
    lines += [
        "",
        f"## Probe: {args.probe_samples} encoder-gradient estimates on the probe batch (50 points)",
        "",
        f"Vectorized in chunks of {task.probe_chunk} draws (the task's probe_chunk). GFLOP: per 1000 estimates, counted; "
        f"GFLOP/s: the rate each path reached; a 2048 x 2048 matmul runs at {peak / 1e9:.0f} GFLOP/s here. "
        "Bound: the ratio the vectorized path would reach if it ran at that matmul rate (loop seconds / "
        "(vectorized GFLOP / matmul rate)).",
        "",
        "| estimator | vectorized, s | loop, s | vectorized / loop | >= 5x | GFLOP vectorized / loop | GFLOP/s vectorized / loop | bound at matmul rate |",
        "|---|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    for name in HAND_WRITTEN:
        estimator = create(name, TEMPERATURE)
        draw_estimates(task, estimator, batch, 2 * task.probe_chunk, 1000, True)  # warm-up
        vec = seconds_per_call(lambda: draw_estimates(task, estimator, batch, args.probe_samples, 1000, True), 1)
        loop = seconds_per_call(lambda: draw_estimates(task, estimator, batch, args.probe_samples, 1000, False), 1)
        flops = {v: flops_per_estimate(task, estimator, batch, v) * args.probe_samples for v in (True, False)}
        ratio = loop / vec
        lines.append(
            f"| {name} | {vec:.2f} | {loop:.2f} | {ratio:.1f}x | {'yes' if ratio >= 5 else 'NO'} "
            f"| {flops[True] / 1e9:.0f} / {flops[False] / 1e9:.0f} | {flops[True] / vec / 1e9:.0f} / {flops[False] / loop / 1e9:.0f} "
            f"| {loop / (flops[True] / peak):.1f}x |"
        )
        print(lines[-1], flush=True)
    page = "\n".join(lines) + "\n"
    write_atomic(args.output, page)  # never a half-written page
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
