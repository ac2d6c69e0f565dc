"""The run loop through Python (discograd/run.py), on configs composed from the real conf/."""
import json
import math

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

import torch

from discograd.errors import ConfigError, Diverged
from discograd.preflight import CONF_DIR, job_overrides
from discograd import run as run_module
from discograd.run import probe_steps, run, run_job, train_step
from discograd.schedules import Constant, Exponential
from estimators.registry import create
from tasks.toy_quadratic import ToyQuadratic


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["probe.samples=200", *overrides])


def test_probe_steps():
    assert probe_steps(1000, 500) == [0, 500, 1000]
    assert probe_steps(10, 3) == [0, 3, 6, 9, 10]
    assert probe_steps(10, 0) == [0, 10]
    assert probe_steps(0, 5) == [0]


def test_exponential_schedule_follows_jang_et_al():
    schedule = Exponential(initial=1.0, minimum=0.5, rate=1e-4, interval=1000)
    assert schedule(0) == schedule(999) == 1.0
    assert schedule(1000) == pytest.approx(math.exp(-0.1))
    assert schedule(2500) == pytest.approx(math.exp(-0.2))
    assert schedule(10**6) == 0.5
    assert Constant(0.3)(12345) == 0.3
    with pytest.raises(ValueError, match="interval"):
        Exponential(initial=1.0, interval=0)


def test_run_applies_the_schedule(tmp_path):
    cfg = config("estimator=gumbel_softmax", "schedule=exponential", "schedule.rate=0.01", "schedule.interval=10",
                 "temperature=2.0", "steps=40", "log_every=10", "probe.every=0")  # fmt: skip
    run(cfg, tmp_path)
    train = pd.read_csv(tmp_path / "train.csv")
    # the schedule is applied before the probe and the update of every step, step 0 included:
    # the temperature logged at step s is schedule(s), the one step s trains and probes at
    expected = [max(0.5, 2.0 * math.exp(-0.01 * s)) for s in (0, 10, 20, 30, 40)]
    assert train["temperature"].tolist() == pytest.approx(expected)
    stats = pd.read_csv(tmp_path / "stats.csv")
    assert stats["step"].tolist() == [0, 40]
    assert stats["temperature"].tolist() == pytest.approx([2.0, expected[-1]])


def test_training_lowers_the_exact_objective(tmp_path):
    cfg = config("estimator=reinforce", "estimator.baseline=loo", "estimator.num_samples=4",
                 "task.target=0.1", "task.lr=0.1", "steps=200", "probe.every=0")  # fmt: skip
    summary = run_job(cfg, tmp_path)
    train = pd.read_csv(tmp_path / "train.csv")
    assert summary["status"] == "ok"
    # E f = t^2 + p (1 - 2t) is minimized by p -> 0; from p = 0.5 it is 0.41
    assert train["exact_objective"].iloc[0] == pytest.approx(0.41, abs=1e-6)
    assert train["exact_objective"].iloc[-1] < 0.1


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per-tensor"])
@pytest.mark.parametrize("scale, diverges", [(float("nan"), True), (float("inf"), True), (-float("inf"), True), (3e38, False)])
def test_train_step_catches_a_gradient_that_is_not_finite(scale, diverges, fused, monkeypatch):
    """A finite objective with one nan or +-inf gradient entry is a divergence, caught before the
    optimizer moves the parameters; the largest finite float32 entries are not. Both ways of
    checking: the fused kernel (cpu, cuda) and the per-tensor fallback (other devices)."""
    if not fused:
        monkeypatch.setattr(run_module, "FUSED_CHECK_DEVICES", ())
    task = ToyQuadratic(dims=200, init_logit=0.5)
    estimator, optimizers = create("st", 1.0), task.optimizers()
    logits = task.parameters.logits
    logits.register_hook(lambda g: torch.where(torch.arange(200) == 7, scale, torch.ones_like(g)))
    before = logits.detach().clone()
    if diverges:
        with pytest.raises(Diverged, match="a parameter gradient is not finite at step 3"):
            train_step(3, task, estimator, optimizers)
        assert torch.equal(logits.detach(), before)
    else:
        assert math.isfinite(train_step(3, task, estimator, optimizers))
        assert not torch.equal(logits.detach(), before)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per-tensor"])
def test_not_finite_leaves_the_gradients_as_they_are(fused, monkeypatch):
    """The check reads the tensors and changes none of them (float32, float64 and half mixed;
    float64 default dtype, which the fused kernel's own flag must not follow)."""
    if not fused:
        monkeypatch.setattr(run_module, "FUSED_CHECK_DEVICES", ())
    torch.manual_seed(0)
    tensors = [torch.randn(30, 7), torch.randn(5, dtype=torch.float64), torch.randn(9).half()]
    before = [t.clone() for t in tensors]
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert not run_module.not_finite(tensors)
        tensors[2][4] = float("nan")
        before[2][4] = float("nan")
        assert run_module.not_finite(tensors)
    finally:
        torch.set_default_dtype(default)
    assert all(torch.allclose(a, b, rtol=0, atol=0, equal_nan=True) for a, b in zip(tensors, before))


