"""The report (analysis/): schema checks on load, aggregation over seeds, figures whose legends
never cover data, and one end-to-end sweep (two seeds, a device sweep whose cuda job fails on
this CPU-only machine) that ends by writing report.html, which headless Chromium must render
with every figure loaded.
"""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from scipy import stats as scipy_stats

from analysis.aggregate import summarize
from analysis.collect import collect
from analysis.figures import all_figures
from analysis.report import problem_runs, write_report
from analysis.schema import STATS, SchemaError
from analysis.tables import format_results
from discograd.report import main as report_main
from test_cli import CUDA, discograd, job_folders

FIGURES = ["variance_vs_temperature", "bias_vs_temperature", "bias_variance_plane", "work_normalized_variance",
           "training_vs_step", "training_vs_seconds", "variance_along_training"]  # fmt: skip


# ------------------------------------------------------------------ synthetic runs, no CLI


def stats_row(**values) -> dict:
    row = {c: 1.0 for c in STATS.names}
    row |= {"step": 0, "config_id": "c0", "overrides": "", "estimator": "st", "knobs": "", "task": "toy_quadratic",
            "family": "bernoulli", "temperature": np.nan, "learned_temperature": np.nan, "eta": np.nan, "alpha": np.nan, "beta": np.nan,
            "samples": 100, "reference": "exact", "reference_samples": None, "warning": "", "seed": 0, "device": "cpu",
            "evaluations": 1}  # fmt: skip
    return STATS.row(row | values)


def write_run(folder: Path, rows: list[dict], status: str = "ok", error: str | None = None, **summary) -> None:
    folder.mkdir(parents=True)
    if rows:  # a run that failed before its first probe has no stats.csv
        pd.DataFrame(rows).to_csv(folder / "stats.csv", index=False)
    pd.DataFrame({"step": [0, 1], "config_id": "c0", "overrides": "", "seed": 0, "objective": [1.0, 0.5],
                  "temperature": [np.nan] * 2, "learned_temperature": np.nan, "eta": np.nan, "alpha": np.nan, "beta": np.nan, "train_seconds": [0.0, 0.1],
                  "probe_seconds": [0.2, 0.2],
                  "exact_objective": [0.3, 0.2]}).to_csv(folder / "train.csv", index=False)  # fmt: skip
    fields = {"status": status, "error": error, "error_type": None, "config_id": rows[0]["config_id"] if rows else "c0",
              "overrides": "", "task": "toy_quadratic", "estimator": rows[0]["estimator"] if rows else "st",
              "temperature": None, "seed": rows[0]["seed"] if rows else 0, "device": "cpu", "seconds": 1.0}  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(fields | summary))


def test_seeds_aggregate_to_a_t_interval(tmp_path):
    variances = [1.0, 1.4, 0.9, 1.3]
    for seed, v in enumerate(variances):
        write_run(tmp_path / f"s{seed}", [stats_row(seed=seed, variance=v)])
    summary = summarize(collect(tmp_path).stats)
    assert len(summary) == 1 and summary["seeds"].item() == 4
    half = scipy_stats.t.ppf(0.975, 3) * np.std(variances, ddof=1) / 2
    assert summary["variance"].item() == pytest.approx(np.mean(variances))
    assert summary["variance_hi"].item() == pytest.approx(np.mean(variances) + half)


def test_bias_norm_over_seeds_comes_from_the_unbiased_bias_sq(tmp_path):
    """Three seeds of an unbiased estimator: bias_sq -0.04, -0.04, 0.02 (norms 0, 0, 0.141).
    The mean of the clipped norms (0.047) is biased up; the pooled norm is sqrt(max(mean bias_sq, 0)) = 0,
    and the warnings of the seeds are listed."""
    for seed, b2 in enumerate([-0.04, -0.04, 0.02]):
        row = stats_row(seed=seed, bias_sq=b2, bias_norm=np.sqrt(max(b2, 0)), bias_norm_lo=0.0, bias_norm_hi=0.3,
                        warning="two distinct draws: x" if seed == 2 else "")  # fmt: skip
        write_run(tmp_path / f"s{seed}", [row])
    summary = summarize(collect(tmp_path).stats)
    assert summary["bias_sq"].item() == pytest.approx(-0.02)
    assert summary["bias_norm"].item() == 0.0 and summary["bias_norm_lo"].item() == 0.0
    half = scipy_stats.t.ppf(0.975, 2) * np.std([-0.04, -0.04, 0.02], ddof=1) / np.sqrt(3)
    assert summary["bias_norm_hi"].item() == pytest.approx(max(np.sqrt(-0.02 + half), 0.3))
    assert summary["warning"].item() == "1 of 3 seeds: two distinct draws: x"


