"""End-to-end tests of the ``discograd`` command line (discograd/cli.py, preflight.py, run.py,
callbacks.py), run as subprocesses ``python -m discograd ...`` in temporary folders:

- a single run writes exactly .hydra/, stats.csv, train.csv, summary.json (+ Hydra's log), with the
  documented columns, one stats row per probe, CIs around their values, and no leftover temp files;
- a 2x2 multirun writes 4 jobs (temperature empty for reinforce) and prints the results table;
- bad input exits 2 with one last "discograd: error:" line naming the value, no traceback and no
  job run; a sweep with one bad value fails before its first job (preflight);
- the same seed gives the same files except timing columns, also for a job run after another
  one in the same process; another seed differs;
- a sweep goes on after a failing job (device=cuda without CUDA);
- a run whose objective becomes NaN is recorded as diverged, without a traceback;
- Hydra's own flags (--cfg job) pass through preflight.

Starting a process costs seconds (torch, Hydra), so each command runs once, in a module-scoped
fixture shared by the tests that read its files; independent commands run two at a time.
"""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

CUDA = torch.cuda.is_available()
needs_no_cuda = pytest.mark.skipif(CUDA, reason="checks the error for a missing GPU; this machine has CUDA")

STATS_COLUMNS = [
    "step", "estimator", "task", "family", "temperature", "samples",
    "bias_norm", "bias_norm_lo", "bias_norm_hi", "relative_bias",
    "variance", "variance_lo", "variance_hi", "mse", "snr", "cosine",
    "evaluations", "seconds_per_estimate", "work_normalized_variance", "reference",
]  # fmt: skip
TRAIN_COLUMNS = ["step", "objective", "train_seconds", "probe_seconds", "exact_objective"]
TIMING = {"stats": {"seconds_per_estimate", "warmup_seconds"}, "train": {"train_seconds", "probe_seconds"}}


# ---------------------------------------------------------------------------------- helpers


@dataclass
class Result:
    args: list[str]
    cwd: Path
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def last_error_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def __str__(self) -> str:  # the assertion message: what ran and what it printed
        return f"discograd {' '.join(self.args)} -> {self.rc}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def discograd(args: list[str], cwd: Path, pythonpath: Path | None = None) -> Result:
    """``python -m discograd ARGS`` in cwd, unbuffered, one torch thread (two run at a time)."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("HYDRA_FULL_ERROR", None)  # it changes what a failing composition prints
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "discograd", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    return Result(args, cwd, proc.returncode, proc.stdout, proc.stderr)


def in_parallel(*calls: tuple) -> list[Result]:
    """discograd(*call) for each call, two at a time (the machine has two cores)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda call: discograd(*call), calls))


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def read_summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def overrides(folder: Path) -> dict[str, str]:
    """The job's command-line overrides, from .hydra/overrides.yaml, as key -> value."""
    lines = OmegaConf.to_container(OmegaConf.load(folder / ".hydra" / "overrides.yaml"))
    return dict(line.split("=", 1) for line in lines)


def job_folders(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").exists())


def leftover_temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]


def without(rows: list[dict[str, str]], columns: set[str]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in columns} for row in rows]


def steps(rows: list[dict[str, str]]) -> list[int]:
    return [int(row["step"]) for row in rows]


# --------------------------------------------------------------------------- a single run

SINGLE = ["task=toy_quadratic", "estimator=gumbel_softmax", "temperature=0.5", "steps=20", "probe.every=10", "probe.samples=200"]


@pytest.fixture(scope="module")
def single_run(tmp_path_factory) -> tuple[Result, Path]:
    tmp = tmp_path_factory.mktemp("single")
    run_dir = tmp / "run"
    return discograd([*SINGLE, f"hydra.run.dir={run_dir}"], tmp), run_dir


