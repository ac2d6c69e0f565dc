"""Sweeps that survive interruption: kill a sweep mid-way (SIGTERM, then SIGKILL if it is
still alive), rerun it with resume=true into the same sweep directory, and check that only
the unfinished jobs ran, that no file was left half-written, and that the collected runs
hold every job once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from analysis.collect import collect
from test_cli import discograd

JOBS = ["-m", "estimator=reinforce,st,gumbel_softmax", "seed=0,1", "temperature=0.5", "steps=150", "probe.every=50",
        "probe.samples=2000", "log_every=5"]  # fmt: skip


def summaries(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("summary.json")}


def test_killed_sweep_resumes_only_unfinished_jobs(tmp_path):
    root = tmp_path / "sweep"
    args = [*JOBS, f"hydra.sweep.dir={root}"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    sweep = subprocess.Popen([sys.executable, "-m", "discograd", *args], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while len(summaries(root)) < 2 and sweep.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    sweep.send_signal(signal.SIGTERM)
    try:
        sweep.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sweep.kill()
        sweep.wait()
    before = summaries(root)
    assert 2 <= len(before) < 6, f"the sweep should have been stopped mid-way; {len(before)} jobs had finished"
    # nothing half-written: every file that exists parses whole, no temp file is left
    assert not [p for p in root.rglob("*.tmp")]
    for path in [*root.rglob("stats.csv"), *root.rglob("train.csv")]:
        assert len(pd.read_csv(path)) > 0

    result = discograd([*args, "resume=true"], tmp_path)
    assert result.rc == 0, str(result)
    after = summaries(root)
    assert len(after) == 6
    assert all(after[p] == content for p, content in before.items()), "a finished job ran again"
    assert result.output.count("resume: skipped") == len(before)
    runs = collect(root).runs
    assert len(runs) == 6 and not runs.duplicated(["config_id", "seed"]).any() and set(runs["status"]) == {"ok"}


def test_resume_reruns_a_changed_config(tmp_path):
    """The hash, not the folder, decides: the same folder with another steps value runs again."""
    run_dir = tmp_path / "run"
    first = discograd(["steps=4", "probe.samples=50", f"hydra.run.dir={run_dir}"], tmp_path)
    assert first.rc == 0, str(first)
    same = discograd(["steps=4", "probe.samples=50", "resume=true", f"hydra.run.dir={run_dir}"], tmp_path)
    assert "resume: skipped" in same.output
    changed = discograd(["steps=6", "probe.samples=50", "resume=true", f"hydra.run.dir={run_dir}"], tmp_path)
    assert "resume: skipped" not in changed.output and changed.rc == 0
    assert pd.read_csv(run_dir / "stats.csv")["step"].max() == 6
