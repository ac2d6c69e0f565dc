r"""docs/performance-gpu.md: the streaming probe on each device, with the accumulators on it.

For each device of ``--devices`` (those not available are skipped, and the page says so):
the warm rate of the whole probe (draws and their float64 moments, analysis/moments.py, on
the device) and of the draws alone, for the bernoulli toy at D=200 (gumbel_softmax and
reinforce, N = ``--samples``) and for both VAEs on digits (reinforce, N = 1000), and on cuda
the peak memory torch allocated. With ``--sweep DIR`` the page adds the table of that sweep
(benchmarks/device_check.sh runs ``device=cpu,cuda`` on both VAEs), with ``--tests LOG`` the
last line of the cuda tests' pytest log.

Usage::

    .venv/bin/python benchmarks/gpu_probe.py --devices cpu cuda --output docs/performance-gpu.md
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from analysis.collect import collect
from analysis.moments import Moments
from analysis.tables import format_results
from discograd.probe import flatten, stream_estimates
from estimators.registry import create
from primitives.io import write_atomic
from tasks.toy_quadratic import ToyQuadratic


def vae(name: str):
    """The task=NAME of conf/ (digits), built as a run builds it."""
    from hydra import compose, initialize_config_dir

    from discograd.config import CONF_DIR, build_task

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return build_task(compose("config", overrides=[f"task={name}"]))


def cases(samples: int) -> list[tuple[str, object, str, dict, int]]:
    return [
        ("toy bernoulli D=200", lambda: ToyQuadratic(dims=200), "gumbel_softmax", {"temperature": 0.5}, samples),
        ("toy bernoulli D=200", lambda: ToyQuadratic(dims=200), "reinforce", {}, samples),
        ("binary_vae (digits)", lambda: vae("binary_vae"), "reinforce", {}, 1000),
        ("categorical_vae (digits)", lambda: vae("categorical_vae"), "reinforce", {}, 1000),
    ]


def measure(device: torch.device, make, name: str, knobs: dict, samples: int) -> dict:
    task = make().to(device)
    estimator = create(name, latent_shape=task.latent_shape, **knobs).to(device)
    batch = task.probe_batch()
    exact = task.exact_gradient(batch)
    reference = None if exact is None else flatten(exact, list(task.estimand()))
    chunk = min(1000, task.probe_chunk)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(2):  # the second call is timed: the first pays torch.func's tracing and cuda's warm-up
        acc = Moments(reference=reference, block=chunk)
        start = time.perf_counter()
        cost = stream_estimates(task, estimator, batch, samples, acc.update, chunk)
        acc.summary()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"probe_per_s": samples / wall, "draws_per_s": 1 / cost.seconds_per_estimate, "peak_gib": peak, "chunk": chunk}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--sweep", type=Path, help="a sweep directory whose table the page shows")
    parser.add_argument("--tests", type=Path, help="a pytest log whose last line the page quotes")
    parser.add_argument("--output", type=Path, default=Path("docs/performance-gpu.md"))
    args = parser.parse_args(argv)
    available = {"cpu": True, "cuda": torch.cuda.is_available()}
    gpu = torch.cuda.get_device_name(0) if available["cuda"] else "none"
    lines = [
        "# The probe on a GPU",
        "",
        "Written by `benchmarks/gpu_probe.py` (from `benchmarks/device_check.sh`); do not edit by hand.",
        "",
        f"- command: `{shlex.join(['python', 'benchmarks/gpu_probe.py', *argv])}`; date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- machine: {os.cpu_count()} CPU cores, GPU: {gpu}; torch {torch.__version__}, python {platform.python_version()}",
        "",
        "| case | estimator | device | N | chunk | probe (draws + moments), est/s | draws alone, est/s | cuda peak allocated (GiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    skipped = [d for d in args.devices if not available.get(d, False)]
    for label, make, name, knobs, samples in cases(args.samples):
        for device in (d for d in args.devices if available.get(d, False)):
            print(f"{label} / {name} / {device} ...", flush=True)
            m = measure(torch.device(device), make, name, knobs, samples)
            lines.append(f"| {label} | {name} | {device} | {samples} | {m['chunk']} | {m['probe_per_s']:,.0f} | {m['draws_per_s']:,.0f} | {m['peak_gib']:.3g} |")
    if skipped:
        lines += ["", f"Not available here, so not measured: {', '.join(skipped)}."]
    if args.tests and args.tests.exists():
        last = [line for line in args.tests.read_text().splitlines() if line.strip()]
        lines += ["", f"cuda tests (`pytest tests/test_cuda.py`): {last[-1] if last else 'no output'}"]
    if args.sweep and args.sweep.exists():
        c = collect(args.sweep)
        lines += ["", "## The `device=cpu,cuda` sweep on both VAEs", "", "```", format_results(c.stats, c.runs), "```"]
    write_atomic(args.output, "\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
