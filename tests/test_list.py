"""``discograd list`` (discograd/listing.py) and its mention in ``discograd --help``, through the
command line as in tests/test_cli.py (``python -m discograd ...`` as a subprocess):

- every registered estimator and task is a row of its table with its families, and known
  facts read exactly: reinforce is unbiased at num_samples evaluations, st is biased at 1,
  exact costs every configuration, relax learns its control variate, toy_quadratic has an
  exact gradient and the VAEs only for small latents;
- knobs are the yaml's keys, values and comments (a comment continued on the next line too);
- every conf/dataset and conf/experiment file is listed; ``list presets`` prints that section
  alone (in process, through ``listing.main``); an unknown section is one error line, exit 2;
- every line fits 100 columns; ``--help`` names ``discograd list`` and keeps Hydra's listing.

Each command runs once (a process costs seconds), all at once, in a module-scoped fixture.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from discograd import listing
from discograd.listing import CONF_DIR, knobs
from estimators import ESTIMATORS
from tasks import TASKS

COMMANDS = {"all": ["list"], "bad": ["list", "nope"], "help": ["--help"]}


def discograd(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m discograd ARGS`` in cwd, one torch thread (two run at a time)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("HYDRA_FULL_ERROR", None)
    command = [sys.executable, "-m", "discograd", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    cwd = tmp_path_factory.mktemp("list")
    with ThreadPoolExecutor(len(COMMANDS)) as pool:
        futures = {key: pool.submit(discograd, args, cwd) for key, args in COMMANDS.items()}
        return {key: future.result() for key, future in futures.items()}


def section(output: str, title: str) -> list[str]:
    """The lines of the section whose first line starts with ``title:``."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{title}:"))
    after = [i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()]
    return lines[start : (after or [len(lines)])[0]]


def rows(output: str, title: str) -> dict[str, list[str]]:
    """The section's table (after its title, up to the first blank line): name -> other cells."""
    table = section(output, title)[1:]
    table = table[: table.index("")]
    cells = [re.split(r"\s{2,}", line.strip()) for line in table[1:]]
    return {row[0]: row[1:] for row in cells}


def test_list_exits_0_on_every_section(runs):
    assert runs["all"].returncode == 0, runs["all"].stderr
    for title in ("estimators", "tasks", "datasets", "presets"):
        assert section(runs["all"].stdout, title)


def test_every_estimator_with_its_families_and_bias(runs):
    table = rows(runs["all"].stdout, "estimators")
    assert set(table) == set(ESTIMATORS)
    for name, cls in ESTIMATORS.items():
        families, unbiased = ", ".join(sorted(cls.families)), "yes" if cls.unbiased else "no"
        assert table[name][:2] == [families, unbiased], name


def test_known_estimator_facts(runs):
    table = rows(runs["all"].stdout, "estimators")
    assert table["reinforce"] == ["bernoulli, categorical, sequence", "yes", "yes", "num_samples (default 1)"]
    assert table["st"] == ["bernoulli, categorical, sequence", "no", "yes", "1"]
    assert table["arm"] == ["bernoulli", "yes", "yes", "2"]
    assert table["rebar"][3] == "3"
    assert table["gumbel_rao"][3] == "1"  # its num_samples draws noise, not f evaluations
    assert table["exact"][3] == "2^D or K^D (all states)"
    assert table["unordered_set"][3] == "num_samples (default 4)"
    details = "\n".join(section(runs["all"].stdout, "estimators"))
    assert "  arm: learned: none\n    no knobs" in details
    assert "  relax: learned: eta, log_temperature, network (4 tensors) (Adam, lr 0.001)" in details
    assert "  rebar: learned: none; learn=true: eta, log_temperature (Adam, lr 0.001)" in details