def test_single_run_writes_exactly_its_files(single_run):
    result, run_dir = single_run
    assert result.rc == 0, str(result)
    assert "Traceback" not in result.output, str(result)
    names = set(os.listdir(run_dir))
    logs = {n for n in names if n.endswith(".log")}
    assert len(logs) <= 1, names
    assert names - logs == {".hydra", "stats.csv", "train.csv", "summary.json"}
    assert {"config.yaml", "overrides.yaml"} <= set(os.listdir(run_dir / ".hydra"))
    config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert config.temperature == 0.5 and config.steps == 20 and config.probe.samples == 200
    assert overrides(run_dir)["estimator"] == "gumbel_softmax"
    assert leftover_temp_files(result.cwd) == []


def test_single_run_stats_csv(single_run):
    _, run_dir = single_run
    columns, rows = read_csv(run_dir / "stats.csv")
    missing = [c for c in STATS_COLUMNS if c not in columns]
    assert not missing, f"stats.csv lacks {missing}; has {columns}"
    assert steps(rows) == [0, 10, 20]  # step 0, every 10, the end
    for row in rows:
        assert (row["estimator"], row["task"], row["family"]) == ("gumbel_softmax", "toy_quadratic", "bernoulli")
        assert row["reference"] == "exact"
        assert float(row["temperature"]) == 0.5
        assert int(row["samples"]) == 200
        assert int(row["evaluations"]) == 1
        for name in ("bias_norm", "variance"):
            lo, value, hi = (float(row[f"{name}{s}"]) for s in ("_lo", "", "_hi"))
            assert all(map(math.isfinite, (lo, value, hi))), row
            assert lo <= value <= hi, (name, row)
        assert float(row["variance"]) > 0 and math.isfinite(float(row["mse"]))
        assert float(row["seconds_per_estimate"]) > 0
        # cost-normalized with f evaluations, not seconds: deterministic
        assert float(row["work_normalized_variance"]) == pytest.approx(float(row["variance"]) * int(row["evaluations"]))


def test_single_run_train_csv_and_summary(single_run):
    _, run_dir = single_run
    columns, rows = read_csv(run_dir / "train.csv")
    missing = [c for c in TRAIN_COLUMNS if c not in columns]
    assert not missing, f"train.csv lacks {missing}; has {columns}"
    logged = steps(rows)
    assert logged[0] == 0 and logged[-1] == 20 and logged == sorted(set(logged))
    assert all(math.isfinite(float(row["exact_objective"])) for row in rows)
    assert all(float(row["train_seconds"]) >= 0 and float(row["probe_seconds"]) >= 0 for row in rows)
    # probes at steps 0, 10, 20: the probe clock has run by step 0's row, and only then grows at probes
    probe_clock = [float(row["probe_seconds"]) for row in rows]
    assert probe_clock[0] > 0 and probe_clock == sorted(probe_clock)
    summary = read_summary(run_dir)
    assert summary["status"] == "ok", summary
    assert summary["error"] is None
    assert summary["estimator"] == "gumbel_softmax" and summary["temperature"] == 0.5


# ------------------------------------------------------------------------------ a multirun

MULTI = ["-m", "task=toy_quadratic", "estimator=reinforce,gumbel_softmax", "temperature=0.1,1.0",
         "steps=10", "probe.every=5", "probe.samples=100"]  # fmt: skip


@pytest.fixture(scope="module")
def multirun(tmp_path_factory) -> tuple[Result, Path]:
    tmp = tmp_path_factory.mktemp("multi")
    sweep_dir = tmp / "sweep"
    return discograd([*MULTI, f"hydra.sweep.dir={sweep_dir}"], tmp), sweep_dir


