"""The presets (conf/experiment/) do what their comments say, checked on composed configs
without training: every command a preset's comment gives composes and validates; the DisARM
presets train disarm and probe the paper's four estimators; experiment=benchmark reaches every
registered estimator that supports its tasks; the Jang et al. presets anneal as described; the
RODEO and ReinMax presets train and probe their papers' estimators, all at one budget of
evaluations of f, with the settings their comments cite, and run end to end through the CLI."""
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
from test_cli import in_parallel, read_csv, read_summary  # tests/test_cli.py's CLI helpers

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


# ------------------------------------------- RODEO (Shi et al. 2022), ReinMax (Liu et al. 2023)

RODEO = "rodeo2022_binary"
POLYNOMIAL = "reinmax2023_polynomial"
CATEGORICAL = "reinmax2023_categorical"
GR100 = "gumbel_rao[num_samples=100]"
# the methods of ReinMax's scripts (their --method help): reinmax, gumbel, st, rao_gumbel, gst-1.0
REINMAX_BASKET = ["reinmax", "st_gumbel_softmax", "sigmoid_st", GR100, "gst"]
# categories x latents -> (lr, temperature) of mnist_vae/reinmax_C_L.sh
CELLS = {
    "8x4": (5e-4, 1.3), "4x24": (5e-4, 1.5), "8x16": (7e-4, 1.5),
    "16x12": (7e-4, 1.5), "64x8": (5e-4, 1.5), "10x30": (5e-4, 1.3),
}  # fmt: skip


def spent(cfg) -> dict[str, tuple[int, int]]:
    """label -> evaluations of f per estimate of each probed estimator, as the run wraps it
    (Budgeted, where ``budget`` is set) and as it is: {label: (wrapped, own)}."""
    shape, family = tuple(build_task(cfg).latent_shape), task_family(cfg)
    counts = {}
    for label, estimator in probed(cfg).items():
        wrapped = Budgeted(estimator, cfg.budget) if cfg.budget else estimator
        counts[label] = (evaluations(wrapped, shape, family), evaluations(estimator, shape, family))
    return counts


def test_rodeo_preset_trains_rodeo_against_the_readmes_basket_at_k_2():
    cfg = config(f"experiment={RODEO}")
    assert registry_name(cfg.estimator) == "rodeo" and cfg.estimator.num_samples == 2
    assert (cfg.dataset.name, cfg.dataset.binarize) == ("fashion_mnist", "dynamic")
    task = cfg.task
    assert (task.dims, task.encoder, task.batch_size, task.prior_lr) == (200, "nonlinear", 100, 0.0)
    assert task.lr == pytest.approx(3e-4)  # RODEO's README for fashion_mnist, not Double CV's 1e-3
    assert not task.center_input and not task.init_output_bias and cfg.steps == 10**6
    # rodeo first, then the README's double_cv, disarm, arms and reinforce_loo (relax left out)
    counts = spent(cfg)
    assert list(counts) == ["rodeo", "double_cv", "disarm", "arms", LOO2]
    assert cfg.budget == 2 and set(counts.values()) == {(2, 2)}  # all at K = 2, wrapped or not
    trained = probed(config(f"experiment={RODEO}", "estimator=double_cv"))
    assert next(iter(trained)) == "double_cv" and set(trained) == set(counts)


def test_rodeo_preset_at_budget_3_is_the_papers_k_3():
    """budget=3: every multi-sample estimator draws K = 3; disarm, fixed at 2, spends 2."""
    counts = spent(config(f"experiment={RODEO}", "budget=3"))
    assert [label.split("[")[0] for label in counts] == ["rodeo", "double_cv", "disarm", "arms", "reinforce"]
    assert {label: c for label, c in counts.items() if not label.startswith("disarm")} == {
        label: (3, 3) for label in counts if not label.startswith("disarm")}
    assert counts["disarm"] == (2, 2)


