r"""docs/scale.md: the probe's peak memory against P and N, and the VAE defaults and paper presets.

Each point is one probe-only run of the CLI (``discograd ... steps=0``) in a fresh process,
whose peak resident set size is the kernel's (``os.wait4``'s ru_maxrss): everything the run
holds, Python, torch, the data and the model included. Beside it: the memory plan's estimate
of the probe's own peak (discograd/plan.py, read from the run's log), the probe's wall time
(train.csv's probe_seconds at step 0, the reference's draws included) and the job's.

- against P: the bernoulli toy with D = 10^3 ... 10^7 coordinates, N = 200 draws of REINFORCE;
- against N: D = 1000, N = 10^3 ... 10^6: flat in N is the streaming claim;
- the VAE defaults (binary_vae, categorical_vae on digits), both VAEs at MNIST size
  (Fashion-MNIST, 784 pixels) and the four paper presets on Fashion-MNIST, at their defaults.

Results are appended to benchmarks/results/probe_memory.jsonl point by point; a rerun skips
points already there (``--fresh`` starts over).

Usage (from the repository root)::

    .venv/bin/python benchmarks/probe_memory.py      # about half an hour on 2 cores
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from primitives.io import write_atomic

RESULTS = Path("benchmarks/results/probe_memory.jsonl")
LIMIT_GIB = 3.0  # the target for the VAE defaults and the presets
POINTS: list[tuple[str, str, list[str]]] = [
    *(("P", f"toy D={d:.0e}", ["task.dims=" + str(d), "probe.samples=200"]) for d in (10**3, 10**4, 10**5, 10**6, 10**7)),
    *(("N", f"toy D=1e+03 N={n:.0e}", ["task.dims=1000", f"probe.samples={n}"]) for n in (10**3, 10**4, 10**5, 10**6)),
    ("vae", "binary_vae (digits, default)", ["task=binary_vae"]),
    ("vae", "categorical_vae (digits, default)", ["task=categorical_vae"]),
    ("vae", "binary_vae (Fashion-MNIST)", ["task=binary_vae", "dataset=fashion_mnist"]),
    ("vae", "categorical_vae (Fashion-MNIST)", ["task=categorical_vae", "dataset=fashion_mnist"]),
    *(("preset", f"experiment={e} (Fashion-MNIST)", [f"experiment={e}", "dataset=fashion_mnist"])
      for e in ("jang2016_bernoulli", "jang2016_categorical", "disarm2020_linear", "disarm2020_nonlinear")),
]  # fmt: skip


def measure(overrides: list[str]) -> dict:
    """Run ``discograd steps=0 OVERRIDES`` in a child; its peak RSS, wall times and plan."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "discograd", "steps=0", *overrides, f"hydra.run.dir={out}"]
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            child.kill()
            raise
        wall = time.perf_counter() - start
        stderr = child.stderr.read() if child.stderr else ""
        row = {"command": shlex.join(["discograd", "steps=0", *overrides]), "exit": os.waitstatus_to_exitcode(status),
               "peak_rss_gib": usage.ru_maxrss * 1024 / 2**30, "job_seconds": wall}  # fmt: skip
        logs = "".join(p.read_text() for p in Path(out).glob("*.log"))
        plan = re.search(r"probe plan: P=(\d+), chunk=(\d+), estimated peak ([\d.e+-]+) GiB", logs)
        if plan:
            row |= {"P": int(plan[1]), "chunk": int(plan[2]), "plan_gib": float(plan[3])}
        train = Path(out) / "train.csv"
        if train.exists():
            row["probe_seconds"] = float(pd.read_csv(train)["probe_seconds"].iloc[0])
        if row["exit"] != 0:
            row["error"] = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
        return row


def page(rows: list[dict], argv: list[str]) -> str:
    def table(kind: str) -> list[str]:
        lines = ["| point | P | chunk | plan's probe peak (GiB) | peak RSS (GiB) | probe (s) | job (s) | exit |", "|---|---|---|---|---|---|---|---|"]
        for r in (r for r in rows if r["kind"] == kind):
            lines.append(
                f"| {r['point']} | {r.get('P', '')} | {r.get('chunk', '')} | {r.get('plan_gib', float('nan')):.3g} | "
                f"{r['peak_rss_gib']:.3g} | {r.get('probe_seconds', float('nan')):.1f} | {r['job_seconds']:.0f} | "
                f"{r['exit']}{' (' + r['error'] + ')' if r.get('error') else ''} |"
            )
        return lines

    n_rows = [r for r in rows if r["kind"] == "N"]
    flat = (max(r["peak_rss_gib"] for r in n_rows) / min(r["peak_rss_gib"] for r in n_rows)) if n_rows else float("nan")
    within = [r for r in rows if r["kind"] in ("vae", "preset")]
    ok = sum(r["peak_rss_gib"] <= LIMIT_GIB and r["exit"] == 0 for r in within)
    return "\n".join([
        "# Scale: the probe's memory",
        "",
        "Peak resident memory of probe-only runs (`discograd ... steps=0`), each in a fresh process: everything "
        "the process held (Python, torch, data, model, the probe). Written by `benchmarks/probe_memory.py`; do not edit by hand.",
        "",
        f"- command: `{shlex.join(['python', *argv])}`; date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; "
        f"machine: {os.cpu_count()} CPU cores, no GPU (wall times are this shared machine's, other jobs ran beside)",
        "- the plan's column is discograd/plan.py's estimate of the probe's own peak (accumulators and one chunk), "
        "made before any work; the chunk is the plan's",
        "",
        "## Against N (P = 1000): the probe streams, memory does not grow with N",
        "",
        f"Largest over smallest peak: **{flat:.2f}x** from N = 10^3 to 10^6.",
        "",
        *table("N"),
        "",
        "## Against P (N = 200)",
        "",
        *table("P"),
        "",
        f"## VAE defaults and paper presets (target: within {LIMIT_GIB:g} GiB)",
        "",
        f"**{ok} of {len(within)} within {LIMIT_GIB:g} GiB.** Presets run at their own settings (N, reference draws, basket) with "
        "`dataset=fashion_mnist` (MNIST and Omniglot cannot be downloaded here) and `steps=0`.",
        "",
        *table("vae"),
        *table("preset")[2:],
        "",
    ])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--output", type=Path, default=Path("docs/scale.md"))
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--only", choices=["P", "N", "vae", "preset"], nargs="*", help="measure these kinds only")
    args = parser.parse_args(argv)
    if args.fresh and args.results.exists():
        args.results.unlink()
    done = {json.loads(l)["point"]: json.loads(l) for l in args.results.read_text().splitlines()} if args.results.exists() else {}
    for kind, point, overrides in POINTS:
        if point in done or (args.only and kind not in args.only):
            continue
        print(f"{point}: ...", flush=True)
        row = {"kind": kind, "point": point, **measure(overrides)}
        print(f"{point}: {row['peak_rss_gib']:.3g} GiB, {row['job_seconds']:.0f} s, exit {row['exit']}", flush=True)
        done[point] = row
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with args.results.open("a") as out:
            out.write(json.dumps(row) + "\n")
    rows = [done[p] for _, p, _ in POINTS if p in done]
    write_atomic(args.output, page(rows, ["benchmarks/probe_memory.py", *argv]))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