def test_multirun_writes_every_job(multirun):
    result, sweep_dir = multirun
    assert result.rc == 0, str(result)
    assert "Traceback" not in result.output, str(result)
    jobs = job_folders(sweep_dir)
    asked = sorted((overrides(j)["estimator"], float(overrides(j)["temperature"])) for j in jobs)
    assert asked == [("gumbel_softmax", 0.1), ("gumbel_softmax", 1.0), ("reinforce", 0.1), ("reinforce", 1.0)]
    for job in jobs:
        assert read_summary(job)["status"] == "ok", read_summary(job)
        columns, rows = read_csv(job / "stats.csv")
        assert [c for c in STATS_COLUMNS if c not in columns] == []
        assert steps(rows) == [0, 5, 10]
        estimator, temperature = overrides(job)["estimator"], float(overrides(job)["temperature"])
        assert {row["estimator"] for row in rows} == {estimator}
        if estimator == "reinforce":  # no temperature: the column is empty, whatever the sweep said
            assert all(row["temperature"] == "" for row in rows), rows
        else:
            assert all(float(row["temperature"]) == temperature for row in rows), rows
    assert leftover_temp_files(sweep_dir) == []


def test_multirun_reinforce_ignores_temperature(multirun):
    """The results table shows reinforce once because its jobs at two temperatures measured the
    same thing with the same seed (one config_id; only the overrides that say so differ);
    check that they did."""
    _, sweep_dir = multirun
    rows = {
        float(overrides(j)["temperature"]): without(read_csv(j / "stats.csv")[1], TIMING["stats"] | {"overrides"})
        for j in job_folders(sweep_dir)
        if overrides(j)["estimator"] == "reinforce"
    }
    assert rows[0.1] == rows[1.0]


def test_multirun_prints_results_table(multirun):
    result, sweep_dir = multirun
    lines = result.stdout.splitlines()
    title = ("Gradient estimates at steps 0 and 10 (100 draws each, reference: exact); "
             "mean over seeds [95% CI], by MSE @10 within a task")
    assert title in lines, str(result)
    start = lines.index(title)
    header = lines[start + 1]
    for column in ("task", "estimator", "temp", "seeds", "bias norm @0", "bias norm @10", "variance @0", "variance @10",
                   "MSE @0", "MSE @10"):  # fmt: skip
        assert column in header, header
    rows = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        rows.append(line)
    # reinforce's two jobs differ only in the temperature it ignores: one row; gumbel_softmax: one per temperature
    assert sum("reinforce" in row for row in rows) == 1, rows
    gumbel = [row for row in rows if "gumbel_softmax" in row]
    assert len(gumbel) == 2 and len(rows) == 3, rows
    end = header.index("temp") + len("temp")  # to_string right-aligns a column under its name
    assert sorted(row[:end].split()[-1] for row in gumbel) == ["0.1", "1"], rows
    assert all(row.count("[") == 4 for row in rows), rows  # both CIs at both steps
    assert "did not finish ok" not in result.stdout
    assert f"files: {sweep_dir}" in lines


def test_every_estimator_runs_on_the_mrf(tmp_path):
    """issue 3: `discograd task=mrf estimator=...` for each estimator; the exact gradient is the
    reference and train.csv carries the true KL(q || p) (positive) from the exact log Z."""
    estimators = ["reinforce", "st", "sigmoid_st", "gumbel_softmax", "st_gumbel_softmax"]
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "task=mrf", f"estimator={','.join(estimators)}", "temperature=0.5", "steps=10", "probe.every=5",
            "probe.samples=100", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    result = discograd(args, tmp_path)
    assert result.rc == 0, str(result)
    jobs = job_folders(sweep_dir)
    assert sorted(overrides(j)["estimator"] for j in jobs) == sorted(estimators)
    for job in jobs:
        assert read_summary(job)["status"] == "ok"
        _, stats = read_csv(job / "stats.csv")
        assert steps(stats) == [0, 5, 10] and {row["reference"] for row in stats} == {"exact"}
        assert {(row["task"], row["family"]) for row in stats} == {("mrf", "categorical")}
        _, train = read_csv(job / "train.csv")
        assert all(float(row["kl"]) > 0 and math.isfinite(float(row["log_z"])) for row in train)


# ------------------------------------------------------------------------------ bad input

BERNOULLI_ONLY = '''\
from estimators.reinforce import Reinforce


class BernoulliOnly(Reinforce):
    """A user's estimator that supports bernoulli latents only."""

    families = frozenset({"bernoulli"})
'''

