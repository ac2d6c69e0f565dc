"""The analysis side of one identity (shared/DESIGN.md): summary.csv, the end-of-sweep table and
the report tell configurations apart by CONFIG_KEY (config_id, then the probed estimator's
label) and nothing else, pool a configuration's seeds, count one measurement once, and load
every file through the schema. Synthetic run directories, written as the run loop writes them
(rows through STATS.row / TRAIN.row, summary.json through summary_fields), so these tests need
no run loop; tests/test_state_identity.py runs the same cases through the CLI.

Each case reproduced a wrong table on the earlier main, where the key was (task, family,
estimator, settings, temperature):
(a) ``-m estimator=st task.target=0.1,0.45,0.9``: one row for three results;
(b) ``-m probe.reference=exact,estimated seed=0,...,5``: one row of "6 seeds" for twelve runs;
(c) relax over two seeds: learned values in ``settings`` split them into rows of one seed;
(d) reinforce swept over the temperature it does not read is one measurement per seed;
(e) a file with a missing or unknown column, or a non-numeric value, is a SchemaError naming it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.aggregate import summarize
from analysis.collect import collect
from analysis.figures import all_figures, versus_temperature
from analysis.report import results_table, write_report
from analysis.schema import STATS, TRAIN, SchemaError, summary_fields
from analysis.tables import format_results

def stats_row(**values) -> dict:
    row = {"step": 0, "config_id": "c0", "overrides": "", "estimator": "st", "knobs": "",
           "task": "toy_quadratic", "family": "bernoulli", "temperature": None,
           "learned_temperature": None, "eta": None, "alpha": None, "beta": None, "samples": 100, "bias_sq": 0.01, "bias_norm": 0.1, "bias_p": 0.01,
           "bias_norm_lo": 0.05, "bias_norm_hi": 0.15, "relative_bias": 0.2, "variance": 1.0,
           "variance_lo": 0.9, "variance_hi": 1.1, "mse": 1.01, "snr": 0.5, "cosine": 0.9,
           "evaluations": 1, "seconds_per_estimate": 1e-6, "warmup_seconds": 0.01,
           "work_normalized_variance": 1.0, "reference": "exact", "reference_samples": None, "warning": "", "seed": 0,
           "device": "cpu"}  # fmt: skip
    return STATS.row(row | values)


def write_run(folder: Path, rows: list[dict], job_overrides: list[str]) -> None:
    """A run's folder as the run loop and Hydra leave it: stats.csv, train.csv, summary.json and
    .hydra/overrides.yaml (the job's overrides, seed= included)."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(job_overrides))
    pd.DataFrame(rows, columns=STATS.names).to_csv(folder / "stats.csv", index=False)
    first = rows[0]
    identity = {k: first[k] for k in ("config_id", "overrides", "seed")}
    learned = ("temperature", "learned_temperature", "eta", "alpha", "beta")
    train = [TRAIN.row(identity | {k: r[k] for k in ("step", *learned)}
                       | {"objective": 1.0 / (1 + r["step"]), "train_seconds": 0.1 * r["step"],
                          "probe_seconds": 0.01, "exact_objective": 0.3})
             for r in rows if r["estimator"] == first["estimator"]]  # fmt: skip
    pd.DataFrame(train).to_csv(folder / "train.csv", index=False)
    final = {r["estimator"]: {k: r[k] for k in ("bias_norm", "variance", "mse")} for r in rows}
    summary = {"status": "ok", "error": None, "error_type": None, "device": "cpu", "seconds": 1.0,
               **{k: first[k] for k in ("config_id", "overrides", "task", "estimator")},
               "temperature": first["temperature"], "seed": first["seed"], "final_probe": final}
    (folder / "summary.json").write_text(json.dumps(summary_fields(summary)))


def job(root: Path, name: str, config_id: str, overrides: list[str], seed: int = 0, **values):
    """One job of a sweep, one probe at step 0: ``overrides`` as typed, less seed= (which
    .hydra/overrides.yaml holds and the rows' ``overrides`` leave out)."""
    rows = [stats_row(config_id=config_id, overrides=" ".join(overrides), seed=seed, **values)]
    write_run(root / name, rows, [*overrides, f"seed={seed}"])


def table_rows(text: str) -> list[str]:
    """The data rows of format_results' table (after its title and header)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Gradient estimates"))
    return [line for line in lines[start + 2 :] if line.strip() and "did not finish ok" not in line]


def table_column(text: str, name: str) -> list[str]:
    """One right-aligned column of format_results' table (to_string aligns a value's end
    with its name's)."""
    header = text.splitlines()[1]
    end = header.index(f" {name}") + 1 + len(name)
    return [row[:end].split()[-1] for row in table_rows(text)]


def test_a_sweep_over_task_target_keeps_three_rows(tmp_path):
    """(a) -m estimator=st task.target=0.1,0.45,0.9 steps=0: three config_ids, three rows."""
    for i, target in enumerate((0.1, 0.45, 0.9)):
        overrides = ["estimator=st", f"task.target={target}", "steps=0"]
        job(tmp_path, str(i), f"target{i}", overrides, variance=1.0 + i)
    collection = collect(tmp_path)
    shown = table_rows(format_results(collection.stats, collection.runs))
    assert len(shown) == 3, shown
    for target, line in zip(("0.1", "0.45", "0.9"), shown):  # sorted by overrides
        assert f"task.target={target}" in line, shown
        assert "steps=0" not in line, shown  # every job's: it tells none apart
    _, _, summary, _ = write_report([tmp_path])
    written = pd.read_csv(tmp_path / "report" / "summary.csv", dtype={"config_id": str})
    first = ["config_id", "overrides", "task", "family", "estimator", "knobs", "step", "seeds"]
    assert list(written.columns[: len(first)]) == first
    assert sorted(written["config_id"]) == ["target0", "target1", "target2"]
    assert sorted(written["variance"]) == [1.0, 2.0, 3.0] and set(written["seeds"]) == {1}
    targets = sorted(results_table(summary)["overrides"])
    assert targets == ["task.target=0.1", "task.target=0.45", "task.target=0.9"]


def test_the_figures_draw_one_line_per_configuration(tmp_path):
    """(a) again: the three targets are three labelled lines, never one."""
    for i, target in enumerate((0.1, 0.45, 0.9)):
        overrides = ["estimator=st", f"task.target={target}"]
        job(tmp_path, str(i), f"target{i}", overrides, variance=1.0 + i)
    collection = collect(tmp_path)
    summary = summarize(collection.stats)
    fig = versus_temperature(summary, "variance", "variance")  # one temperature (none): a forest plot
    (ax,) = fig.axes
    labels = [text.get_text() for text in ax.get_yticklabels()]
    assert sorted(labels) == [f"st task.target={t}" for t in ("0.1", "0.45", "0.9")]
    points = {labels[round(y)]: x for line in ax.get_lines() for x, y in zip(line.get_xdata(), line.get_ydata())
              if line.get_marker() == "o"}  # fmt: skip
    assert points == {f"st task.target={t}": v for t, v in (("0.1", 1.0), ("0.45", 2.0), ("0.9", 3.0))}
    assert len(all_figures(summary, collection.train)) == 7


def test_the_figures_pool_equal_measurements_at_the_first_probe(tmp_path):
    """The basket's st, probed at step 0 beside two trained estimators, measures the same in
    both runs: one point, named by the overrides both runs share, not one per run; a third
    run whose st differs stays apart, named by its run's overrides."""
    for i, (trained, variance) in enumerate((("reinforce", 1.0), ("arm", 1.0), ("muprop", 2.0))):
        overrides = [f"estimator={trained}", f"task.target={0.45 if i < 2 else 0.9}"]
        rows = [stats_row(config_id=f"c{i}", overrides=" ".join(overrides), estimator="st", variance=variance)]
        write_run(tmp_path / str(i), rows, [*overrides, "seed=0"])
    summary = summarize(collect(tmp_path).stats)
    (ax,) = versus_temperature(summary, "variance", "variance").axes
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == ["st estimator=muprop task.target=0.9", "st task.target=0.45"]


def test_two_references_over_six_seeds_are_two_rows_of_six_seeds(tmp_path):
    """(b) -m probe.reference=exact,estimated seed=0,1,2,3,4,5: twelve runs, two rows."""
    for reference, shift in (("exact", 0.0), ("estimated", 10.0)):
        for seed in range(6):
            name, overrides = f"{reference}-{seed}", [f"probe.reference={reference}"]
            job(tmp_path, name, f"ref-{reference}", overrides,
                seed=seed, reference=reference, variance=1.0 + seed + shift)  # fmt: skip
    collection = collect(tmp_path)
    assert len(collection.runs) == 12
    assert not collection.runs["overrides"].str.contains("seed=").any()
    summary = summarize(collection.stats)
    assert len(summary) == 2 and summary["seeds"].tolist() == [6, 6]
    means = summary.set_index("overrides")["variance"].to_dict()
    assert means == {"probe.reference=estimated": 13.5, "probe.reference=exact": 3.5}
    text = format_results(collection.stats, collection.runs)
    assert "reference: estimated, exact" in text
    assert len(table_rows(text)) == 2 and table_column(text, "seeds") == ["6", "6"], text


def test_learned_values_never_split_seeds(tmp_path):
    """(c) relax over seeds 0 and 1: its learned temperature and eta differ by seed; rows of 2
    seeds at every step, those values averaged like the metrics."""
    knobs = "learn_temperature=true, temperature=1.0"
    for seed in (0, 1):
        rows = []
        for step in (0, 10, 20):
            learned = 1.0 + 0.01 * step * (seed + 1)
            rows.append(stats_row(step=step, config_id="relax", overrides="estimator=relax",
                                  estimator="relax", knobs=knobs, seed=seed, temperature=learned,
                                  learned_temperature=learned, eta=0.5 + 0.1 * step * seed,
                                  variance=1.0 + seed))  # fmt: skip
        write_run(tmp_path / str(seed), rows, ["estimator=relax", f"seed={seed}"])
    summary = summarize(collect(tmp_path).stats)
    assert summary["step"].tolist() == [0, 10, 20] and summary["seeds"].tolist() == [2, 2, 2]
    assert summary["learned_temperature"].tolist() == pytest.approx([1.0, 1.15, 1.3])
    assert summary["temperature"].tolist() == pytest.approx([1.0, 1.15, 1.3])
    assert summary["eta"].tolist() == pytest.approx([0.5, 1.0, 1.5])
    assert summary["knobs"].tolist() == [knobs] * 3


def test_one_config_id_and_seed_is_one_measurement(tmp_path):
    """(d) reinforce swept over temperature (which it does not read): one config_id, so one
    measurement per seed, whose overrides list both jobs."""
    for temperature in (0.1, 1.0):
        for seed in (0, 1):
            overrides = ["estimator=reinforce", f"temperature={temperature}"]
            job(tmp_path, f"{temperature}-{seed}", "reinforce", overrides, seed=seed,
                estimator="reinforce", variance=1.0 + seed)  # fmt: skip
    collection = collect(tmp_path)
    summary = summarize(collection.stats)
    assert len(summary) == 1 and summary["seeds"].item() == 2
    assert summary["variance"].item() == pytest.approx(1.5)  # seeds 0 and 1 once each, not twice
    both = "estimator=reinforce temperature=0.1 | estimator=reinforce temperature=1.0"
    assert summary["overrides"].item() == both
    assert len(table_rows(format_results(collection.stats, collection.runs))) == 1


def test_a_basket_row_says_which_run_probed_it(tmp_path):
    """-m estimator=st,reinforce probe.estimators=[gumbel_softmax]: four configurations; the two
    gumbel_softmax rows are told apart by the run's estimator= (hidden only on its own rows)."""
    for trained, variance in (("st", 2.0), ("reinforce", 3.0)):
        overrides = [f"estimator={trained}", "probe.estimators=[gumbel_softmax]"]
        rows = [stats_row(config_id=trained, overrides=" ".join(overrides), estimator=name,
                          temperature=0.5 if name == "gumbel_softmax" else None, variance=variance)
                for name in (trained, "gumbel_softmax")]  # fmt: skip
        write_run(tmp_path / trained, rows, [*overrides, "seed=0"])
    results = results_table(summarize(collect(tmp_path).stats))
    variance = results["variance @0"].str.split().str[0]
    shown = dict(zip(zip(results["estimator"], variance), results["overrides"]))
    assert shown == {("gumbel_softmax", "3"): "estimator=reinforce", ("reinforce", "3"): "",
                     ("gumbel_softmax", "2"): "estimator=st", ("st", "2"): ""}  # fmt: skip


def test_a_row_without_the_runs_temperature_says_it(tmp_path):
    """-m estimator=reinforce temperature=0.1,1.0 probe.estimators=[gumbel_softmax,exact]: two
    configurations (the basket reads the temperature). gumbel_softmax's temperature column
    tells its rows apart; reinforce and exact have none, so their rows say the run's (in the
    end-of-sweep table, exact's two step-0 rows are one measurement: one row of 2 runs)."""
    for temperature in ("0.1", "1.0"):
        overrides = ["estimator=reinforce", f"temperature={temperature}", "probe.estimators=[gumbel_softmax,exact]"]
        rows = [stats_row(config_id=f"t{temperature}", overrides=" ".join(overrides), estimator=name,
                          temperature=float(temperature) if name == "gumbel_softmax" else None)
                for name in ("reinforce", "gumbel_softmax", "exact")]  # fmt: skip
        write_run(tmp_path / temperature, rows, [*overrides, "seed=0"])
    collection = collect(tmp_path)
    results = results_table(summarize(collection.stats))
    shown = dict(zip(zip(results["estimator"], results["config_id"]), results["overrides"]))
    assert shown == {("reinforce", "t0.1"): "temperature=0.1", ("reinforce", "t1.0"): "temperature=1.0",
                     ("exact", "t0.1"): "temperature=0.1", ("exact", "t1.0"): "temperature=1.0",
                     ("gumbel_softmax", "t0.1"): "", ("gumbel_softmax", "t1.0"): ""}  # fmt: skip
    text = format_results(collection.stats, collection.runs)
    trained, basket = (part.splitlines()[2:] for part in text.split("\n\n")[:2])
    assert sum("temperature=" in row for row in trained) == 2, text  # reinforce's two runs
    exact = [row for row in basket if " exact " in row]  # at step 0 the runs' exact rows are one measurement
    assert len(exact) == 1 and "temperature=" not in exact[0], text


# (task, estimator): MSE at step 0 and at step 20; reinforce's seed 1 stopped before step 20
TWO_STEPS = {("mrf", "st"): (0.1, 100.0), ("toy_quadratic", "st"): (1.0, 5.0),
             ("toy_quadratic", "reinforce"): (2.0, 6.0), ("toy_quadratic", "gumbel_softmax"): (3.0, 0.5)}  # fmt: skip
BY_FINAL_MSE = [("mrf", "st"), ("toy_quadratic", "gumbel_softmax"), ("toy_quadratic", "st"),
                ("toy_quadratic", "reinforce")]  # fmt: skip


def _two_step_sweep(root: Path) -> None:
    """-m task=mrf,toy_quadratic estimator=... seed=0,1 steps=20 probe.every=20 (four
    configurations, two seeds each) with TWO_STEPS's MSEs (their variances, a bias of 0)."""
    for (task, estimator), mses in TWO_STEPS.items():
        for seed in (0, 1):
            steps = (0,) if (estimator, seed) == ("reinforce", 1) else (0, 20)
            rows = [stats_row(step=step, config_id=f"{task}-{estimator}", task=task, estimator=estimator,
                              overrides=f"task={task} estimator={estimator}", seed=seed, mse=mse,
                              variance=mse, variance_lo=0.9 * mse, variance_hi=1.1 * mse,
                              bias_sq=0.0, bias_norm=0.0)
                    for step, mse in zip(steps, mses)]  # fmt: skip
            write_run(root / f"{task}-{estimator}-{seed}", rows, [f"task={task}", f"estimator={estimator}", f"seed={seed}"])


def test_the_tables_show_the_final_step_beside_step_0_by_final_mse(tmp_path):
    """Both tables: each configuration at step 0 and at its final probe (step 20) side by side,
    sorted within each task by the final MSE (not by name, nor by step 0's MSE), with the
    seeds behind each (reinforce: 2 at step 0, 1 at step 20)."""
    _two_step_sweep(tmp_path)
    collection = collect(tmp_path)
    text = format_results(collection.stats, collection.runs)
    assert text.splitlines()[0].startswith("Gradient estimates at steps 0 and 20 "), text
    header = text.splitlines()[1]
    for name in ("bias norm @0", "bias norm @20", "variance @0", "variance @20", "MSE @0", "MSE @20", "seeds"):
        assert name in header, header
    rows = table_rows(text)
    assert [tuple(row.split()[:2]) for row in rows] == BY_FINAL_MSE, text
    assert table_column(text, "MSE @0") == [f"{TWO_STEPS[k][0]:.3g}" for k in BY_FINAL_MSE], text
    assert table_column(text, "MSE @20") == [f"{TWO_STEPS[k][1]:.3g}" for k in BY_FINAL_MSE], text
    assert table_column(text, "seeds") == ["2", "2", "2", "2→1"], text
    assert "[0.9, 1.1]" in rows[2] and "[4.5, 5.5]" in rows[2], text  # st's variance CIs at both steps

    results = results_table(summarize(collection.stats))
    assert list(zip(results["task"], results["estimator"])) == BY_FINAL_MSE
    assert list(results["MSE @20"]) == [f"{TWO_STEPS[k][1]:.3g}" for k in BY_FINAL_MSE]
    assert list(results["MSE @0"]) == [f"{TWO_STEPS[k][0]:.3g}" for k in BY_FINAL_MSE]
    assert list(results["variance @20"].str.split().str[0]) == ["100", "0.5", "5", "6"]
    assert list(results["seeds"]) == ["2", "2", "2", "2→1"]
    page = write_report([tmp_path])[0].read_text()
    assert "by MSE @20 within a task" in page and "<th>bias norm @20</th>" in page


def test_a_sweep_probed_at_step_0_alone_shows_it_once(tmp_path):
    """steps=0: one column per metric, named by its step, rows by MSE."""
    for i, mse in enumerate((3.0, 1.0, 2.0)):
        job(tmp_path, str(i), f"target{i}", ["estimator=st", f"task.target=0.{i + 1}", "steps=0"], mse=mse)
    collection = collect(tmp_path)
    text = format_results(collection.stats, collection.runs)
    assert text.splitlines()[0].startswith("Gradient estimates at step 0 "), text
    header = text.splitlines()[1]
    assert header.count("MSE") == 1 and header.count("bias norm") == 1 and "MSE @0" in header, header
    assert table_column(text, "MSE @0") == ["1", "2", "3"], text
    results = results_table(summarize(collection.stats))
    assert [c for c in results.columns if "@" in c] == ["bias norm @0", "variance @0", "MSE @0"]
    assert list(results["overrides"]) == ["task.target=0.2", "task.target=0.3", "task.target=0.1"]


def test_a_config_id_that_reads_as_a_number_stays_text(tmp_path):
    """12 hex digits can read as a float (1e2345678901 is inf) or an int with leading zeros."""
    ids = ["1e2345678901", "4e5678901234", "000123456789"]
    for i, config_id in enumerate(ids):
        job(tmp_path, str(i), config_id, [f"task.target=0.{i + 1}"], variance=1.0 + i)
    collection = collect(tmp_path)
    assert sorted(collection.stats["config_id"]) == sorted(ids)
    assert sorted(collection.runs["config_id"]) == sorted(ids)
    assert len(summarize(collection.stats)) == 3


def _broken(tmp_path: Path, file: str, edit) -> Path:
    job(tmp_path, "run", "c0", ["estimator=st"])
    path = tmp_path / "run" / file
    frame = pd.read_csv(path, dtype=str)
    edit(frame)
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("file", ["stats.csv", "train.csv"])
@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda f: f.pop("config_id"), r"lacks column\(s\) config_id"),
        (lambda f: f.__setitem__("step", "zero"), "column step holds non-numeric values"),
        (lambda f: f.__setitem__("seed", np.nan), "column seed has empty cells"),
    ],
    ids=["missing", "non-numeric", "empty"],
)
def test_a_broken_file_is_an_error_naming_it(tmp_path, file, edit, message):
    """(e) every file is loaded through the schema; the error names the file."""
    path = _broken(tmp_path, file, edit)
    with pytest.raises(SchemaError, match=message) as error:
        collect(tmp_path)
    assert str(error.value).startswith(str(path))


