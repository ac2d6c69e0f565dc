"""One writer for estimator state, one identity for a configuration (shared/DESIGN.md).

Each case below reproduced a wrong number on the earlier main:
1. estimator.temperature=0.3 was honoured at step 0 only (the schedule wrote 1.0 after);
2. RELAX's learned temperature was reset by the schedule before every step, and its
   parameters were stepped by an Adam hidden inside forward;
3. learned values inside ``settings`` split the seeds of relax into rows of 1 seed;
4. sweeps over any other knob merged distinct configurations into one row;
5. with probe.estimators the trained estimator was not probed, and summary.json's final
   probe held the basket's last row under the trained estimator's name.
(6, the conformance kit's bare asserts, is tests/test_check.py's.)
"""
from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

from discograd.config import validate
from discograd.errors import ConfigError
from discograd.identity import config_id, estimator_label
from discograd.preflight import CONF_DIR
from discograd.run import run_job
from estimators.registry import ESTIMATORS, create
from estimators.relax import Relax
from primitives.registry import UnknownName
from test_cli import discograd, job_folders, read_summary
from tasks.toy_quadratic import ToyQuadratic


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["probe.samples=200", *overrides])


def rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_estimator_temperature_is_honoured_at_every_step(tmp_path):
    """Case 1, through the CLI as reported."""
    run_dir = tmp_path / "run"
    result = discograd(["estimator=gumbel_softmax", "estimator.temperature=0.3", "steps=20", "probe.every=10",
                        "probe.samples=100", f"hydra.run.dir={run_dir}"], tmp_path)  # fmt: skip
    assert result.rc == 0, str(result)
    stats, train = rows(run_dir / "stats.csv"), rows(run_dir / "train.csv")
    assert [int(r["step"]) for r in stats] == [0, 10, 20]
    assert {float(r["temperature"]) for r in stats} == {0.3}
    assert {float(r["temperature"]) for r in train} == {0.3}
    assert read_summary(run_dir)["temperature"] == 0.3


def test_estimator_and_top_level_temperature_are_one_configuration():
    same = {config_id(config("estimator=gumbel_softmax", f"{key}=0.3")) for key in ("temperature", "estimator.temperature")}
    assert len(same) == 1
    assert config_id(config("estimator=gumbel_softmax", "temperature=0.5")) not in same
    # reinforce reads no temperature: sweeping it is one configuration
    assert config_id(config("temperature=0.1")) == config_id(config("temperature=1.0"))
    # the seed and bookkeeping keys are not part of it; any knob that changes results is
    assert config_id(config("seed=3", "log_every=5")) == config_id(config())
    assert config_id(config("task.target=0.1")) != config_id(config("task.target=0.9"))


def test_relax_learns_its_temperature_and_the_run_loop_steps_it(tmp_path):
    """Case 2: the learned temperature moves away from its start and is not reset."""
    summary = run_job(config("estimator=relax", "steps=300", "probe.every=100"), tmp_path)
    assert summary["status"] == "ok", summary["error"]
    stats = pd.read_csv(tmp_path / "stats.csv")
    learned = stats["learned_temperature"].tolist()
    assert learned[0] == pytest.approx(1.0) and stats["temperature"].tolist() == pytest.approx(learned)
    # Adam at lr 1e-3 moves log lambda by ~1e-3 a step when the gradient's sign holds; a reset
    # schedule would hold it at 1.0 exactly at every probe
    assert all(abs(t - 1.0) > 1e-3 for t in learned[1:]) and len(set(learned)) == len(learned)
    assert summary["learned"]["learned_temperature"] == pytest.approx(learned[-1])
    assert summary["temperature"] == pytest.approx(learned[-1])


def test_relax_forward_steps_nothing_itself():
    """No optimizer inside forward: two training calls leave every parameter as it was, and
    the control loss they carry has a gradient in those parameters."""
    task = ToyQuadratic(family="bernoulli", dims=3, target=0.2)
    relax = create("relax", temperature=0.7, latent_shape=task.latent_shape)
    before = {n: p.detach().clone() for n, p in relax.named_parameters()}
    assert relax.network is not None  # built in the constructor, not at the first call
    for _ in range(2):
        estimate = relax(task.logits(), task.objective, task.family)
    assert all(torch.equal(before[n], p) for n, p in relax.named_parameters())
    grads = torch.autograd.grad(estimate.control_loss, list(relax.parameters()), allow_unused=True)
    assert sum(g is not None and bool(g.abs().sum() > 0) for g in grads) >= 2
    relax.eval()
    assert relax(task.logits(), task.objective, task.family).control_loss is None


def test_a_schedule_on_a_learned_temperature_is_refused(tmp_path):
    result = discograd(["estimator=relax", "schedule=exponential", "steps=1"], tmp_path)
    assert result.rc == 2 and "learns its temperature" in result.last_error_line()
    assert "schedule=constant" in result.last_error_line() and "Traceback" not in result.stderr
    with pytest.raises(TypeError, match="learns its temperature"):
        Relax(latent_shape=(3,)).set_temperature(0.5)


