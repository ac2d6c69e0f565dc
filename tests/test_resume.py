"""Sweeps that survive interruption: kill a sweep mid-way (SIGTERM, then SIGKILL if it is
still alive), rerun it with resume=true into the same sweep directory, and check that the
job it stopped says status interrupted with its step, that only the unfinished jobs ran, that
no file was left half-written, and that the collected runs hold every job once. A single run
stopped by Ctrl-C says interrupted too, exits 130 with one line, is listed by discograd-report
and rerun by resume=true.
"""
from __future__ import annotations

import json
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


def summaries(root: Path, status: str | None = None) -> dict[Path, bytes]:
    """summary.json files under root (with ``status``, if given) and their bytes."""
    found = {p: p.read_bytes() for p in root.rglob("summary.json")}
    return {p: b for p, b in found.items() if status is None or json.loads(b)["status"] == status}


def stop_when(proc: subprocess.Popen, ready, sig: int, timeout: float = 120) -> int:
    """Send ``sig`` to proc once ready() holds (or it has ended); its exit code (SIGKILL after 10 s)."""
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def test_killed_sweep_resumes_only_unfinished_jobs(tmp_path):
    root = tmp_path / "sweep"
    args = [*JOBS, f"hydra.sweep.dir={root}"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    sweep = subprocess.Popen([sys.executable, "-m", "discograd", *args], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    def third_job_training() -> bool:  # two jobs done, a third inside its steps
        return len(summaries(root, "ok")) >= 2 and any(not (t.parent / "summary.json").exists() for t in root.rglob("train.csv"))

    rc = stop_when(sweep, third_job_training, signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM
    before = summaries(root, "ok")
    assert 2 <= len(before) < 6, f"the sweep should have been stopped mid-way; {len(before)} jobs had finished"
    # the job it stopped says so, with the step it was in
    (stopped,) = [json.loads(b) for b in summaries(root, "interrupted").values()]
    assert stopped["error"] == f"interrupted by SIGTERM at step {stopped['interrupted_at']}" and stopped["interrupted_at"] >= 0
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


def test_a_folder_holding_another_configuration_is_not_overwritten(tmp_path):
    """The hash, not the folder, decides: the same config in the same folder is skipped by
    resume=true (or rerun without it); another config (steps=6) there is refused before work,
    exit 2, naming the folder and what it holds, unless overwrite=true; so is a sweep whose
    job folders hold other jobs (seed=1,0 after seed=0,1)."""
    run_dir = tmp_path / "run"
    first = discograd(["steps=4", "probe.samples=50", f"hydra.run.dir={run_dir}"], tmp_path)
    assert first.rc == 0, str(first)
    same = discograd(["steps=4", "probe.samples=50", "resume=true", f"hydra.run.dir={run_dir}"], tmp_path)
    assert "resume: skipped" in same.output
    kept = (run_dir / "summary.json").read_bytes()
    changed = discograd(["steps=6", "probe.samples=50", "resume=true", f"hydra.run.dir={run_dir}"], tmp_path)
    assert changed.rc == 2 and "Traceback" not in changed.output, str(changed)
    assert changed.last_error_line() == (
        f"discograd: error: {run_dir} already holds another configuration's results (config_id "
        f"{json.loads(kept)['config_id']}, seed 0: steps=4 probe.samples=50); write elsewhere "
        "(hydra.run.dir / hydra.sweep.dir) or add overwrite=true to replace them"
    )
    assert (run_dir / "summary.json").read_bytes() == kept
    replaced = discograd(["steps=6", "probe.samples=50", "overwrite=true", f"hydra.run.dir={run_dir}"], tmp_path)
    assert replaced.rc == 0, str(replaced)
    assert pd.read_csv(run_dir / "stats.csv")["step"].max() == 6
    sweep = ["-m", "steps=2", "probe.samples=20", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert discograd([*sweep, "seed=0,1"], tmp_path).rc == 0
    swapped = discograd([*sweep, "seed=1,0"], tmp_path)
    assert swapped.rc == 2 and f"{tmp_path / 'sweep' / '0'} already holds" in swapped.last_error_line(), str(swapped)


def test_ctrl_c_marks_a_single_run_interrupted_and_resume_reruns_it(tmp_path):
    run_dir = tmp_path / "run"
    args = ["steps=100000", "probe.every=0", "probe.samples=50", "log_every=10", f"hydra.run.dir={run_dir}"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "discograd", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    rc = stop_when(proc, lambda: (run_dir / "train.csv").exists() and len(pd.read_csv(run_dir / "train.csv")) > 2, signal.SIGINT)
    stderr = proc.stderr.read()
    assert rc == 130
    assert stderr.strip().splitlines()[-1] == "discograd: interrupted (Ctrl-C); summary.json says status interrupted, resume=true reruns it"
    assert "Traceback" not in stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["error"].startswith("interrupted by Ctrl-C (SIGINT) at step ")
    assert summary["interrupted_at"] >= 20  # train.csv had 3 rows (steps 0, 10, 20) before the signal
    report = subprocess.run([sys.executable, "-m", "discograd.report", str(run_dir)], capture_output=True, text=True)
    assert report.returncode == 0 and "1 runs (1 did not finish ok)" in report.stdout
    assert "interrupted by Ctrl-C" in (run_dir / "report" / "report.html").read_text()
    # a shorter run is another configuration: it may replace the interrupted one when told to
    resumed = discograd([*args[1:], "steps=30", "resume=true", "overwrite=true"], tmp_path)
    assert resumed.rc == 0 and "resume: skipped" not in resumed.output, str(resumed)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "ok"