def test_an_unknown_column_is_an_error_in_stats_and_a_metric_in_train(tmp_path):
    """stats.csv is closed: settings (the old column) is refused; train.csv is open to the
    task's float metrics."""
    path = _broken(tmp_path, "stats.csv", lambda f: f.__setitem__("settings", ""))
    with pytest.raises(SchemaError, match=r"has unknown column\(s\) settings") as error:
        collect(tmp_path)
    assert str(error.value).startswith(str(path))
    path.unlink()
    assert "exact_objective" in collect(tmp_path).train


@pytest.mark.parametrize(
    "text, message",
    [("{", "is not JSON"), ("[]", "is not a JSON object"), ('{"status": 1}', r"lacks field\(s\)")],
)
def test_a_broken_summary_is_an_error_naming_it(tmp_path, text, message):
    job(tmp_path, "run", "c0", ["estimator=st"])
    path = tmp_path / "run" / "summary.json"
    path.write_text(text)
    with pytest.raises(SchemaError, match=message) as error:
        collect(tmp_path)
    assert str(error.value).startswith(str(path))


def test_an_empty_stats_file_is_an_error_naming_it(tmp_path):
    job(tmp_path, "run", "c0", ["estimator=st"])
    path = tmp_path / "run" / "stats.csv"
    path.write_text("")
    with pytest.raises(SchemaError, match=r"stats.csv is empty$") as error:
        collect(tmp_path)
    assert str(error.value).startswith(str(path))


