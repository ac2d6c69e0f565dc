"""The presets (conf/experiment/) do what their comments say, checked on composed configs
without training: every command a preset's comment gives composes and validates; the DisARM
presets train disarm and probe the paper's four estimators; experiment=benchmark reaches every
registered estimator that supports its tasks; the Jang et al. presets anneal as described."""
import math
import shlex

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import get_class

from discograd.config import (
    basket_nodes, build_estimator, build_schedule, build_task, task_family, validate,
)
from discograd.listing import header
from discograd.preflight import CONF_DIR, job_overrides
from discograd.run import build_probed
from estimators import ESTIMATORS
from estimators.budget import Budgeted

PRESETS = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))
DISARM = ["disarm2020_linear", "disarm2020_nonlinear"]
JANG = ["jang2016_bernoulli", "jang2016_categorical"]
LOO2 = "reinforce[baseline=loo,num_samples=2]"
README = CONF_DIR.parent / "README.md"


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def jobs(*args: str) -> list[list[str]]:
    """The override list of every job ``discograd ARGS`` runs (a sweep expanded as Hydra does)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return job_overrides(list(args))


def usage(name: str) -> list[list[str]]:
    """The arguments of each ``discograd ...`` command in the preset's leading comment."""
    return [shlex.split(line)[1:] for line in header(CONF_DIR / "experiment" / f"{name}.yaml")[1]]


def registry_name(node) -> str:
    return get_class(node._target_).label()


def probed(cfg) -> dict:
    """label -> estimator, in the order the run probes them (the trained one first)."""
    shape = tuple(build_task(cfg).latent_shape)
    trained = build_estimator(cfg, latent_shape=shape)
    return {p.label: p.estimator for p in build_probed(cfg, trained, shape)}


def evaluations(estimator, shape: tuple[int, ...], family: str) -> int:
    logits = torch.zeros((1,) + shape, requires_grad=True)
    return estimator.eval()(logits, lambda z: z.flatten(2).sum(-1), family).evaluations


def distinct(overrides: list[list[str]]) -> list[list[str]]:
    """One job for each choice of task and estimator (a swept value, such as a temperature,
    changes no check's outcome here): validating all 30 of the benchmark composes 210 baskets."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for job in overrides:
        groups.setdefault(tuple(o for o in job if o.split("=")[0] in ("task", "estimator")), job)
    return list(groups.values())


@pytest.mark.parametrize("name", PRESETS)
def test_every_command_in_a_presets_comment_validates(name):
    commands = usage(name)
    assert commands, f"{name}.yaml gives no `discograd ...` line"
    for args in commands:
        for overrides in distinct(jobs(*args)):
            validate(config(*overrides))


@pytest.mark.parametrize("name", DISARM)
def test_disarm_presets_train_disarm_and_probe_the_papers_four(name):
    cfg = config(f"experiment={name}")
    assert registry_name(cfg.estimator) == "disarm" and cfg.budget is None
    estimators = probed(cfg)
    assert list(estimators) == ["disarm", "arm", LOO2, "relax"]
    counts = {label: evaluations(e, (200,), "bernoulli") for label, e in estimators.items()}
    # the equal budget of the paper's runs (one pair; two samples), and RELAX's three
    assert counts == {"disarm": 2, "arm": 2, LOO2: 2, "relax": 3}
    # budget=6, as the comment says, would put all four at 6 (the run wraps each in Budgeted)
    budgeted = probed(config(f"experiment={name}", "budget=6")).values()
    assert {evaluations(Budgeted(e, 6), (200,), "bernoulli") for e in budgeted} == {6}
    assert estimators["relax"].temperature == pytest.approx(0.1)  # the authors' initial lambda


@pytest.mark.parametrize("name", DISARM)
@pytest.mark.parametrize("trained,label", [
    ("estimator=arm", "arm"), ("estimator=relax", "relax"),
    ("estimator=reinforce estimator.baseline=loo estimator.num_samples=2", LOO2),
])
def test_disarm_presets_train_another_with_the_same_basket(name, trained, label):
    estimators = probed(config(f"experiment={name}", *trained.split()))
    assert next(iter(estimators)) == label
    assert set(estimators) == {"disarm", "arm", LOO2, "relax"}


def covered(cfgs) -> dict[str, set[str]]:
    """task -> the registry names its jobs train or probe (each distinct basket built once)."""
    reached: dict[str, set[str]] = {}
    baskets: dict[tuple, set[str]] = {}
    for cfg in cfgs:
        key = (registry_name(cfg.task), str(cfg.probe.estimators), cfg.task.family)
        if key not in baskets:
            baskets[key] = {registry_name(node) for node in basket_nodes(cfg)}
        reached.setdefault(key[0], set()).update({registry_name(cfg.estimator)} | baskets[key])
    return reached


def supporting(family: str) -> set[str]:
    return {name for name, cls in ESTIMATORS.items() if family in cls.families}


def test_the_benchmark_reaches_every_estimator_its_tasks_support():
    cfgs = [config(*overrides) for overrides in jobs("-m", "experiment=benchmark")]
    assert {task_family(cfg) for cfg in cfgs} == {"bernoulli"}
    reached = covered(cfgs)
    assert set(reached) == {"toy_quadratic", "mrf"}
    for names in reached.values():
        assert names == supporting("bernoulli")
    # the rest are the estimators no benchmark task supports, and the comment names them
    missing = set(ESTIMATORS) - supporting("bernoulli")
    assert missing == {"reinmax", "unordered_set"}
    description = header(CONF_DIR / "experiment" / "benchmark.yaml")[0]
    assert all(name in description for name in missing)


def test_the_benchmarks_categorical_variant_reaches_the_rest():
    """The README's command for the categorical variant (its section on experiment=benchmark)."""
    prefix = "`discograd -m experiment=benchmark task.family=categorical "
    line = next(line for line in README.read_text().splitlines() if line.startswith(prefix))
    overrides = jobs(*shlex.split(line.strip().strip("`."))[1:])
    first = {}
    for job in overrides:  # one job of each task validated: one basket each
        first.setdefault(next(o for o in job if o.startswith("task=")), job)
    for job in first.values():
        validate(config(*job))
    cfgs = [config(*job) for job in overrides]
    reached = covered(cfgs)
    assert len(reached) == 2
    assert all(names == supporting("categorical") for names in reached.values())


@pytest.mark.parametrize("name", JANG)
def test_jang_presets_anneal_the_trained_temperature(name):
    """tau = max(0.5, exp(-r t)), r = 3e-5, updated every 1000 steps, from 1.0; no basket."""
    cfg = config(f"experiment={name}", "estimator=gumbel_softmax")
    shape = tuple(build_task(cfg).latent_shape)
    schedule = build_schedule(cfg, build_estimator(cfg, latent_shape=shape))
    assert schedule(0) == schedule(999) == 1.0
    assert schedule(1000) == pytest.approx(math.exp(-3e-5 * 1000))
    assert schedule(cfg.steps) == pytest.approx(max(0.5, math.exp(-3e-5 * cfg.steps)))
    assert schedule(10**6) == 0.5
    assert list(cfg.probe.estimators) == []
    assert cfg.task.iwae_samples == 1000 and cfg.dataset.binarize == "threshold"