# name: (arguments, what the error line must name, caught by preflight before any job starts)
BAD = {
    "unknown-estimator": (["estimator=foo"], ["'foo'", "gumbel_softmax"], True),
    "unknown-task": (["task=foo"], ["'foo'", "toy_quadratic"], True),
    "temperature-zero": (["temperature=0"], ["temperature", "got 0"], True),
    "temperature-negative": (["temperature=-1"], ["temperature", "-1"], True),
    "one-probe-sample": (["probe.samples=1"], ["probe.samples", "got 1"], True),
    "loo-one-sample": (
        ["estimator=reinforce", "estimator.baseline=loo", "estimator.num_samples=1"], ["num_samples", "loo", "got 1"], True
    ),
    "family-mismatch": (
        ["task.family=categorical", "task.classes=3", "estimator._target_=mybern.BernoulliOnly"],
        ["bernoulli", "categorical"],
        True,
    ),
    "multirun-one-bad-value": (["-m", "estimator=st,foo"], ["'foo'", "gumbel_softmax"], True),
    "mrf-one-class": (["task=mrf", "task.classes=1"], ["classes", ">= 2", "got 1"], True),
    "mrf-empty-grid": (["task=mrf", "task.width=0"], ["width", ">= 1", "got 0"], True),
    "mrf-too-large-for-exact-log-z": (
        ["task=mrf", "task.height=12", "task.width=12"], ["2^20", "2^10", "H=12, W=12, K=2", "exact_log_z=false"], True
    ),
    "mrf-bad-task-value-in-a-sweep": (["-m", "task=mrf", "task.height=3,0"], ["height", "got 0"], True),
    "typo-added-top-level-key": (["+stpes=10"], ["unknown key stpes", "did you mean steps?"], True),
    "typo-added-group": (["+estimatr=st"], ["unknown key estimatr", "did you mean estimator?"], True),
    "typo-added-probe-knob": (["+probe.sampels=10"], ["unknown key probe.sampels", "did you mean probe.samples?"], True),
    "knob-nan": (["task.init_logit=nan"], ["task.init_logit", "finite", "nan"], True),
    "knob-inf-in-a-sweep": (["-m", "task=mrf", "task.field_scale=1,inf"], ["task.field_scale", "finite", "inf"], True),
    "probe-max-memory-negative": (["probe.max_memory=-1"], ["probe.max_memory", "got -1"], True),
    "probe-save-draws-not-bool": (["probe.save_draws=maybe"], ["probe.save_draws", "'maybe'"], True),
    # what an estimator can know about the task before work: exact's enumeration (was 55 s and 4.6 GB, then a MemoryError)
    "exact-on-the-binary-vae": (["estimator=exact", "task=binary_vae"], ["estimator 'exact'", "4096", "2^200"], True),
    "exact-in-the-basket": (["task=binary_vae", "probe.estimators=[exact]"], ["probe.estimators entry 'exact'", "2^200"], True),
    "run-dir-cannot-be-made": (["hydra.run.dir=/proc/x"], ["hydra.run.dir=/proc/x", "cannot write the output directory"], True),
    "run-dir-under-a-file": (["hydra.run.dir=/etc/hostname/run"], ["hydra.run.dir=/etc/hostname/run", "Not a directory"], True),
    "sweep-dir-cannot-be-made": (["-m", "seed=0,1", "hydra.sweep.dir=/proc/y"], ["hydra.sweep.dir=/proc/y", "cannot write"], True),
    # the memory plan needs P, known once the job has built its task (before any draw or step)
    "probe-does-not-fit": (["task.dims=1000000", "probe.max_memory=0.01"], ["P=1000000", "GiB", "probe.max_memory"], False),
    # device availability is checked by the job itself (a sweep over cpu,cuda finishes the cpu job)
    "cuda-unavailable": (["device=cuda"], ["cuda"], False),
}
CASES = [pytest.param(name, id=name, marks=[needs_no_cuda] if name == "cuda-unavailable" else []) for name in BAD]


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory) -> dict[str, Result]:
    """Every bad command, each in its own folder; small steps so that a wrongly accepted one is quick."""
    calls, names = [], [name for name in BAD if not (name == "cuda-unavailable" and CUDA)]
    for name in names:
        cwd = tmp_path_factory.mktemp(name)
        (cwd / "mybern.py").write_text(BERNOULLI_ONLY)
        common = ["steps=2", "probe.every=1", "probe.samples=20", f"hydra.run.dir={cwd / 'run'}", f"hydra.sweep.dir={cwd / 'sweep'}"]
        calls.append(([*common, *BAD[name][0]], cwd, cwd if name == "family-mismatch" else None))
    return dict(zip(names, in_parallel(*calls)))


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_error_line(bad_runs, name):
    result, (_, named, preflight) = bad_runs[name], BAD[name]
    assert result.rc == 2, str(result)
    assert "Traceback" not in result.output, str(result)
    last = result.last_error_line()
    assert last.startswith("discograd: error:"), str(result)
    for text in named:
        assert text in last, (text, last)
    assert list(result.cwd.rglob("stats.csv")) == [], "a job ran"
    if preflight:  # rejected before Hydra started any job
        assert list(result.cwd.rglob("summary.json")) == [], "a job started"
        assert not (result.cwd / "sweep").exists()