def test_training_does_not_depend_on_what_is_probed(tmp_path):
    # the probe draws from its own stream (discograd.probe.own_stream): a run that probes more,
    # more often or more estimators trains exactly as one that probes little (bit-identical
    # objectives), and one estimator's probe is the same whoever else is probed beside it
    base = ["estimator=reinforce", "task.dims=3", "steps=30", "log_every=5"]
    variants = {
        "small": [*base, "probe.every=0", "probe.samples=50"],
        "large": [*base, "probe.every=7", "probe.samples=400", "probe.estimators=[st,gumbel_softmax]"],
    }
    for name, overrides in variants.items():
        run(config(*overrides), tmp_path / name)
    train = {name: pd.read_csv(tmp_path / name / "train.csv") for name in variants}
    assert train["small"]["objective"].equals(train["large"]["objective"])  # nan at step 0 in both
    assert train["small"]["exact_objective"].tolist() == train["large"]["exact_objective"].tolist()
    alone = run_probe_rows(tmp_path / "alone", "probe.estimators=[]")
    beside = run_probe_rows(tmp_path / "beside", "probe.estimators=[st,gumbel_softmax]")
    assert alone.loc["reinforce", "variance"] == beside.loc["reinforce", "variance"]
    assert alone.loc["reinforce", "bias_sq"] == beside.loc["reinforce", "bias_sq"]


def run_probe_rows(directory, *overrides: str) -> pd.DataFrame:
    """stats.csv of a probe-only reinforce run, indexed by estimator."""
    run(config("estimator=reinforce", "task.dims=3", "steps=0", *overrides), directory)
    return pd.read_csv(directory / "stats.csv").set_index("estimator")


def test_estimated_reference_agrees_with_the_exact_one(tmp_path):
    rows = []
    for mode in ("exact", "estimated"):
        run(config("estimator=st", "steps=0", f"probe.reference={mode}", "probe.samples=2000",
                   "probe.reference_samples=20000", "task.dims=3"), tmp_path / mode)  # fmt: skip
        rows.append(pd.read_csv(tmp_path / mode / "stats.csv").iloc[0])
    exact, estimated = rows
    assert (exact["reference"], estimated["reference"]) == ("exact", "estimated")
    # st is biased here (E = 2(p - t) per coordinate vs sigmoid'(0)(1 - 2t)); both see it, and each
    # interval covers the other's point estimate (95% CIs; the estimated one includes reference noise)
    assert exact["bias_norm_lo"] > 0 and estimated["bias_norm_lo"] > 0
    assert estimated["bias_norm_lo"] <= exact["bias_norm"] <= estimated["bias_norm_hi"]


def test_failed_run_is_recorded(tmp_path):
    summary = run_job(config("device=cuda") if not _has_cuda() else config("task.dims=0"), tmp_path)
    assert summary["status"] == "failed" and summary["error_type"] == "ConfigError"
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "failed"
    assert not list(tmp_path.glob(".*.tmp"))


def test_run_validates_before_work(tmp_path):
    with pytest.raises(ConfigError, match="probe.samples must be an integer >= 2"):
        run(config("probe.samples=1"), tmp_path)
    assert not (tmp_path / "stats.csv").exists()


def test_experiment_sweep_params_expand_like_hydra():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        jobs = job_overrides(["-m", "experiment=benchmark", "temperature=0.5,1.0"])
    assert len(jobs) == 2 * 5 * 2  # the command line overrides the preset's temperature sweep
    assert ["task=mrf", "estimator=reinforce", "temperature=0.5", "experiment=benchmark"] in jobs


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("forward_temperature,noted", [(1.0, False), (2.0, True)])
def test_a_value_that_is_not_an_estimate_of_the_objective_is_recorded(tmp_path, forward_temperature, noted):
    """decoupled_st at a forward temperature != 1 samples p(z | logits / tau_f): train.csv's
    objective is then not an estimate of L, which summary.json's warning says (and only then)."""
    cfg = config("estimator=decoupled_st", f"estimator.forward_temperature={forward_temperature}", "steps=2", "probe.every=0")
    summary = run_job(cfg, tmp_path)
    assert summary["status"] == "ok"
    warning = json.loads((tmp_path / "summary.json").read_text())["warning"]
    assert (warning is not None and "not L" in warning and "logits / 2" in warning) == noted, warning