def test_reinmax_polynomial_preset_sweeps_the_papers_powers():
    cfg = config(f"experiment={POLYNOMIAL}")
    assert registry_name(cfg.estimator) == "reinmax" and cfg.temperature == 1.0
    task = build_task(cfg)
    assert (task.family, task.latent_shape, task.batch_size, task.lr) == ("categorical", (128, 2), 64, 1e-3)
    assert task.target.tolist() == pytest.approx([0.45, 0.55]) and cfg.steps == 40 * 200
    estimators = probed(cfg)
    assert list(estimators) == REINMAX_BASKET
    assert estimators[GR100].num_samples == 100 and estimators["gst"].gap == 1.0
    assert {e.temperature for e in estimators.values()} == {1.0}
    assert cfg.budget == 1 and set(spent(cfg).values()) == {(1, 1)}
    sweep = [config(*job).task.power for job in jobs("-m", f"experiment={POLYNOMIAL}")]
    assert sweep == [1.5, 2, 3] and cfg.task.power == 2.0  # -m sweeps; a single run is p = 2


@pytest.mark.parametrize("cell", CELLS)
def test_reinmax_categorical_cell_has_its_scripts_settings(cell):
    lr, tau = CELLS[cell]
    cfg = config(f"experiment={CATEGORICAL}", f"reinmax_cell={cell}", "dataset=digits")
    validate(cfg)
    assert f"{cfg.task.classes}x{cfg.task.dims}" == cell and cfg.task.lr == pytest.approx(lr)
    assert cfg.temperature == tau and registry_name(cfg.estimator) == "reinmax"
    assert (cfg.task.kl, list(cfg.task.hidden), cfg.task.batch_size, cfg.steps) == ("analytic", [512, 256], 100, 96000)
    estimators = probed(cfg)
    assert list(estimators) == REINMAX_BASKET
    assert {e.temperature for e in estimators.values()} == {tau}  # the cell's tau, for all five
    assert cfg.budget == 1 and set(spent(cfg).values()) == {(1, 1)}
    # the cell file's comment quotes its script, and the values are the quoted ones
    description = header(CONF_DIR / "reinmax_cell" / f"{cell}.yaml")[0]
    assert f"reinmax_{cell.replace('x', '_')}.sh" in description
    assert f"--lr {lr:.0e}".replace("e-0", "e-") in description and f"--temperature {tau}" in description
    optimizer = "adam" if cell == "8x4" else "radam"  # the scripts' --optim
    assert f"--optim {optimizer}" in description and cfg.task.optimizer == optimizer
    (built,) = build_task(cfg).optimizers()
    assert type(built) is (torch.optim.Adam if optimizer == "adam" else torch.optim.RAdam)


def test_reinmax_categorical_grid_is_the_six_cells_on_mnist():
    grid = jobs("-m", f"experiment={CATEGORICAL}")
    assert [job[0] for job in grid] == [f"reinmax_cell={cell}" for cell in CELLS]
    assert sorted(path.stem for path in (CONF_DIR / "reinmax_cell").glob("*.yaml")) == sorted(CELLS)
    cfg = config(f"experiment={CATEGORICAL}")  # without reinmax_cell=: the first cell
    assert (cfg.task.classes, cfg.task.dims, cfg.dataset.name) == (8, 4, "mnist")


def test_the_new_presets_run_end_to_end(tmp_path):
    """Each preset through the CLI at a tiny size (digits, 2 steps, few draws): it ends ok and
    stats.csv holds its basket, every row at the preset's budget of evaluations."""
    small = ["steps=2", "probe.samples=10", "probe.every=0", "probe.reference_samples=10", "task.batch_size=10"]
    vae = ["dataset=digits", "task.eval_points=10", "task.iwae_samples=2"]
    runs = {
        RODEO: ([f"experiment={RODEO}", *small, *vae], ["rodeo", "double_cv", "disarm", "arms", LOO2], 2),
        POLYNOMIAL: ([f"experiment={POLYNOMIAL}", *small, "task.dims=8"], REINMAX_BASKET, 1),
        CATEGORICAL: ([f"experiment={CATEGORICAL}", "reinmax_cell=16x12", *small, *vae], REINMAX_BASKET, 1),
    }
    results = in_parallel(*[(args + [f"hydra.run.dir={tmp_path / name}"], tmp_path) for name, (args, _, _) in runs.items()])
    for (name, (_, basket, budget)), result in zip(runs.items(), results):
        assert result.rc == 0, result
        assert read_summary(tmp_path / name)["status"] == "ok", result
        rows = read_csv(tmp_path / name / "stats.csv")[1]
        assert sorted({row["estimator"] for row in rows}) == sorted(basket), result
        assert {int(row["evaluations"]) for row in rows} == {budget}, result