def test_one_seed_keeps_the_probes_own_interval_and_duplicates_count_once(tmp_path):
    # reinforce ignores temperature: two jobs at two temperatures wrote the same measurement
    row = stats_row(estimator="reinforce", variance=2.0, variance_lo=1.5, variance_hi=2.5)
    write_run(tmp_path / "a", [row])
    write_run(tmp_path / "b", [row])
    summary = summarize(collect(tmp_path).stats)
    assert len(summary) == 1 and summary["seeds"].item() == 1
    assert (summary["variance_lo"].item(), summary["variance_hi"].item()) == (1.5, 2.5)


def test_a_missing_column_is_an_error_naming_the_file(tmp_path):
    row = stats_row()
    del row["variance"]
    write_run(tmp_path / "broken", [row])
    with pytest.raises(SchemaError, match=r"broken/stats.csv lacks column\(s\) variance"):
        collect(tmp_path)


def test_failed_runs_are_kept_with_their_error(tmp_path):
    write_run(tmp_path / "good", [stats_row()])
    write_run(tmp_path / "bad", [], status="failed", error="cuda is not available here")
    runs = collect(tmp_path).runs
    assert sorted(runs["status"]) == ["failed", "ok"]
    assert runs.loc[runs["status"] == "failed", "error"].item() == "cuda is not available here"


DIVERGED = "the objective grew from 512 to 7e33 without becoming non-finite: it likely diverged"


def test_a_run_that_finished_ok_with_a_warning_is_listed_with_it(tmp_path, capsys):
    """summary.json's optional warning: a run that says ok but likely diverged is listed with
    the failed ones (status ok, its warning shown); a null warning, or none (an older
    summary), lists nothing."""
    write_run(tmp_path / "warned", [stats_row(config_id="c1")], warning=DIVERGED)
    write_run(tmp_path / "quiet", [stats_row(config_id="c2")], warning=None)
    write_run(tmp_path / "older", [stats_row(config_id="c3")])
    write_run(tmp_path / "bad", [], status="failed", error="cuda is not available here")
    collection = collect(tmp_path)
    listed = problem_runs(collection)
    assert list(zip(listed["run"], listed["status"], listed["warning"])) == [
        ("bad", "failed", ""), ("warned", "ok", DIVERGED)]  # fmt: skip
    text = format_results(collection.stats, collection.runs)
    assert f"1 of 4 runs finished ok with a warning:\n  warned: {DIVERGED}" in text, text
    page = write_report([tmp_path])[0].read_text()
    problems = page.split("Runs that did not finish ok")[1].split("<h2>")[0]
    assert "<td>warned</td>" in problems and "<td>ok</td>" in problems and DIVERGED in problems
    assert "quiet" not in problems and "older" not in problems
    report_main([str(tmp_path), "--out", str(tmp_path / "again")])  # the CLI's last line counts it
    assert "4 runs (1 did not finish ok, 1 finished ok with a warning); report:" in capsys.readouterr().out


def test_legends_never_cover_data(tmp_path):
    """Every figure's legend box lies outside every axes box."""
    for estimator, temperature in [("gumbel_softmax", 0.1), ("gumbel_softmax", 1.0), ("st", np.nan), ("sigmoid_st", 0.5)]:
        for task in ("toy_quadratic", "mrf"):
            name = f"{task}-{estimator}-{temperature}"  # one configuration each (config_id)
            overrides = f"task={task} estimator={estimator}"
            overrides += f" temperature={temperature}" if temperature > 0 else ""
            rows = [stats_row(config_id=name, overrides=overrides, estimator=estimator, task=task,
                              temperature=temperature, step=s, variance=1 + s, bias_norm=0.1)
                    for s in (0, 5)]  # fmt: skip
            write_run(tmp_path / name, rows)
    collection = collect(tmp_path)
    summary = summarize(collection.stats)
    assert len(summary) == 16 and set(summary["seeds"]) == {1}  # 8 configurations x 2 steps
    figures = all_figures(summary, collection.train)
    assert sorted(figures) == sorted(FIGURES)
    for name, fig in figures.items():
        assert isinstance(fig, Figure)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for legend in fig.legends:
            box = legend.get_window_extent(renderer)
            for ax in fig.axes:
                assert not box.overlaps(ax.get_window_extent(renderer)), name