def test_relax_seeds_pool_in_the_report(tmp_path):
    """Case 3: rows of 2 seeds at every probe step."""
    sweep = tmp_path / "sweep"
    result = discograd(["-m", "estimator=relax", "seed=0,1", "steps=20", "probe.every=10", "probe.samples=100",
                        f"hydra.sweep.dir={sweep}", "report=true"], tmp_path)  # fmt: skip
    assert result.rc == 0, str(result)
    summary = pd.read_csv(sweep / "report" / "summary.csv")
    assert summary["step"].tolist() == [0, 10, 20] and summary["seeds"].tolist() == [2, 2, 2]
    stats = pd.concat(pd.read_csv(f / "stats.csv") for f in job_folders(sweep))
    assert stats.groupby("step")["learned_temperature"].nunique().tolist() == [1, 2, 2]  # learned per seed


def table_rows(stdout: str) -> list[str]:
    """The data rows of the end-of-sweep table (between its header and the 'files:' line)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Gradient estimates"))
    return [line for line in lines[start + 2 :] if line.strip() and not line.startswith("files:")]


def test_a_sweep_over_any_knob_keeps_its_configurations_apart(tmp_path):
    """Case 4, both commands of the report."""
    targets = discograd(["-m", "estimator=st", "task.target=0.1,0.45,0.9", "steps=0", "probe.samples=100",
                         f"hydra.sweep.dir={tmp_path / 'a'}"], tmp_path)  # fmt: skip
    assert targets.rc == 0, str(targets)
    shown = table_rows(targets.stdout)
    assert len(shown) == 3 and all(f"task.target={t}" in "".join(shown) for t in ("0.1", "0.45", "0.9")), targets.stdout
    references = discograd(["-m", "probe.reference=exact,estimated", "seed=0,1", "steps=0", "probe.samples=100",
                            "probe.reference_samples=1000", f"hydra.sweep.dir={tmp_path / 'b'}", "report=true"], tmp_path)  # fmt: skip
    assert references.rc == 0, str(references)
    summary = pd.read_csv(tmp_path / "b" / "report" / "summary.csv")
    assert [o.split()[0] for o in sorted(summary["overrides"])] == ["probe.reference=estimated", "probe.reference=exact"]
    assert not summary["overrides"].str.contains("seed=").any()
    assert summary["seeds"].tolist() == [2, 2] and summary["config_id"].nunique() == 2


def test_the_trained_estimator_is_probed_first_and_the_basket_beside_it(tmp_path):
    """Case 5, and a user's yaml on the search path joining the basket by name."""
    user = tmp_path / "user_conf" / "estimator"
    user.mkdir(parents=True)
    (user / "my_rloo.yaml").write_text("_target_: estimators.reinforce.Reinforce\nbaseline: loo\nnum_samples: 3\n")
    run_dir = tmp_path / "run"
    result = discograd(["estimator=reinforce", "estimator.baseline=loo", "estimator.num_samples=2",
                        "probe.estimators=[st,gumbel_softmax,my_rloo]", "temperature=0.5", "steps=10",
                        "probe.every=5", "probe.samples=100", f"hydra.searchpath=[file://{tmp_path / 'user_conf'}]",
                        f"hydra.run.dir={run_dir}"], tmp_path)  # fmt: skip
    assert result.rc == 0, str(result)
    stats = rows(run_dir / "stats.csv")
    labels = ["reinforce[baseline=loo,num_samples=2]", "st", "gumbel_softmax", "reinforce[baseline=loo,num_samples=3]"]
    assert [r["estimator"] for r in stats] == labels * 3
    assert all(r["evaluations"] == "2" for r in stats[::4])  # the trained one, with its own knobs
    final = read_summary(run_dir)["final_probe"]
    assert list(final) == labels
    last = {r["estimator"]: r for r in stats if r["step"] == "10"}
    assert all(final[k]["variance"] == pytest.approx(float(last[k]["variance"])) for k in labels)


def test_unknown_names_list_the_valid_ones(tmp_path):
    with pytest.raises(UnknownName, match="unknown estimator 'foo'; valid: .*reinforce"):
        ESTIMATORS["foo"]
    with pytest.raises(ConfigError, match="unknown estimator 'nope' in probe.estimators; valid: .*gumbel_softmax"):
        validate(config("probe.estimators=[nope]"))
    result = discograd(["probe.reference_estimator._target_=estimators.st.StraightThrough", "steps=0"], tmp_path)
    assert result.rc == 2 and "probe.reference_estimator 'st' is biased" in result.last_error_line()


def test_labels_name_the_knobs_that_differ_from_defaults():
    assert estimator_label(config("estimator=reinforce").estimator) == "reinforce"
    node = config("estimator=reinforce", "estimator.baseline=loo", "estimator.num_samples=2").estimator
    assert estimator_label(node) == "reinforce[baseline=loo,num_samples=2]"
    assert estimator_label(config("estimator=gumbel_softmax", "temperature=0.2").estimator) == "gumbel_softmax"


def test_summary_json_names_the_configuration(tmp_path):
    summary = run_job(config("steps=0"), tmp_path, ["steps=0", "seed=0"])
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["config_id"] == config_id(config("steps=0")) and written["overrides"] == "steps=0"
    assert list(summary["final_probe"]) == list(written["final_probe"]) == ["reinforce"]
