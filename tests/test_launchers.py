"""One small sweep through each launcher of the ``cluster`` extra (``pip install -e ".[cluster]"``):

- joblib: the jobs run in a pool of local worker processes (loky);
- submitit_local: each job is a separate process started by submitit, the same code path as
  submitit_slurm without a SLURM cluster;
- ray: the launcher starts a local Ray cluster (no dashboard, 2 CPUs) and runs each job as a
  Ray task in a Ray worker process.

With each, the sweep is task=sequence (its straight-through estimator per token through a
bigram policy: what the launchers carry is the same for every task) and device=cpu,cuda (2 jobs, 3 steps): the cpu job must write summary.json
with status ok and one stats.csv row per probe into its own folder of the sweep dir; the cuda
job must finish ok too or, where its worker has no usable GPU (CI), be recorded as failed
while the sweep goes on; and the end-of-sweep table, printed by the parent process from the
sweep dir, must list both.

A launcher whose plugin is not installed is skipped, so the suite passes without the extra;
CI installs it (Makefile), so there all three run.
"""
from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_cli import discograd, job_folders, leftover_temp_files, overrides, read_csv, read_summary, steps

SWEEP = ["-m", "task=sequence", "task.length=3", "estimator=st", "device=cpu,cuda", "steps=3", "probe.samples=50", "probe.every=0"]

# name: (modules the launcher needs, its overrides)
LAUNCHERS = {
    "joblib": (["hydra_plugins.hydra_joblib_launcher", "joblib"], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]),
    "submitit_local": (["hydra_plugins.hydra_submitit_launcher", "submitit"], ["hydra/launcher=submitit_local"]),
    "ray": (
        ["hydra_plugins.hydra_ray_launcher", "ray"],
        ["hydra/launcher=ray", "+hydra.launcher.ray.init.include_dashboard=false", "+hydra.launcher.ray.init.num_cpus=2"],
    ),
}


@pytest.fixture
def ray_env(monkeypatch) -> Iterator[Path]:
    """Ray's environment for a local test cluster: a short RAY_TMPDIR (Ray puts unix sockets
    under it, whose paths may not pass 107 bytes, as pytest's tmp_path can); no RAY_ADDRESS, so
    that Ray starts its own cluster; an authentication token in the environment, so that Ray
    writes none to ~/.ray/auth_token; and no usage statistics sent out."""
    folder = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp" if Path("/tmp").is_dir() else None))
    monkeypatch.setenv("RAY_TMPDIR", str(folder))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", uuid.uuid4().hex)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_sweep_through_launcher(launcher, tmp_path, ray_env):
    modules, launcher_args = LAUNCHERS[launcher]
    for module in modules:
        pytest.importorskip(module, reason=f"hydra/launcher={launcher} needs the cluster extra")
    sweep_dir = tmp_path / "sweep"
    result = discograd([*SWEEP, *launcher_args, f"hydra.sweep.dir={sweep_dir}"], tmp_path)
    assert result.rc == 0, str(result)
    assert "Traceback" not in result.output, str(result)

    jobs = {overrides(j)["device"]: j for j in job_folders(sweep_dir)}
    assert sorted(jobs) == ["cpu", "cuda"], str(result)
    cpu, cuda = read_summary(jobs["cpu"]), read_summary(jobs["cuda"])
    assert cpu["status"] == "ok", cpu
    _, rows = read_csv(jobs["cpu"] / "stats.csv")
    assert steps(rows) == [0, 3] and {row["estimator"] for row in rows} == {"st"}
    assert leftover_temp_files(sweep_dir) == []

    # the end-of-sweep table, collected by the parent process from the workers' files
    assert "Gradient estimates at steps 0 and 3 (50 draws each, reference: exact)" in result.stdout, str(result)
    assert f"files: {sweep_dir}" in result.stdout.splitlines()
    if cuda["status"] == "failed":  # the worker has no usable GPU (CI): recorded, and the sweep went on
        assert "cuda" in cuda["error"] and not (jobs["cuda"] / "stats.csv").exists(), cuda
        assert "1 of 2 runs did not finish ok" in result.stdout, str(result)
    else:
        assert cuda["status"] == "ok", cuda