# ---------------------------------------------------------- one real sweep, end to end


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, object]:
    """2 estimators x 2 temperatures x 2 seeds on cpu, plus the same on cuda (failing here)."""
    tmp = tmp_path_factory.mktemp("report")
    root = tmp / "sweep"
    devices = "cpu" if CUDA else "cpu,cuda"
    args = ["-m", "estimator=reinforce,gumbel_softmax", "temperature=0.5,1.0", "seed=0,1", f"device={devices}",
            "steps=6", "probe.every=3", "probe.samples=100", "log_every=2", "report=true", f"hydra.sweep.dir={root}"]  # fmt: skip
    return root, discograd(args, tmp)


def test_sweep_ends_by_writing_the_report(sweep):
    root, result = sweep
    assert result.rc == 0, str(result)
    assert f"report: {root / 'report' / 'report.html'}" in result.stdout
    for name in FIGURES:
        for kind in ("png", "svg"):
            assert (root / "report" / "figures" / f"{name}.{kind}").stat().st_size > 1000, (name, kind)
    summary = pd.read_csv(root / "report" / "summary.csv")
    assert {"bias_norm", "bias_norm_lo", "bias_norm_hi", "variance", "variance_lo", "variance_hi", "seeds"} <= set(summary.columns)
    assert set(summary["seeds"]) == {2}  # two seeds per configuration, reinforce's temperatures counted once
    assert sorted(summary.loc[summary["step"] == 0, "estimator"]) == ["gumbel_softmax", "gumbel_softmax", "reinforce"]
    page = (root / "report" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(FIGURES)
    assert "hydra" in page and "torch" in page  # the sweep's config and the environment
    assert (root / "report" / "report.md").read_text().count("](figures/") == len(FIGURES)


@pytest.mark.skipif(CUDA, reason="the device sweep's cuda job fails only without CUDA")
def test_device_sweep_records_the_cuda_jobs_as_failed(sweep):
    root, _ = sweep
    runs = collect(root).runs
    assert len(runs) == 16 and len(job_folders(root)) == 16
    assert set(runs.loc[runs["device"] == "cpu", "status"]) == {"ok"}
    failed = runs[runs["device"] == "cuda"]
    assert set(failed["status"]) == {"failed"} and failed["error"].str.contains("cuda").all()
    page = (root / "report" / "report.html").read_text()
    assert "Runs that did not finish ok" in page and page.count("<td>failed</td>") == 8


def test_report_command_and_its_errors(sweep, tmp_path):
    root, _ = sweep
    out = tmp_path / "again"
    done = subprocess.run([sys.executable, "-m", "discograd.report", str(root), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"report: {out / 'report.html'}" in done.stdout
    missing = subprocess.run([sys.executable, "-m", "discograd.report", str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("discograd-report: error: no such run or sweep directory")
    (tmp_path / "empty").mkdir()
    empty = subprocess.run([sys.executable, "-m", "discograd.report", str(tmp_path / "empty")], capture_output=True, text=True)
    assert empty.returncode == 2 and empty.stderr.strip() == f"discograd-report: error: no runs found under {tmp_path / 'empty'} (no summary.json in it or below)"
    assert not (tmp_path / "empty" / "report").exists()


BENCHMARK = yaml.safe_load((Path(__file__).parents[1] / "conf" / "experiment" / "benchmark.yaml").read_text())
BENCHMARK = BENCHMARK["hydra"]["sweeper"]["params"]  # what experiment=benchmark sweeps


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> tuple[Path, object]:
    """``-m experiment=benchmark`` (report=true) shrunk: its sweep less the task and estimators
    the command line sets (1 task x 2 estimators x the experiment's temperatures), no basket."""
    tmp = tmp_path_factory.mktemp("experiment")
    root = tmp / "sweep"
    args = ["-m", "experiment=benchmark", "task=toy_quadratic", "estimator=gumbel_softmax,st", "steps=4",
            "probe.every=2", "probe.samples=200", "probe.estimators=[]", "log_every=2",
            f"hydra.sweep.dir={root}"]  # fmt: skip
    return root, discograd(args, tmp)


def test_an_experiments_sweep_is_in_its_table_and_report(experiment):
    """The end-of-sweep table and report.html show step 0 beside the final step (4), rows by
    the final MSE; report.html gives the command line and the sweep the experiment sets
    (hydra.sweeper.params, less what the command line overrides), and the config of a job,
    resolved, with none of Hydra's own help templates."""
    root, result = experiment
    assert result.rc == 0, str(result)
    temperatures = str(BENCHMARK["temperature"]).split(",")
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Gradient estimates at steps 0 and 4 "))
    header, rows = lines[start + 1], lines[start + 2 : lines.index("", start)]
    assert all(f"{m} @{s}" in header for m in ("bias norm", "variance", "MSE") for s in (0, 4)), header
    end = header.index(" MSE @4") + len(" MSE @4")
    final = [float(row[:end].split()[-1]) for row in rows]
    assert len(rows) == 1 + len(temperatures) and final == sorted(final), rows  # st once

    page = (root / "report" / "report.html").read_text()
    assert "<th>MSE @0</th>" in page and "<th>MSE @4</th>" in page
    typed = "experiment=benchmark task=toy_quadratic estimator=gumbel_softmax,st steps=4 probe.every=2"
    assert f"overrides: <code>{typed} probe.samples=200 probe.estimators=[] log_every=2</code>" in page
    swept = " ".join(f"{k}={v}" for k, v in BENCHMARK.items() if k not in ("task", "estimator"))
    assert f"sweeps (hydra.sweeper.params): <code>{swept}</code>" in page
    config = page.split("Sweep configuration and overrides")[1].split("<h2>")[0]
    assert "config of run 0 (its .hydra/config.yaml" in config
    # job 0's: gumbel_softmax at the first temperature, its ${temperature} resolved
    assert f"estimators.gumbel_softmax.GumbelSoftmax\n  temperature: {temperatures[0]}\n" in config
    for template in ("Powered by Hydra", "$APP_CONFIG_GROUPS", "hydra_help", "${"):
        assert template not in config, template


@pytest.fixture(scope="module")
def one_run(tmp_path_factory) -> Path:
    """One real run, whose files the tests below copy and break."""
    tmp = tmp_path_factory.mktemp("one_run")
    args = ["task=toy_quadratic", "estimator=st", "steps=5", "probe.samples=50", f"hydra.run.dir={tmp / 'run'}"]
    result = discograd(args, tmp)
    assert result.rc == 0, str(result)
    return tmp / "run"


def _text_in_a_number(data: bytes) -> bytes:
    rows = list(csv.reader(io.StringIO(data.decode())))
    rows[1][rows[0].index("bias_norm")] = "abc"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


GARBAGE = b"\x00\xff garbage\n1,2\n"
BROKEN = {  # the file, its content made from the valid one, what the message says is wrong
    "stats-garbage": ("stats.csv", lambda data: GARBAGE, r"is not text \(byte 0xff at offset 1 is not UTF-8\)"),
    "stats-empty": ("stats.csv", lambda data: b"", "is empty"),
    "stats-header-only": ("stats.csv", lambda data: data.splitlines(keepends=True)[0], "has a header but no rows"),
    "summary-truncated": ("summary.json", lambda data: data[: len(data) // 2],
                          r"is not JSON \(truncated\?\): (Expecting|Unterminated)"),
    "summary-a-list": ("summary.json", lambda data: b"[1, 2]", r"is not a JSON object \(it holds a list\)"),
    "summary-lacks-fields": ("summary.json", lambda data: b'{"status": "ok"}', r"lacks field\(s\) error, error_type"),
    "train-garbage": ("train.csv", lambda data: GARBAGE, "is not text"),
    "stats-text-in-a-number": ("stats.csv", _text_in_a_number, ": column bias_norm holds non-numeric values"),
}  # fmt: skip


def _report(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "discograd.report", *map(str, args)], capture_output=True, text=True)


def _sweep_with_a_broken_run(one_run: Path, root: Path, name: str, edit) -> Path:
    """root/good (a copy of one_run) and root/bad (one whose ``name`` is edited); the latter's path."""
    for folder in ("good", "bad"):
        shutil.copytree(one_run, root / folder)
    path = root / "bad" / name
    path.write_bytes(edit(path.read_bytes()))
    return path


@pytest.mark.parametrize("name, edit, message", BROKEN.values(), ids=list(BROKEN))
def test_an_unreadable_file_is_listed_and_the_report_goes_on(one_run, tmp_path, name, edit, message):
    """By default one warning line names the file and what is wrong, and report.html lists the
    run as unreadable; --strict makes it one error line and exit 2, with nothing written."""
    path = _sweep_with_a_broken_run(one_run, tmp_path, name, edit)
    done = _report(tmp_path, "--out", tmp_path / "report")
    assert done.returncode == 0, done.stderr
    (line,) = done.stderr.splitlines()
    assert re.fullmatch(rf"discograd-report: warning: unreadable: {re.escape(str(path))}[ :].*", line), line
    assert re.search(message, line), line
    report = tmp_path / "report" / "report.html"
    assert done.stdout.splitlines()[-1] == f"2 runs (0 did not finish ok, 1 unreadable); report: {report}"
    page = report.read_text()
    assert "<td>unreadable</td>" in page and str(path) in page and "2 runs, 1 ok, 1 unreadable" in page

    strict = _report(tmp_path, "--strict", "--out", tmp_path / "strict")
    assert strict.returncode == 2
    (line,) = strict.stderr.splitlines()
    assert re.fullmatch(rf"discograd-report: error: {re.escape(str(path))}[ :].*", line), line
    assert re.search(message, line), line
    assert strict.stdout == "" and not (tmp_path / "strict").exists()


def test_every_file_of_an_unreadable_run_is_listed_and_the_run_is_in_no_table(one_run, tmp_path):
    path = _sweep_with_a_broken_run(one_run, tmp_path, "stats.csv", lambda data: b"")
    (tmp_path / "bad" / "train.csv").write_bytes(GARBAGE)
    collection = collect(tmp_path, strict=False)
    assert list(collection.unreadable["file"]) == [str(path), str(tmp_path / "bad" / "train.csv")]
    assert list(collection.unreadable["run"]) == ["bad", "bad"]
    assert list(collection.runs["run"]) == ["good"]
    assert set(collection.stats["run"]) == {"good"} and set(collection.train["run"]) == {"good"}
    with pytest.raises(SchemaError, match=f"^{re.escape(str(path))} is empty$"):
        collect(tmp_path)  # strict, the default of the library


def test_no_readable_run_is_an_error(one_run, tmp_path):
    path = _sweep_with_a_broken_run(one_run, tmp_path, "summary.json", lambda data: data[:10])
    shutil.rmtree(tmp_path / "good")
    done = _report(tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0].startswith(f"discograd-report: warning: unreadable: {path} is not JSON")
    assert done.stderr.splitlines()[1:] == [f"discograd-report: error: no readable runs under {tmp_path}"]
    assert not (tmp_path / "report").exists()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_renders_in_headless_chromium(sweep, tmp_path):
    """Chromium loads a copy of report.html with a script that writes every image's
    naturalWidth into the DOM, which --dump-dom prints."""
    root, _ = sweep
    page = (root / "report" / "report.html").read_text()
    probe = ("<script>window.addEventListener('load', () => { const p = document.createElement('pre'); p.id = 'widths';"
             " p.textContent = JSON.stringify([...document.images].map(i => i.naturalWidth)); document.body.appendChild(p); });"
             "</script></body>")  # fmt: skip
    copy = tmp_path / "report.html"
    copy.write_text(page.replace("</body>", probe))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'profile'}"]
    done = subprocess.run([_chromium(), *flags, "--dump-dom", copy.as_uri()], capture_output=True, text=True, timeout=120)
    dom = done.stdout
    assert '<pre id="widths">' in dom, done.stderr[-2000:]
    widths = json.loads(dom.split('<pre id="widths">')[1].split("</pre>")[0])
    assert len(widths) == len(FIGURES) and all(w > 0 for w in widths), widths