def test_estimator_knobs_come_from_the_yaml(runs):
    lines = [line.strip() for line in section(runs["all"].stdout, "estimators")]
    reinforce = r"num_samples=1\s+samples per estimate \(>= 2 for loo\)"
    gumbel_rao = r"temperature=\$\{temperature\}\s+tau of the softmax / sigmoid in the backward"
    assert any(re.fullmatch(reinforce, line) for line in lines)
    assert any(re.fullmatch(gumbel_rao, line) for line in lines)
    continued = "set per latent, the other latents at one shared sample (any D)"  # on its own line
    assert continued in " ".join(lines)
    for path in (CONF_DIR / "estimator").glob("*.yaml"):
        for knob in knobs(path):
            listed = any(line.startswith(f"{knob.key}={knob.value}") for line in lines)
            assert listed, (path.stem, knob)


def test_every_task_with_its_families_estimand_and_exact_gradient(runs):
    table = rows(runs["all"].stdout, "tasks")
    assert set(table) == set(TASKS)
    assert table["toy_quadratic"] == ["bernoulli, categorical", "logits [1]", "yes"]
    assert table["mrf"] == ["bernoulli, categorical", "logits [9, 2]", "yes"]
    assert table["binary_vae"][0] == "bernoulli" and table["binary_vae"][2] == "small latents only"
    assert table["categorical_vae"][0] == "categorical"
    assert table["categorical_vae"][1].startswith("encoder: 6 tensors")
    tasks = "\n".join(section(runs["all"].stdout, "tasks"))
    assert re.search(r"\n    family=bernoulli +bernoulli \| categorical\n", tasks)


def test_every_dataset_and_preset_is_listed(runs):
    datasets = section(runs["all"].stdout, "datasets")
    presets = section(runs["all"].stdout, "presets")
    for path in (CONF_DIR / "dataset").glob("*.yaml"):
        assert f"  {path.stem}" in datasets
    for path in (CONF_DIR / "experiment").glob("*.yaml"):
        assert f"  {path.stem}" in presets
    assert "    run: discograd -m experiment=benchmark" in presets
    assert "    sets: task=binary_vae dataset=mnist estimator=disarm" in presets


def test_one_section(runs, capsys):  # in process: the main the CLI calls, without the seconds
    assert listing.main(["presets"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("presets:")
    assert printed.strip() == "\n".join(section(runs["all"].stdout, "presets"))


def test_unknown_section_is_one_error_line(runs):
    result = runs["bad"]
    assert result.returncode == 2
    assert result.stdout == ""
    valid = "estimators, tasks, datasets, presets"
    assert result.stderr == f"discograd: error: unknown section 'nope'; valid: {valid}\n"


def test_lines_fit_100_columns(runs):
    assert [line for line in runs["all"].stdout.splitlines() if len(line) > 100] == []


def test_help_names_list_and_check_and_keeps_hydras_listing(runs):
    result = runs["help"]
    assert result.returncode == 0, result.stderr
    assert "discograd list [SECTION]" in result.stdout and "discograd check TARGET" in result.stdout
    assert "== Configuration groups ==" in result.stdout
    group = next(line for line in result.stdout.splitlines() if line.startswith("estimator: "))
    assert {"arm", "disarm", "reinforce"} <= set(group.removeprefix("estimator: ").split(", ")), group  # Hydra's group listing
    assert "== Config ==" in result.stdout and "num_samples: 1" in result.stdout


def test_knobs_parse_values_comments_and_continuations(tmp_path):
    path = tmp_path / "node.yaml"
    path.write_text(
        "# a header\n_target_: x.Y\nplain: 3\nlisted: [1, 2]   # a list\n"
        "long: a        # first part\n               # second part\nref: ${temperature}\n"
    )
    assert [(k.key, k.value, k.comment) for k in knobs(path)] == [
        ("plain", "3", ""), ("listed", "[1, 2]", "a list"), ("long", "a", "first part second part"),
        ("ref", "${temperature}", ""),
    ]  # fmt: skip
