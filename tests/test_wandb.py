"""logger=wandb (discograd/loggers.py), offline: no network, no account.

Runs the CLI as two subprocesses at once (a single run; a 2-job multirun with the basic
launcher, whose second job's task raises mid-way) and reads back what W&B wrote: one offline
run directory per job inside the job's output directory, the stats table's JSON under
files/media/table/ (its rows compared with stats.csv), and the run's records in its
run-ID.wandb file (group, name, config, history by step, summary, exit code). logger=none,
preflight's checks of the logger knobs and ``log_report`` run in-process.

The .wandb file is a LevelDB-style log (32 KiB blocks of CRC, length, type and payload chunks)
after a 7-byte W&B header; each record is a ``wandb_internal_pb2.Record`` protobuf.
"""
from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import wandb
from hydra import compose, initialize_config_dir
from wandb.proto import wandb_internal_pb2

from discograd.errors import ConfigError
from discograd.loggers import Logger, log_report, make_logger
from discograd.preflight import CONF_DIR, preflight
from discograd.run import run_job

SMALL = ["probe.samples=50", "log_every=5"]
FAILING_TASK = '''
from tasks.toy_quadratic import ToyQuadratic


class FailsAtSecondEvaluation(ToyQuadratic):
    """The toy whose evaluate() raises on its second call (step log_every): a run that raises mid-way."""

    calls = 0

    def evaluate(self):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("evaluate broke")
        return super().evaluate()
'''


@pytest.fixture(scope="module")
def wandb_env(tmp_path_factory) -> dict[str, str]:
    """Offline and silent, with every folder W&B writes to (cache, staging, settings) in tmp."""
    root = tmp_path_factory.mktemp("wandb_home")
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(root)}
    env |= {f"WANDB_{kind}_DIR": str(root / kind.lower()) for kind in ("CACHE", "DATA", "CONFIG")}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield env


def discograd(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m discograd ARGS`` in cwd, one torch thread (two run at a time)."""
    cwd.mkdir(parents=True, exist_ok=True)
    pythonpath = os.pathsep.join(filter(None, [str(cwd), os.environ.get("PYTHONPATH")]))  # cwd: failing_task.py
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=pythonpath)
    command = [sys.executable, "-m", "discograd", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(wandb_env, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """The two commands, run at once: (result, run or sweep directory) by name."""
    tmp = tmp_path_factory.mktemp("runs")
    (tmp / "sweep").mkdir()
    (tmp / "sweep" / "failing_task.py").write_text(FAILING_TASK)
    dirs = {"single": tmp / "single" / "run", "sweep": tmp / "sweep" / "mysweep"}
    tasks = "tasks.toy_quadratic.ToyQuadratic,failing_task.FailsAtSecondEvaluation"
    commands = {
        "single": ["logger=wandb", "steps=20", "probe.every=10", f"hydra.run.dir={dirs['single']}"],
        "sweep": ["-m", f"task._target_={tasks}", "logger=wandb", "logger.tags=[a,b]", "steps=10", "probe.every=5",
                  f"hydra.sweep.dir={dirs['sweep']}"],  # fmt: skip
    }
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(discograd, [*args, *SMALL], tmp / name) for name, args in commands.items()}
        return {name: (future.result(), dirs[name]) for name, future in futures.items()}


def records(path: Path) -> list:
    """The protobuf records of a run-ID.wandb file, in order."""
    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B", path
    out, chunks, pos = [], [], 7
    while pos + 7 <= len(data):
        room = block - pos % block
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        if room < 7 or (length == 0 and kind == 0):  # the zero padding that ends a block
            pos += room
            continue
        chunks.append(data[pos + 7 : pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):  # FULL, or LAST of FIRST, MIDDLE..., LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            out.append(record)
            chunks = []
    return out


class WandbRun:
    """What an offline run directory holds: its run record, history rows by step, summary,
    exit code, and its tables by key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (self.file,) = folder.glob("run-*.wandb")
        self.history: dict[int, dict] = {}
        self.summary: dict = {}
        self.run = self.exit_code = None
        for record in records(self.file):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                self.run = record.run
                self.config = {item.key: json.loads(item.value_json) for item in record.run.config.update}
            elif kind == "history":
                row = {"/".join([i.key] if i.key else i.nested_key): json.loads(i.value_json) for i in record.history.item}
                self.history.setdefault(row["_step"], {}).update(row)
            elif kind == "summary":
                self.summary |= {item.key: json.loads(item.value_json) for item in record.summary.update if item.key}
            elif kind == "exit":
                self.exit_code = record.exit.exit_code
        assert self.run is not None, f"{self.file} holds no run record"

    def table(self, key: str) -> pd.DataFrame:
        (path,) = (self.folder / "files" / "media" / "table").glob(f"{key}_*.table.json")
        content = json.loads(path.read_text())
        return pd.DataFrame(content["data"], columns=content["columns"])


def wandb_runs(run_dir: Path) -> list[WandbRun]:
    return [WandbRun(folder) for folder in sorted((run_dir / "wandb").glob("offline-run-*"))]


def assert_table_matches_stats(run: WandbRun, run_dir: Path) -> None:
    table, stats = run.table("stats"), pd.read_csv(run_dir / "stats.csv")
    assert list(table.columns) == list(stats.columns)
    assert len(table) == len(stats) > 0
    assert table["step"].tolist() == stats["step"].tolist()
    assert table["estimator"].tolist() == stats["estimator"].tolist()
    for column in ("bias_norm", "variance"):
        np.testing.assert_allclose(table[column].astype(float), stats[column], rtol=1e-12)


# ------------------------------------------------------------------------------ a single run


def test_single_run_logs_config_history_summary_and_stats_table(runs):
    result, run_dir = runs["single"]
    assert result.returncode == 0, result.stderr
    (run,) = wandb_runs(run_dir)
    assert run.run.run_group == "single"  # the run directory's parent
    assert run.run.job_type == "run" and run.run.project == "discograd"
    assert run.config["steps"] == 20 and run.config["logger"]["mode"] == "offline"
    assert run.config["estimator"]["_target_"] == "estimators.reinforce.Reinforce"
    stats, train = pd.read_csv(run_dir / "stats.csv"), pd.read_csv(run_dir / "train.csv")
    for row in stats.itertuples():
        assert run.history[row.step]["probe/variance"] == pytest.approx(row.variance, rel=1e-12)
    for row in train.itertuples():
        assert run.history[row.step]["train/exact_objective"] == pytest.approx(row.exact_objective, rel=1e-12)
    assert sorted(step for step, values in run.history.items() if "probe/bias_norm" in values) == [0, 10, 20]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert run.summary["status"] == "ok" and run.summary["config_id"] == summary["config_id"]
    assert run.summary["final_probe"]["reinforce"]["variance"] == pytest.approx(summary["final_probe"]["reinforce"]["variance"])
    assert run.exit_code == 0
    assert_table_matches_stats(run, run_dir)


# ------------------------------------------------------------------------------ a multirun


def sweep_jobs(runs) -> dict[str, tuple[Path, WandbRun]]:
    """The sweep's (job directory, its one W&B run) by task class name."""
    result, sweep_dir = runs["sweep"]
    assert result.returncode == 0, result.stderr  # a failing job does not stop the sweep
    jobs = {}
    for summary in sweep_dir.glob("*/summary.json"):
        (run,) = wandb_runs(summary.parent)
        jobs[run.config["task"]["_target_"].rpartition(".")[2]] = summary.parent, run
    assert sorted(jobs) == ["FailsAtSecondEvaluation", "ToyQuadratic"]
    return jobs


def test_multirun_gives_one_wandb_run_per_job_in_the_sweeps_group(runs):
    jobs = sweep_jobs(runs)
    for job, run in jobs.values():
        assert run.run.run_group == "mysweep" and list(run.run.tags) == ["a", "b"]
        assert f"task._target_={run.config['task']['_target_']}" in run.run.display_name  # the job's overrides
        assert_table_matches_stats(run, job)
    job, run = jobs["ToyQuadratic"]
    assert run.exit_code == 0 and run.summary["status"] == "ok"
    assert sorted(step for step, values in run.history.items() if "probe/variance" in values) == [0, 5, 10]


def test_a_run_that_raises_still_finishes_its_wandb_run(runs):
    job, run = sweep_jobs(runs)["FailsAtSecondEvaluation"]
    assert run.exit_code == 1
    assert run.summary["status"] == "failed" and run.summary["error"] == "evaluate broke"
    assert json.loads((job / "summary.json").read_text())["status"] == "failed"
    assert_table_matches_stats(run, job)  # the probe at step 0 ran before evaluate raised at step 5


# ------------------------------------------------------------------------------ in-process


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[*SMALL, *overrides])


