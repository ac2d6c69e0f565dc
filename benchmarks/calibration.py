r"""docs/calibration.md: measured false-alarm and coverage rates of the probe's statistics.

Over a matrix of cells (a task setting, an estimator, exact or estimated reference, N), each
cell repeats the probe R times with the real estimators (``discograd.probe``) and the real
statistics (``analysis.statistics.gradient_statistics``, which gives the streaming probe's
numbers on the same draws) and counts:

- false alarm: unbiased estimators called biased (``bias_norm_lo > 0``), nominal 2.5%;
- detection: biased estimators called biased (power, no target);
- bias CI coverage: the true norm of b inside [bias_norm_lo, bias_norm_hi], nominal 95%;
- variance CI coverage: the true tr(Cov) inside [variance_lo, variance_hi], nominal 95%;
- warned: repetitions whose row carries a ``warning``; rates are over the others.

Truth: the exact gradient of the task (closed form on the toy, exact f of the mean-field
marginals on the MRF); an unbiased estimator's bias is exactly 0; a biased one's mean and
every estimator's tr(Cov) come from ``--truth`` draws streamed through analysis.moments (their
Monte Carlo error is printed on the page, well below the intervals' widths). An estimated
reference is ``4 N`` draws of REINFORCE with the leave-one-out baseline and 2 samples (the
default probe.reference_estimator). Rates carry 95% Wilson intervals.

Results are appended cell by cell to ``benchmarks/results/calibration.jsonl``; a rerun
skips the cells already there (``--fresh`` starts over), so an interrupted run loses nothing.

Usage (from the repository root)::

    .venv/bin/python benchmarks/calibration.py            # about an hour on 2 cores
    .venv/bin/python benchmarks/calibration.py --quick    # a smoke run: 3 cells, few reps
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import binomtest
from tqdm.auto import tqdm

from analysis.moments import Moments
from analysis.statistics import gradient_statistics
from discograd.probe import draw_estimates, flatten, stream_estimates
from estimators import ESTIMATORS
from estimators.registry import create
from primitives.io import write_atomic
from tasks.mrf import MRF
from tasks.toy_quadratic import ToyQuadratic

RESULTS = Path("benchmarks/results/calibration.jsonl")
FALSE_ALARM_BAND = (0.015, 0.035)  # the target for the nominal 2.5%
COVERAGE_TARGET = 0.93  # the target for the nominal 95%
REFERENCE = dict(baseline="loo", num_samples=2)  # conf/config.yaml's probe.reference_estimator


@dataclass(frozen=True)
class Setting:
    name: str
    task: str  # toy_quadratic | mrf
    knobs: dict[str, Any]

    def build(self) -> Any:
        return (ToyQuadratic if self.task == "toy_quadratic" else MRF)(**self.knobs)


SETTINGS = [
    *(Setting(f"bernoulli toy D={d} theta={t:g}", "toy_quadratic", dict(dims=d, init_logit=t)) for d in (1, 5, 50, 200) for t in (0.0, 1.0, 4.0)),
    Setting("categorical toy D=5 K=3 theta=0", "toy_quadratic", dict(family="categorical", dims=5, classes=3)),
    Setting("MRF 3x3 Ising (default)", "mrf", {}),
]
ESTIMATOR_NAMES = [("reinforce", {}), ("st", {}), ("gumbel_softmax", {"temperature": 0.5})]


def cell_key(setting: Setting, estimator: str, reference: str, n: int) -> str:
    return f"{setting.name} | {estimator} | {reference} | N={n}"


def truth(setting: Setting, name: str, knobs: dict, draws: int) -> dict[str, float]:
    """||E g - g_true||, tr(Cov) and their Monte Carlo standard errors from ``draws`` draws."""
    task = setting.build()
    estimator = create(name, latent_shape=task.latent_shape, **knobs)
    exact = flatten(task.exact_gradient(), list(task.estimand())).astype(np.float64)
    acc = Moments(block=10000)
    torch.manual_seed(12345)
    stream_estimates(task, estimator, None, draws, acc.update, chunk=10000, desc="truth")
    s = acc.summary()
    bias = 0.0 if ESTIMATORS[name].unbiased else float(np.linalg.norm(s.mean - exact))
    return {"bias": bias, "bias_mc_se": math.sqrt(s.trace / draws), "trace": s.trace,
            "trace_mc_se": math.sqrt(s.trace_variance)}  # fmt: skip


def run_cell(setting: Setting, name: str, knobs: dict, reference: str, n: int, reps: int, true: dict, seed: int) -> dict:
    task = setting.build()
    estimator = create(name, latent_shape=task.latent_shape, **knobs)
    exact = flatten(task.exact_gradient(), list(task.estimand())).astype(np.float64)
    unbiased = ESTIMATORS[name].unbiased
    counts = dict(reps=reps, warned=0, called_biased=0, bias_covered=0, variance_covered=0)
    torch.manual_seed(seed)
    batch = max(1, min(reps, 200_000 // n))
    m = 4 * n
    ref = create("reinforce", **REFERENCE) if reference == "estimated" else None
    done = 0
    while done < reps:
        k = min(batch, reps - done)
        x = draw_estimates(task, estimator, None, k * n, chunk=10000).estimates.reshape(k, n, -1)
        y = None if ref is None else draw_estimates(task, ref, None, k * m, chunk=10000).estimates.reshape(k, m, -1)
        for r in range(k):
            s = gradient_statistics(x[r], exact if y is None else None, None if y is None else y[r], chunk=min(1000, n))
            if s["warning"]:
                counts["warned"] += 1
                continue
            counts["called_biased"] += s["bias_norm_lo"] > 0
            counts["bias_covered"] += s["bias_norm_lo"] <= true["bias"] <= s["bias_norm_hi"]
            counts["variance_covered"] += s["variance_lo"] <= true["trace"] <= s["variance_hi"]
        done += k
    return {"cell": cell_key(setting, estimator_label(name, knobs), reference, n), "setting": setting.name,
            "estimator": estimator_label(name, knobs), "unbiased": unbiased, "reference": reference, "n": n, **counts, **true}  # fmt: skip


def estimator_label(name: str, knobs: dict) -> str:
    return name + (f"[{', '.join(f'{k}={v}' for k, v in knobs.items())}]" if knobs else "")


def rate(k: int, n: int) -> tuple[float, float, float]:
    if n == 0:
        return math.nan, math.nan, math.nan
    ci = binomtest(int(k), int(n)).proportion_ci(0.95, method="wilson")
    return k / n, ci.low, ci.high


def fmt(k: int, n: int) -> str:
    p, lo, hi = rate(k, n)
    return "" if n == 0 else f"{100 * p:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def misses(row: dict) -> list[str]:
    """The targets a cell misses, judged on its unwarned repetitions (a cell with fewer than
    half its repetitions unwarned is flagged, not judged): "miss" when the rate's 95% Wilson
    interval lies wholly outside the target, "point" when only the point estimate does."""
    used = row["reps"] - row["warned"]
    if used < row["reps"] / 2:
        return []
    out = []

    def judge(what: str, k: int, low: float, high: float) -> None:
        p, lo, hi = rate(k, used)
        if not low <= p <= high:
            out.append(f"{what} {100 * p:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] ({'miss' if hi < low or lo > high else 'point'})")

    if row["unbiased"]:
        judge("false alarm", row["called_biased"], *FALSE_ALARM_BAND)
    judge("bias coverage", row["bias_covered"], COVERAGE_TARGET, 1.0)
    judge("variance coverage", row["variance_covered"], COVERAGE_TARGET, 1.0)
    return out


def page(rows: list[dict], argv: list[str], seconds: float) -> str:
    lines = [
        "# Calibration of the probe's statistics",
        "",
        "Measured rates of the bias test and of the 95% intervals against exact truths "
        "(see analysis/statistics.py for the formulas, benchmarks/calibration.py for the method). "
        "Written by `benchmarks/calibration.py`; do not edit by hand.",
        "",
        f"- command: `{shlex.join(['python', *argv])}`; date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; "
        f"machine: {os.cpu_count()} CPU cores; this run: {seconds / 60:.0f} min",
        f"- targets: false alarm of unbiased estimators in [{100 * FALSE_ALARM_BAND[0]:.1f}%, {100 * FALSE_ALARM_BAND[1]:.1f}%] "
        f"(nominal 2.5%, one-sided); coverage >= {100 * COVERAGE_TARGET:.0f}% (nominal 95%); judged on the repetitions "
        "the `warning` column does not flag; a cell flagged in more than half its repetitions is not judged",
        "- each rate: over R repetitions of one probe, with its 95% Wilson interval",
        "",
    ]
    missed = [(r, m) for r in rows if (m := misses(r))]
    clear = [(r, m) for r, m in missed if any(x.endswith("(miss)") for x in m)]
    flagged = [r for r in rows if r["reps"] - r["warned"] < r["reps"] / 2]
    lines += [
        f"**{len(rows)} cells; {len(clear)} miss a target clearly (the rate's 95% interval wholly outside it); "
        f"{len(missed) - len(clear)} more have a point estimate outside but an interval that reaches the target; "
        f"{len(flagged)} are flagged by the warning column.**",
        "",
    ]
    if missed:
        lines += ["Cells whose rate is outside a target (miss: clearly; point: within noise):", ""]
        lines += [f"- {r['cell']}: {', '.join(m)}" for r, m in missed] + [""]
    header = "| setting | estimator | reference | N | R | warned | called biased (false alarm / power) | bias CI coverage | variance CI coverage | truth: norm of b, tr(Cov) |"
    lines += [header, "|---" * (header.count("|") - 1) + "|"]
    for r in rows:
        used = r["reps"] - r["warned"]
        called = fmt(r["called_biased"], used) + (" (power)" if not r["unbiased"] and used else "")
        lines.append(
            f"| {r['setting']} | {r['estimator']} | {r['reference']} | {r['n']} | {r['reps']} | {r['warned']} | {called} | "
            f"{fmt(r['bias_covered'], used)} | {fmt(r['variance_covered'], used)} | "
            f"{r['bias']:.3g} (MC se {r['bias_mc_se']:.1g}), {r['trace']:.4g} (MC se {r['trace_mc_se']:.1g}) |"
        )
    lines += ["", "Rounding: the `exact` estimator (zero variance, float32) against the float64 exact gradient is "
              "never called biased (tests/test_statistics.py::test_draws_equal_to_the_reference_up_to_rounding_are_not_biased)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, nargs=2, default=[1000, 300], metavar=("R_100", "R_1000"), help="repetitions at N=100 and N=1000")
    parser.add_argument("--truth", type=int, default=1_000_000, help="draws behind each Monte Carlo truth")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--output", type=Path, default=Path("docs/calibration.md"))
    parser.add_argument("--fresh", action="store_true", help="forget the cells already measured")
    parser.add_argument("--quick", action="store_true", help="3 cells, 50 repetitions: a smoke run (writes nothing to docs/)")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if args.fresh and args.results.exists():
        args.results.unlink()
    done = {json.loads(line)["cell"]: json.loads(line) for line in args.results.read_text().splitlines()} if args.results.exists() else {}
    cells = [(s, name, knobs, ref, n) for s in SETTINGS for name, knobs in ESTIMATOR_NAMES
             if s.build().family in ESTIMATORS[name].families for ref in ("exact", "estimated") for n in (100, 1000)]  # fmt: skip
    if args.quick:
        cells, args.reps, args.truth = cells[:3], [50, 20], 20000
    start, truths = time.perf_counter(), {}
    for i, (setting, name, knobs, ref, n) in enumerate(tqdm(cells, desc="cells")):
        key = cell_key(setting, estimator_label(name, knobs), ref, n)
        if key in done and not args.quick:
            continue
        tkey = (setting.name, estimator_label(name, knobs))
        if tkey not in truths:
            truths[tkey] = next((
                {k: d[k] for k in ("bias", "bias_mc_se", "trace", "trace_mc_se")} for d in done.values()
                if d["setting"] == setting.name and d["estimator"] == tkey[1]), None) or truth(setting, name, knobs, args.truth)  # fmt: skip
        reps = args.reps[0] if n == 100 else args.reps[1]
        row = run_cell(setting, name, knobs, ref, n, reps, truths[tkey], seed=1000 + i)
        done[key] = row
        if not args.quick:
            args.results.parent.mkdir(parents=True, exist_ok=True)
            with args.results.open("a") as out:
                out.write(json.dumps(row) + "\n")
        print(key, "->", misses(row) or "ok", flush=True)
    rows = [done[k] for k in (cell_key(s, estimator_label(nm, kn), r, n) for s, nm, kn, r, n in cells) if k in done]
    text = page(rows, ["benchmarks/calibration.py", *argv], time.perf_counter() - start)
    if args.quick:
        print(text)
    else:
        write_atomic(args.output, text)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
