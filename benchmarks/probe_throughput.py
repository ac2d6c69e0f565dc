r"""Gradient-probe throughput: estimates per second, vectorized path vs loop path.

For every registered estimator (temperature 0.5 where it has one) on ToyQuadratic with D
latents (bernoulli, and categorical with K classes), this times
``discograd.probe.draw_estimates`` drawing ``--samples`` estimates on the vectorized path
(vmap over chunks of ``--chunk`` draws) and ``--loop-samples`` estimates on the loop path,
in the same process, interleaved so that both see the same load. Each timing is the whole
call (what a run pays per probe: set-up, draws, concatenation, the numpy copy); the first
call of each path is a warm-up and is not counted; the table reports the median and the
best of ``--repeats`` calls. It then times gumbel_softmax at several chunk sizes and, unless
``--skip-diagnosis``, takes the vectorized gumbel_softmax probe apart: its profile, and the
cost of the random numbers alone and of a hand-written closed form (floors no probe can beat).
Every number in the main tables comes from the real ``draw_estimates``.

Usage (from the repository root)::

    .venv/bin/python benchmarks/probe_throughput.py                  # writes docs/performance.md
    .venv/bin/python benchmarks/probe_throughput.py --samples 2000 --repeats 3 --output /tmp/perf.md
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from analysis.statistics import gradient_statistics
from primitives.io import write_atomic
from discograd.probe import draw_estimates
from estimators import ESTIMATORS, Estimator
from estimators.registry import create
from tasks.toy_quadratic import ToyQuadratic

TEMPERATURE = 0.5
GOAL = 1e6  # estimates per second for gumbel_softmax at D=200 on 2 cores (the project's goal)
TARGET_RATIO = 20.0  # vectorized over loop


def make_task(family: str, dims: int, classes: int) -> ToyQuadratic:
    return ToyQuadratic(family=family, dims=dims, classes=classes)


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed(calls: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Wall seconds of each call, ``repeats`` times, round robin after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    times: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(repeats):
        for key, fn in calls.items():
            times[key].append(seconds(fn))
    return times


def rates(draws: int, times: list[float]) -> tuple[float, float]:
    """(median, best) estimates per second."""
    return draws / statistics.median(times), draws / min(times)


def probe_call(task: ToyQuadratic, estimator: Estimator, samples: int, chunk: int, vectorize: bool) -> Callable[[], object]:
    return lambda: draw_estimates(task, estimator, task.probe_batch(), samples, chunk, vectorize)


def throughput_rows(args: argparse.Namespace, family: str) -> list[dict]:
    """One row per estimator that supports ``family``: vectorized and loop throughput; an
    estimator that rejects this task (exact enumeration at D=200) gets a row with its reason."""
    task, rows = make_task(family, args.dims, args.classes), []
    for name in ESTIMATORS:
        if family not in ESTIMATORS[name].families:
            continue
        estimator = create(name, TEMPERATURE, latent_shape=task.latent_shape)
        try:
            probe_call(task, estimator, 1, 1, True)()
        except ValueError as error:
            rows.append({"estimator": name, "family": family, "skipped": str(error)})
            print(f"  {family:11s} {name:18s} not measured: {error}", flush=True)
            continue
        times = timed(
            {
                "vectorized": probe_call(task, estimator, args.samples, args.chunk, True),
                "loop": probe_call(task, estimator, args.loop_samples, args.chunk, False),
            },
            args.repeats,
        )
        vec, loop = rates(args.samples, times["vectorized"]), rates(args.loop_samples, times["loop"])
        rows.append({"estimator": name, "family": family, "vec": vec, "loop": loop, "ratio": vec[0] / loop[0]})
        print(f"  {family:11s} {name:18s} vectorized {vec[0]:11,.0f}/s  loop {loop[0]:8,.0f}/s  ratio {vec[0] / loop[0]:6.1f}x", flush=True)
    return rows


def chunk_rows(args: argparse.Namespace) -> list[dict]:
    """gumbel_softmax (bernoulli) throughput at each chunk size of ``--chunk-sweep``."""
    task, estimator = make_task("bernoulli", args.dims, args.classes), create("gumbel_softmax", TEMPERATURE)
    calls = {chunk: probe_call(task, estimator, args.samples, chunk, True) for chunk in args.chunk_sweep}
    times = timed(calls, args.repeats)
    return [{"chunk": chunk, "vec": rates(args.samples, times[chunk])} for chunk in args.chunk_sweep]


# ---- diagnosis: experimental variants, never used for the main tables -------------------------


def closed_form_gradient(task: ToyQuadratic, samples: int) -> torch.Tensor:
    """[N, D]: gumbel_softmax's gradients on the bernoulli toy, by hand (no autograd, no vmap):
    (2 / D) (y - t) y (1 - y) / tau, y = sigmoid((l + log u - log(1 - u)) / tau)."""
    logits, tau = task.logits(), TEMPERATURE
    info = torch.finfo(logits.dtype)
    u = torch.rand(samples, logits.shape[-1]).clamp_(info.tiny, 1.0 - info.eps)
    y = torch.sigmoid((logits + u.log() - (-u).log1p()) / tau)
    return (2.0 / logits.shape[-1]) * (y - task.target) * y * (1 - y) / tau


def top_ops(task: ToyQuadratic, estimator: Estimator, samples: int, chunk: int, count: int = 10) -> tuple[list[dict], float]:
    """The ``count`` aten ops with the most self CPU time in one vectorized probe, and the total."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        draw_estimates(task, estimator, None, samples, chunk)
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events) / 1e3
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "ms": e.self_cpu_time_total / 1e3, "calls": e.count} for e in events[:count]], total


