r"""The nonlinear binary VAE: the cost of our training step against a minimal hand-written
PyTorch loop, and the probe's vectorized path against its loop path.

1. One training step (batch 50, the DisARM nonlinear model on 784 pixels) with each
   estimator, through ``discograd.run.train_step`` (the task's batch, the estimator module,
   the divergence checks, both optimizers), against a hand-written step of the same model and
   estimator written inline in benchmarks/vae_step.py (no task, no estimator classes, no checks; batches drawn
   from a shuffled order and binarized afresh, as the task does; the task's formulas for f,
   the same sampling kernels and the task's optimizers, i.e. fused Adam). The two run
   back to back in each of ``--rounds`` rounds; the overhead is the median over rounds of
   the paired ratio, with a distribution-free 95% interval (order statistics of the
   rounds' ratios), since this shared machine's step times drift by more than the target
   between rounds. Target: at most 10% overhead. A third column is the hand-written step
   with torch.optim.Adam's default (per-tensor) implementation, as most loops are written.
2. 1000 encoder-gradient estimates on the probe batch, vectorized vs loop, with the
   floating point work of each path and where the vectorized path's time goes: the matrix
   multiplies every draw needs bound the ratio any vectorization can reach. Target: >= 5x.

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
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from primitives.io import write_atomic
from discograd.probe import draw_estimates
from discograd.run import train_step
from estimators.registry import create
from tasks.binary_vae import BinaryVAE

TEMPERATURE = 0.5
HAND_WRITTEN = ("reinforce", "st", "sigmoid_st", "gumbel_softmax", "st_gumbel_softmax")  # written inline below
DATA = {"name": "fashion_mnist", "binarize": "dynamic", "root": None, "download": False}


def hand_written_step(task: BinaryVAE, name: str, optimizers: list) -> Callable[[], None]:
    """The same model and estimator as a plain loop: one forward, backward and optimizer step."""
    modules, state = task.parameters, {"i": 0}
    images, batch_size = task.splits["train"].images, task.batch_size
    order = torch.randperm(len(images))[: len(images) // batch_size * batch_size]

    def step() -> None:
        start = state["i"] * batch_size % len(order)
        x = torch.bernoulli(images.index_select(0, order[start : start + batch_size]))  # shuffled, binarized afresh
        state["i"] += 1
        logits = modules.encoder(x - modules.input_mean)  # [B, D]
        if name == "gumbel_softmax" or name == "st_gumbel_softmax":
            u = torch.rand_like(logits).clamp(1e-7, 1 - 1e-7)
            y = torch.sigmoid((logits + u.log() - (-u).log1p()) / TEMPERATURE)
            z = y if name == "gumbel_softmax" else (y > 0.5).float() + y - y.detach()
        else:
            b = torch.bernoulli(torch.sigmoid(logits.detach()))
            if name == "reinforce":
                z = b
            else:
                proxy = logits if name == "st" else torch.sigmoid(logits / TEMPERATURE)
                z = b + proxy - proxy.detach()
        a, out = modules.prior, modules.decoder(z)
        log_q = -F.binary_cross_entropy_with_logits(logits, z, reduction="none").sum(-1)
        # the task's formulas, so that the ratio measures the framework and nothing else
        f = -(x * out - F.softplus(out)).sum(-1) - (z @ a + F.logsigmoid(-a).sum()) + log_q  # [B]
        if name == "reinforce":
            # log q evaluated a second time, as Reinforce does (f and its score term are separate calls)
            f = f + (-F.binary_cross_entropy_with_logits(logits, z, reduction="none").sum(-1)) * f.detach()
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        f.mean().backward()
        for optimizer in optimizers:
            optimizer.step()

    return step


def paired(ours: Callable[[], object], theirs: Callable[[], object], rounds: int, inner: int) -> dict[str, np.ndarray]:
    """Seconds per call [rounds] of each, the two timed back to back in every round (order
    alternating), after ``inner`` untimed warm-up calls each."""
    for fn in (ours, theirs):
        for _ in range(inner):
            fn()
    seconds: dict[str, list[float]] = {"ours": [], "theirs": []}
    for r in range(rounds):
        for key, fn in ((("ours", ours), ("theirs", theirs)) if r % 2 == 0 else (("theirs", theirs), ("ours", ours))):
            seconds[key].append(seconds_per_call(fn, inner))
    return {k: np.asarray(v) for k, v in seconds.items()}


def median_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """The median, a distribution-free interval for it and that interval's coverage: order
    statistics k and n + 1 - k, with k the largest such that P(Binomial(n, 1/2) < k) <= (1 - level) / 2
    (k = 1, the range, for fewer than 6 values: coverage below ``level``)."""
    ordered, n = np.sort(values), len(values)
    k = max(1, int(binom.ppf((1 - level) / 2, n, 0.5)))
    coverage = 1 - 2 * float(binom.cdf(k - 1, n, 0.5))
    return float(np.median(values)), float(ordered[k - 1]), float(ordered[n - k]), coverage


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


KINDS = {
    "matmul": ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::addmv", "aten::mv", "aten::dot", "aten::ger"),
    "copy": ("aten::copy_",),
    "random": ("aten::bernoulli_", "aten::uniform_", "aten::normal_", "aten::random_"),
}


def time_by_kind(fn: Callable[[], object]) -> dict[str, float]:
    """Shares of self CPU time of one call of ``fn`` by kind of op (KINDS, the rest "other")."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    times = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    total = sum(times.values())
    shares = {kind: sum(times.get(op, 0) for op in ops) / total for kind, ops in KINDS.items()}
    return {**shares, "other": 1 - sum(shares.values())}