def test_logger_none_writes_no_wandb_files(tmp_path):
    cfg = config("steps=5")
    assert type(make_logger(cfg, tmp_path)) is Logger
    assert run_job(cfg, tmp_path)["status"] == "ok"
    assert not [p for p in tmp_path.rglob("*") if "wandb" in p.name]


@pytest.mark.parametrize(
    "override, message",
    [("logger.mode=online_please", "unknown logger.mode 'online_please'; valid: online, offline, disabled"),
     ("logger.tags=nope", "logger.tags must be a list, e.g. logger.tags=[a,b], got 'nope'")],
)  # fmt: skip
def test_preflight_rejects_bad_logger_knobs(override, message):
    with pytest.raises(ConfigError) as error:
        preflight(["-m", "seed=0,1", "logger=wandb", override])
    assert str(error.value) == message


def test_log_report_logs_figures_and_summary_as_one_run_of_the_group(wandb_env, tmp_path):
    figure = tmp_path / "figures" / "variance.png"
    figure.parent.mkdir()
    plt.imsave(figure, np.eye(8))
    summary = pd.DataFrame({"estimator": ["reinforce", "st"], "variance": [0.25, math.nan]})
    sweep = {"seed": 0, "logger": {"name": "wandb", "tags": ["report"]}}
    log_report("mysweep", {"variance": figure}, summary, sweep, tmp_path / "report")
    wandb.teardown()  # the W&B service writes a run's .wandb file out in its own time; this waits for it
    (run,) = wandb_runs(tmp_path / "report")
    assert run.run.run_group == "mysweep" and run.run.job_type == "report" and list(run.run.tags) == ["report"]
    assert run.config["seed"] == 0 and run.exit_code == 0
    assert list((run.folder / "files" / "media" / "images" / "figures").glob("variance_*.png"))
    table = run.table("summary")
    assert table["estimator"].tolist() == ["reinforce", "st"]
    assert table["variance"].iloc[0] == 0.25 and pd.isna(table["variance"].iloc[1])