def diagnosis(args: argparse.Namespace) -> dict:
    """Where the vectorized gumbel_softmax probe (bernoulli, D=--dims) spends its time."""
    n, dims = args.samples, args.dims
    task, tiny = make_task("bernoulli", dims, args.classes), make_task("bernoulli", 1, args.classes)
    real = create("gumbel_softmax", TEMPERATURE)
    draws = draw_estimates(task, real, None, n, args.chunk).estimates
    calls = {
        "probe (real draw_estimates)": probe_call(task, real, n, args.chunk, True),
        "random numbers only: torch.rand(N, D)": lambda: torch.rand(n, dims),
        "closed form by hand (no autograd, no vmap)": lambda: closed_form_gradient(task, n),
        f"probe fixed cost: D=1, chunk={args.chunk}": probe_call(tiny, real, n, args.chunk, True),
        "probe fixed cost: D=1, chunk=1000": probe_call(tiny, real, n, 1000, True),
        "downstream: analysis.gradient_statistics on the draws": lambda: gradient_statistics(draws, draws.mean(0)),
    }
    times = timed(calls, args.repeats)
    ops, total = top_ops(task, real, n, args.chunk)
    return {"times": times, "ops": ops, "ops_total": total}


def cold_start(args: argparse.Namespace) -> float:
    """Seconds of the first vectorized call in this process (torch.func's one-time set-up)."""
    task = make_task("bernoulli", args.dims, args.classes)
    return seconds(probe_call(task, create("gumbel_softmax", TEMPERATURE), args.samples, args.chunk, True))


# ---- the page --------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "torch": torch.__version__, "threads": str(torch.get_num_threads()), "cpus": str(os.cpu_count()),
        "cpu": cpu, "python": platform.python_version(), "numpy": np.__version__,
    }  # fmt: skip


def fmt(rate: float) -> str:
    return f"{rate:,.0f}"