def verdict(low: float, high: float, target: float) -> str:
    """yes: the whole interval is within the target; NO: all of it is beyond; else unclear."""
    return "yes" if high <= target else "NO" if low > target else "unclear"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=101, help="paired timing rounds per estimator")
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
        "| estimator | ours, ms/step (median) | hand-written, ms/step (median) | overhead, median [interval] (its coverage) | <= 10% | hand-written with default Adam, ms/step |",
        "|---|---:|---:|---:|:---:|---:|",
    ]
    for name in HAND_WRITTEN:
        ours, theirs, default = (BinaryVAE(DATA, encoder="nonlinear") for _ in range(3))
        for other in (theirs, default):
            other.parameters.load_state_dict(ours.parameters.state_dict())
        estimator, our_optimizers = create(name, TEMPERATURE), ours.optimizers()
        our_step = lambda: train_step(0, ours, estimator, our_optimizers)  # noqa: E731
        their_step = hand_written_step(theirs, name, theirs.optimizers())
        modules = default.parameters
        plain = [torch.optim.Adam([*modules.encoder.parameters(), *modules.decoder.parameters()], lr=default.lr),
                 torch.optim.SGD([modules.prior], lr=default.prior_lr)]  # fmt: skip
        default_step = hand_written_step(default, name, plain)
        seconds = paired(our_step, their_step, args.rounds, args.inner)
        median, low, high, coverage = median_interval(seconds["ours"] / seconds["theirs"])
        median, low, high = median - 1, low - 1, high - 1
        ms = {k: 1e3 * float(np.median(v)) for k, v in seconds.items()}
        ms["default"] = 1e3 * float(np.median(paired(default_step, their_step, args.rounds // 4 + 1, args.inner)["ours"]))
        lines.append(f"| {name} | {ms['ours']:.2f} | {ms['theirs']:.2f} | {median:+.1%} [{low:+.1%}, {high:+.1%}] ({coverage:.0%}) "
                     f"| {verdict(low, high, 0.10)} | {ms['default']:.2f} |")  # fmt: skip
        print(lines[-1], flush=True)
    peak = matmul_rate()
    task = BinaryVAE(DATA, encoder="nonlinear")
    batch = task.probe_batch()
    lines += [
        "",
        f"## Probe: {args.probe_samples} encoder-gradient estimates on the probe batch (50 points)",
        "",
        f"Vectorized in chunks of {task.probe_chunk} draws (the task's probe_chunk). GFLOP: per {args.probe_samples} "
        "estimates, counted by torch.utils.flop_counter; GFLOP/s: the rate each path reached (a 2048 x 2048 matmul runs "
        f"at {peak / 1e9:.0f} GFLOP/s here). Shares: the vectorized call's self CPU time under torch.profiler by kind of "
        "op: matrix multiplies, copies (mostly the estimates into the [N, P] output), random draws, the rest "
        "(elementwise ops and reductions). Matmuls only: the ratio if everything but the vectorized path's "
        "matrix multiplies took no time (loop seconds / (vectorized seconds x matmul share)).",
        "",
        "Reading: the loop repeats the encoder's forward pass for every draw (the difference in GFLOP); the "
        "vectorized path runs it once, but every draw still needs its own decoder pass and encoder backward pass "
        "(the vectorized GFLOP), batched matrix multiplies over 50 points that a CPU runs at the rates shown. "
        "So on this machine the ratio cannot reach much beyond the last column, whatever the rest costs. "
        "A GPU, where the loop pays kernel launches per draw, is not measured here (none was available).",
        "",
        "| estimator | vectorized, s | loop, s | vectorized / loop | >= 5x | GFLOP vectorized / loop | GFLOP/s vectorized / loop "
        "| matmul / copy / random / other | matmuls only |",
        "|---|---:|---:|---:|:---:|---:|---:|---:|---:|",
    ]
    for name in HAND_WRITTEN:
        estimator = create(name, TEMPERATURE)
        vectorized = lambda: draw_estimates(task, estimator, batch, args.probe_samples, 1000, True)  # noqa: E731
        draw_estimates(task, estimator, batch, 2 * task.probe_chunk, 1000, True)  # warm-ups
        draw_estimates(task, estimator, batch, 2, 1000, False)
        vec = seconds_per_call(vectorized, 1)
        loop = seconds_per_call(lambda: draw_estimates(task, estimator, batch, args.probe_samples, 1000, False), 1)
        flops = {v: flops_per_estimate(task, estimator, batch, v) * args.probe_samples for v in (True, False)}
        shares = time_by_kind(vectorized)
        ratio = loop / vec
        lines.append(
            f"| {name} | {vec:.2f} | {loop:.2f} | {ratio:.1f}x | {'yes' if ratio >= 5 else 'NO'} "
            f"| {flops[True] / 1e9:.0f} / {flops[False] / 1e9:.0f} | {flops[True] / vec / 1e9:.0f} / {flops[False] / loop / 1e9:.0f} "
            f"| {' / '.join(f'{shares[k]:.0%}' for k in (*KINDS, 'other'))} | {loop / (vec * shares['matmul']):.1f}x |"
        )
        print(lines[-1], flush=True)
    page = "\n".join(lines) + "\n"
    write_atomic(args.output, page)  # never a half-written page
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