def test_family_mismatch_names_the_users_class(bad_runs):
    """The error should name mybern.BernoulliOnly, not 'reinforce' (which supports categorical)."""
    last = bad_runs["family-mismatch"].last_error_line()
    assert "BernoulliOnly" in last and "'reinforce'" not in last, last


# ---------------------------------------------------------------------------- reproducibility

SEEDED = ["task=toy_quadratic", "estimator=reinforce", "estimator.baseline=moving_average",
          "steps=10", "probe.every=5", "probe.samples=100"]  # fmt: skip


@pytest.fixture(scope="module")
def seeded_runs(tmp_path_factory) -> dict[str, Path]:
    """seed=3 as a single run; seed=4 then seed=3 as two jobs of one multirun process, so that the
    second seed=3 run also checks that nothing carries over from the job before it."""
    tmp = tmp_path_factory.mktemp("seeded")
    single, multi = in_parallel(
        ([*SEEDED, "seed=3", f"hydra.run.dir={tmp / 'single'}"], tmp),
        (["-m", *SEEDED, "seed=4,3", f"hydra.sweep.dir={tmp / 'sweep'}"], tmp),
    )
    assert single.rc == 0, str(single)
    assert multi.rc == 0, str(multi)
    jobs = {overrides(j)["seed"]: j for j in job_folders(tmp / "sweep")}
    assert sorted(jobs) == ["3", "4"]
    return {"3": tmp / "single", "3 after 4": jobs["3"], "4": jobs["4"]}


def test_same_seed_same_files(seeded_runs):
    for kind in ("stats", "train"):
        columns_a, rows_a = read_csv(seeded_runs["3"] / f"{kind}.csv")
        columns_b, rows_b = read_csv(seeded_runs["3 after 4"] / f"{kind}.csv")
        assert columns_a == columns_b
        assert rows_a and without(rows_a, TIMING[kind]) == without(rows_b, TIMING[kind]), kind
    assert read_summary(seeded_runs["3"])["metrics"] == read_summary(seeded_runs["3 after 4"])["metrics"]


def test_other_seed_other_files(seeded_runs):
    for kind, columns in (("stats", TIMING["stats"] | {"seed"}), ("train", TIMING["train"])):
        a = without(read_csv(seeded_runs["3"] / f"{kind}.csv")[1], columns)
        b = without(read_csv(seeded_runs["4"] / f"{kind}.csv")[1], columns)
        assert len(a) == len(b) and a != b, kind
    stats_3, stats_4 = (read_csv(seeded_runs[s] / "stats.csv")[1] for s in ("3", "4"))
    assert [r["variance"] for r in stats_3] != [r["variance"] for r in stats_4]  # the probe draws depend on the seed