def main_table(rows: list[dict], args: argparse.Namespace) -> list[str]:
    lines = [
        f"| estimator | family | P | vectorized est/s, median (best), N={args.samples}, chunk={args.chunk} "
        f"| vectorized coordinates/s | loop est/s, median (best), N={args.loop_samples} | vectorized / loop | >= {TARGET_RATIO:.0f}x |",
        "|---|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        size = args.dims * (1 if r["family"] == "bernoulli" else args.classes)
        if "skipped" in r:
            lines.append(f"| {r['estimator']} | {r['family']} | {size} | not measured: {r['skipped']} | | | | |")
            continue
        lines.append(
            f"| {r['estimator']} | {r['family']} | {size} | {fmt(r['vec'][0])} ({fmt(r['vec'][1])}) | {r['vec'][0] * size / 1e6:.0f} M | "
            f"{fmt(r['loop'][0])} ({fmt(r['loop'][1])}) | {r['ratio']:.1f}x | {'yes' if r['ratio'] >= TARGET_RATIO else 'NO'} |"
        )
    return lines


def chunk_table(rows: list[dict], args: argparse.Namespace) -> list[str]:
    lines = ["| chunk | chunks per probe | est/s, median (best) |", "|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['chunk']} | {-(-args.samples // r['chunk'])} | {fmt(r['vec'][0])} ({fmt(r['vec'][1])}) |")
    return lines


def diagnosis_lines(diag: dict, args: argparse.Namespace) -> list[str]:
    n, times = args.samples, diag["times"]
    base = statistics.median(times["probe (real draw_estimates)"])
    lines = [
        f"| what (bernoulli, D={args.dims}, N={n}) | ms, median (best) | est/s at that cost | share of the probe |",
        "|---|---:|---:|---:|",
    ]
    for key, t in times.items():
        med = statistics.median(t)
        lines.append(f"| {key} | {med * 1e3:.1f} ({min(t) * 1e3:.1f}) | {fmt(n / med)} | {med / base:.0%} |")
    lines += [
        "",
        f"torch.profiler, one real vectorized probe (aten self CPU time, total {diag['ops_total']:.1f} ms):",
        "",
        "| aten op | self ms | calls | share |",
        "|---|---:|---:|---:|",
    ]
    for op in diag["ops"]:
        lines.append(f"| {op['op']} | {op['ms']:.2f} | {op['calls']} | {op['ms'] / diag['ops_total']:.0%} |")
    return lines


def verdict(rows: list[dict], chunks: list[dict]) -> list[str]:
    rows = [r for r in rows if "skipped" not in r]
    worst = min(rows, key=lambda r: r["ratio"])
    met = all(r["ratio"] >= TARGET_RATIO for r in rows)
    gs = next((r for r in rows if r["estimator"] == "gumbel_softmax" and r["family"] == "bernoulli"), None)
    best_chunk = max(chunks, key=lambda r: r["vec"][0])
    if met:
        ratio = f"met by every row (lowest: {worst['estimator']} {worst['family']}, {worst['ratio']:.1f}x)"
    else:
        ratio = "NOT met by " + ", ".join(f"{r['estimator']} {r['family']} ({r['ratio']:.1f}x)" for r in rows if r["ratio"] < TARGET_RATIO)
    lines = [f"- Target vectorized >= {TARGET_RATIO:.0f}x loop: {ratio}."]
    if gs is not None:
        lines.append(
            f"- Goal {GOAL:,.0f} est/s for gumbel_softmax (bernoulli): {'met' if gs['vec'][0] >= GOAL else 'NOT met'}; "
            f"median {fmt(gs['vec'][0])}/s ({gs['vec'][0] / GOAL:.0%} of the goal), best {fmt(gs['vec'][1])}/s, "
            f"best chunk size here {best_chunk['chunk']} ({fmt(best_chunk['vec'][0])}/s)."
        )
    return lines


def render(args: argparse.Namespace, rows: list[dict], chunks: list[dict], diag: dict | None, cold: float, load: tuple) -> str:
    info = machine()
    lines = [
        "# Gradient-probe throughput",
        "",
        "How many gradient estimates per second the gradient probe (`discograd.probe.draw_estimates`) "
        "draws on the toy quadratic (`ToyQuadratic`, D latents; categorical with K classes), for every "
        f"registered estimator at temperature {TEMPERATURE} where it has one: the vectorized path "
        "(torch.func vmap/grad over chunks of draws) against the loop path (one autograd call per "
        "draw), timed in the same process and interleaved. A timing is one whole `draw_estimates` "
        "call (set-up, draws, concatenation, numpy copy), after an untimed warm-up call; we report "
        f"the median and the best of {args.repeats} calls. The loop path is timed on fewer draws "
        f"(N={args.loop_samples}) than the vectorized one (N={args.samples}); its cost per draw does not "
        "depend on N. P is the number of gradient coordinates per estimate (D, or D K for "
        "categorical): the vectorized path is bound by memory traffic, so its cost grows with P, while "
        "the loop path is bound by Python and dispatch overhead per draw, so the ratio shrinks as P grows. "
        "Ratios are the meaningful numbers; absolute rates depend on the machine and on its load. This page is written by `benchmarks/probe_throughput.py`; do not edit it by hand. "
        "The VAEs' training-step overhead and probe: docs/performance-vae.md (`benchmarks/vae_step.py`).",
        "",
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {info['cpu']}, {info['cpus']} CPUs; torch {info['torch']} with {info['threads']} threads; "
        f"Python {info['python']}, numpy {info['numpy']}",
        f"- load average (1 min) at start / end: {load[0]:.2f} / {load[1]:.2f} (the machine is shared; "
        "a high load spreads the medians)",
        f"- first vectorized call in a fresh process (not in the tables): {cold:.2f} s",
        "",
        f"## Vectorized vs loop (D={args.dims}, K={args.classes} for categorical)",
        "",
        *main_table(rows, args),
        "",
        *verdict(rows, chunks),
        "",
        f"## Chunk size (gumbel_softmax, bernoulli, D={args.dims}, N={args.samples})",
        "",
        *chunk_table(chunks, args),
    ]
    if diag is not None:
        lines += ["", "## Where the vectorized gumbel_softmax probe spends its time", "", *diagnosis_lines(diag, args)]
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10000, help="draws per vectorized probe (N)")
    parser.add_argument("--loop-samples", type=int, default=2000, help="draws per loop-path probe")
    parser.add_argument("--dims", type=int, default=200, help="latent variables D")
    parser.add_argument("--classes", type=int, default=10, help="classes K of the categorical family")
    parser.add_argument("--chunk", type=int, default=10000, help="draws per vectorized chunk")
    parser.add_argument("--chunk-sweep", type=int, nargs="+", default=[1000, 2000, 5000, 10000], help="chunk sizes for gumbel_softmax")
    parser.add_argument("--families", nargs="+", default=["bernoulli", "categorical"], choices=["bernoulli", "categorical"])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (after one warm-up)")
    parser.add_argument("--skip-diagnosis", action="store_true", help="leave out the profile of gumbel_softmax")
    parser.add_argument("--output", type=Path, default=Path("docs/performance.md"), help="the markdown page to write")
    args = parser.parse_args(argv)
    if min(args.samples, args.loop_samples, args.chunk, args.repeats, *args.chunk_sweep) < 1:
        parser.error("--samples, --loop-samples, --chunk, --chunk-sweep and --repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    torch.manual_seed(0)
    load_start = os.getloadavg()[0]
    cold = cold_start(args)
    rows = [row for family in args.families for row in throughput_rows(args, family)]
    chunks = chunk_rows(args)
    diag = None if args.skip_diagnosis else diagnosis(args)
    page = render(args, rows, chunks, diag, cold, (load_start, os.getloadavg()[0]))
    print("\n" + page)
    write_atomic(args.output, page)  # never a half-written page
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