def test_a_basket_shared_by_every_run_is_one_row_at_step_0(tmp_path):
    """experiment=benchmark: five runs each probe arm beside the trained estimator. At step 0
    the runs share their parameters and probe noise, so arm's five rows are one measurement,
    shown once with runs = 5 (the table listed 240 rows, mostly such repeats); a basket row that
    differs in a value stays apart; the trained estimators' own rows keep a table of their own."""
    for i in range(5):
        overrides = ["estimator=st", f"task.init_logit={i}"]
        rows = [stats_row(config_id=f"c{i}", overrides=" ".join(overrides), estimator="st", variance=1.0 + i, mse=1.0 + i),
                stats_row(config_id=f"c{i}", overrides=" ".join(overrides), estimator="arm",
                          variance=0.5 if i < 4 else 0.7, mse=0.5 if i < 4 else 0.7)]  # fmt: skip
        write_run(tmp_path / str(i), rows, [*overrides, "seed=0"])
    collection = collect(tmp_path)
    text = format_results(collection.stats, collection.runs)
    tables = text.split("\n\n")
    trained, basket = table_rows(tables[0]), tables[1].splitlines()[2:]
    assert len(trained) == 5 and all(" st " in row for row in trained), text
    assert len(basket) == 2 and all(" arm " in row for row in basket), text
    header = tables[1].splitlines()[1]
    end = header.index(" runs") + len(" runs")  # right-aligned under its name
    assert sorted(row[:end].split()[-1] for row in basket) == ["1", "4"], text
    pooled = next(row for row in basket if row[:end].split()[-1] == "4")
    assert "init_logit" not in pooled, text  # one run's overrides would misname it
    assert "5 final-step rows, one per run" in text
    write_report([tmp_path])  # report.html: the same split, every run's basket folded below
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Estimators probed beside them" in page and "<details><summary>The basket in every run" in page
    results = page.split("Estimators probed beside them")[0]
    assert ">arm<" not in results and ">st<" in results  # the headline table holds the trained rows