# ------------------------------------------------------------------- failing and diverging jobs


@needs_no_cuda
def test_sweep_goes_on_after_a_failing_job(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = discograd(
        ["-m", "device=cpu,cuda", "steps=4", "probe.every=2", "probe.samples=50", f"hydra.sweep.dir={sweep_dir}"], tmp_path
    )
    assert result.rc == 0, str(result)
    jobs = {overrides(j)["device"]: j for j in job_folders(sweep_dir)}
    assert sorted(jobs) == ["cpu", "cuda"]
    failed = read_summary(jobs["cuda"])
    assert failed["status"] == "failed" and "cuda" in failed["error"], failed
    assert not (jobs["cuda"] / "stats.csv").exists()
    assert read_summary(jobs["cpu"])["status"] == "ok"
    assert steps(read_csv(jobs["cpu"] / "stats.csv")[1]) == [0, 2, 4]
    assert "1 of 2 runs did not finish ok" in result.stdout, str(result)  # the end-of-sweep table lists it
    assert "Traceback" not in result.output, str(result)


def test_nan_objective_is_recorded_as_diverged(tmp_path):
    """target=1e30 makes f = (z - t)^2 overflow float32 to inf (NaN knobs are refused before
    work). A diverged single run is recorded, and exits 3: not ok, not a usage error."""
    run_dir = tmp_path / "run"
    result = discograd(["task.target=1e30", "steps=5", "probe.samples=50", f"hydra.run.dir={run_dir}"], tmp_path)
    assert result.rc == 3, str(result)
    assert "Traceback" not in result.output, str(result)
    summary = read_summary(run_dir)
    assert summary["status"] == "diverged", summary
    assert summary["error_type"] == "Diverged" and "not finite" in summary["error"], summary
    assert "diverged" in result.stdout  # the run's table lists it
    assert leftover_temp_files(tmp_path) == []


def test_an_objective_that_explodes_without_nan_is_flagged(tmp_path):
    """lr=1e10 sends the binary VAE's objective to 1e35 and its train -ELBO to inf with no NaN
    or inf in the training objective or the gradients: the run ends ok, but says it most likely
    diverged, in summary.json and in its log."""
    run_dir = tmp_path / "run"
    args = ["task=binary_vae", "task.dims=10", "task.lr=1e10", "steps=100", "log_every=50", "probe.every=0",
            "probe.samples=20", f"hydra.run.dir={run_dir}"]  # fmt: skip
    result = discograd(args, tmp_path)
    assert result.rc == 0, str(result)
    summary = read_summary(run_dir)
    assert summary["status"] == "ok" and "most likely diverged" in summary["warning"], summary
    assert "run ended ok, but" in result.output  # Hydra logs to stdout
    quiet = read_summary_of_a_normal_run(tmp_path / "normal")
    assert quiet["status"] == "ok" and quiet["warning"] is None


def read_summary_of_a_normal_run(run_dir: Path) -> dict:
    result = discograd(["steps=20", "probe.samples=50", f"hydra.run.dir={run_dir}"], run_dir.parent)
    assert result.rc == 0, str(result)
    return read_summary(run_dir)


# ------------------------------------------------------------------------------ Hydra's flags


def test_hydra_flags_pass_through_preflight(tmp_path):
    result = discograd(["--cfg", "job", "estimator=gumbel_softmax", "temperature=0.3"], tmp_path)
    assert result.rc == 0, str(result)
    assert "discograd: error" not in result.output, str(result)
    config = OmegaConf.create(result.stdout)
    assert config.estimator._target_ == "estimators.gumbel_softmax.GumbelSoftmax"
    assert config.temperature == 0.3
    assert list(tmp_path.rglob("summary.json")) == []  # printed, not run


def test_version_names_discograd(tmp_path):
    result = discograd(["--version"], tmp_path)
    assert result.rc == 0 and result.output.startswith("discograd "), str(result)
    assert "Hydra" in result.output
