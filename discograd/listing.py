"""``discograd list [SECTION ...]``: what there is to run, read from the registries and conf/.

Sections: ``estimators`` (estimators/registry.py and conf/estimator/), ``tasks``
(tasks/registry.py and conf/task/), ``datasets`` (conf/dataset/) and ``presets``
(conf/experiment/). Every fact comes from the code or the config, never from a copy:

- knobs are the top-level keys of the yaml node (not ``_target_``, ``_convert_``) with their
  value as written and their end-of-line comment (continued on comment-only lines below it);
  descriptions are the yaml's leading comment lines (a preset's first sentence, and its
  ``discograd ...`` lines as the command that runs it);
- an estimator's evaluations of f per estimate are measured: it is built from its node (at the
  root config's temperature) and run once on logits of D = 2 (K = 3), then D = 3. A count that
  changes when an integer knob is raised by one is reported as that knob with its default; one
  that changes with D and equals the number of joint configurations, as 2^D or K^D;
- learned parameters are the estimator's parameters where it sets ``control_lr`` (the run
  loop's optimizer steps them), else none; with a ``learn`` knob that is off, also what
  ``learn=true`` would learn;
- a task is built at its defaults (the root config composed with ``task=NAME``): its families
  are the class's ``family``, or each family its ``family`` knob accepts; its estimand is
  ``estimand()``; it has an exact gradient ("yes") if its class overrides
  ``Task.exact_gradient`` and that returns a gradient at the defaults, "small latents only"
  if it returns None there, "no" if the class does not override it.
"""
from __future__ import annotations

import os
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from omegaconf import OmegaConf

from discograd.config import CONF_DIR

WIDTH = 100
HIDDEN_KEYS = {"_target_", "_convert_", "_recursive_", "_partial_", "defaults", "hydra"}
KEY_LINE = re.compile(r"^([A-Za-z_]\w*):(.*)$")
USAGE_LINE = re.compile(r"^#\s+(discograd .*)$")
SHAPES = {"bernoulli": [(2,), (3,)], "categorical": [(2, 3), (3, 3)]}  # D = 2 (K = 3), then D = 3


# ------------------------------------------------------------------------- yaml and layout


@dataclass(frozen=True)
class Knob:
    key: str
    value: str  # as written in the yaml
    comment: str


def knobs(path: Path) -> list[Knob]:
    """The top-level keys of the yaml at ``path``, their written values and comments."""
    found: list[Knob] = []
    for line in path.read_text().splitlines():
        if (match := KEY_LINE.match(line)) is not None:
            value, comment = (re.split(r"\s#", f" {match[2]}", maxsplit=1) + [""])[:2]
            found.append(Knob(match[1], value.strip(), comment.strip()))
        elif found and line[:1].isspace() and line.strip().startswith("#"):
            more = line.strip().lstrip("#").strip()
            found[-1] = Knob(found[-1].key, found[-1].value, f"{found[-1].comment} {more}".strip())
    return [k for k in found if k.key not in HIDDEN_KEYS]


def header(path: Path) -> tuple[str, list[str]]:
    """(description, ``discograd ...`` lines) from the leading comment lines of ``path``."""
    description, usage = [], []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if (match := USAGE_LINE.match(line)) is not None:
            usage.append(match[1])
        elif not line.startswith("# @package"):
            description.append(line.lstrip("#").strip())
    return " ".join(description), usage


def first_sentence(text: str) -> str:
    """``text`` up to its first full stop that a capital letter follows (or all of it)."""
    return re.split(r"(?<=\.)\s+(?=[A-Z])", text, maxsplit=1)[0]


def wrapped(text: str, indent: int = 2, hanging: int = 0) -> list[str]:
    """``text`` wrapped to WIDTH at ``indent``, its later lines ``hanging`` further in."""
    later = " " * (indent + hanging)
    return textwrap.wrap(text, WIDTH, initial_indent=" " * indent, subsequent_indent=later)


def table(rows: list[list[str]], indent: int = 2) -> list[str]:
    """``rows`` as aligned columns, the last one wrapped to WIDTH under itself."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lead = indent + sum(w + 2 for w in widths)
    lines = []
    for row in rows:
        left = " " * indent + "".join(cell.ljust(w + 2) for cell, w in zip(row, widths))
        last = textwrap.wrap(row[-1], max(30, WIDTH - lead)) or [""]
        lines += [(left + last[0]).rstrip()] + [" " * lead + part for part in last[1:]]
    return lines


def knob_lines(path: Path, indent: int = 4) -> list[str]:
    """The knobs of ``path`` as ``key=value  comment`` lines; "no knobs" where it has none."""
    found = knobs(path)
    if not found:
        return [" " * indent + "no knobs"]
    return table([[f"{k.key}={k.value}", k.comment] for k in found], indent)


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


# ------------------------------------------------------------------------------ estimators


def estimator_node(name: str) -> dict[str, Any]:
    """conf/estimator/NAME.yaml with ``${temperature}`` at the root config's temperature."""
    temperature = OmegaConf.load(CONF_DIR / "config.yaml").temperature
    node = OmegaConf.load(CONF_DIR / "estimator" / f"{name}.yaml")
    both = OmegaConf.merge({"temperature": temperature}, {"node": node})
    return OmegaConf.to_container(both, resolve=True)["node"]


def build(node: dict[str, Any], latent_shape: tuple[int, ...]) -> Any:
    """The estimator of ``node`` (a resolved conf node: ``_target_`` and knobs) for
    ``latent_shape``, in eval mode; constructed as Hydra's instantiate would, without its cost."""
    from hydra.utils import get_class

    from estimators.registry import construction

    cls = get_class(node["_target_"])
    knobs = {k: v for k, v in node.items() if k not in HIDDEN_KEYS}
    return cls(**knobs, **construction(cls, latent_shape)).eval()


def evaluations(node: dict[str, Any], family: str, latent_shape: tuple[int, ...]) -> int:
    """The evaluations of f that one estimate of ``node``'s estimator makes on logits
    [1, *latent_shape]."""
    import torch

    logits = torch.zeros((1,) + latent_shape, requires_grad=True)
    return build(node, latent_shape)(logits, lambda z: z.flatten(2).sum(-1), family).evaluations


def follows(node: dict[str, Any], key: str, family: str, count: int) -> bool:
    """Whether the evaluations (``count`` at the knobs of ``node``) change when the integer
    knob ``key`` is raised by one (False where that value is refused)."""
    value = node[key]
    if type(value) is not int:
        return False
    try:
        return evaluations({**node, key: value + 1}, family, SHAPES[family][0]) != count
    except ValueError:  # the knob's largest value: it cannot be raised
        return False


def evaluations_text(node: dict[str, Any], families: list[str]) -> str:
    """The evaluations of f per estimate, measured (module docstring): a number, the integer
    knobs it follows, or 2^D / K^D; measured on the independent-latent families (on a
    sequence an estimate costs the same number of sequences)."""
    from primitives.enumeration import count

    families = [f for f in families if f in SHAPES]
    counts = {f: [evaluations(node, f, shape) for shape in SHAPES[f]] for f in families}
    first = counts[families[0]][0]
    raised = [key for key in node if follows(node, key, families[0], first)]
    if raised:
        return ", ".join(f"{key} (default {node[key]})" for key in raised)
    if len({n for values in counts.values() for n in values}) == 1:
        return str(first)
    if all(counts[f] == [count(shape, f) for shape in SHAPES[f]] for f in families):
        names = {"bernoulli": "2^D", "categorical": "K^D"}
        return " or ".join(names[f] for f in families) + " (all states)"
    return f"depends on D, K ({first} at D = 2)"


def learned_text(estimator: Any) -> str:
    """The parameters the run loop trains (``control_lr`` set), grouped by their first name part."""
    if estimator.control_lr is None:
        return "none"
    groups: dict[str, list[str]] = {}
    for name, _ in estimator.named_parameters():
        groups.setdefault(name.split(".")[0], []).append(name)
    names = [g if m == [g] else f"{g} ({len(m)} tensors)" for g, m in groups.items()]
    return f"{', '.join(names)} (Adam, lr {estimator.control_lr:g})"


def learned(node: dict[str, Any], family: str) -> str:
    """What the estimator of ``node`` learns at its knobs; with a ``learn`` knob off, also at on."""
    shape = SHAPES[family][0]
    text = learned_text(build(node, shape))
    if node.get("learn") is False:
        text += f"; learn=true: {learned_text(build({**node, 'learn': True}, shape))}"
    return text


def estimators() -> list[str]:
    """Every registered estimator: its capabilities, then its learned parameters and knobs."""
    from estimators import ESTIMATORS

    rows, details = [["name", "families", "unbiased", "vmap", "evaluations of f per estimate"]], []
    for name in sorted(ESTIMATORS):
        cls, node = ESTIMATORS[name], estimator_node(name)
        families = sorted(cls.families)
        rows.append([name, ", ".join(families), yes(cls.unbiased), yes(cls.vmappable)])
        rows[-1].append(evaluations_text(node, families))
        details += wrapped(f"{name}: learned: {learned(node, families[0])}", 2, 2)
        details += knob_lines(CONF_DIR / "estimator" / f"{name}.yaml")
    title = "estimators: estimator=NAME, knobs estimator.KNOB=VALUE (conf/estimator/NAME.yaml)"
    return [title] + table(rows) + ["", "  learned parameters and knobs"] + details


# ----------------------------------------------------------------------------------- tasks


def estimand_text(task: Any) -> str:
    """The estimand's tensors: ``name [shape]`` for one or two, else grouped by first name part."""
    params = task.estimand()
    if len(params) <= 2:
        return ", ".join(f"{name} {list(p.shape)}" for name, p in params.items())
    groups = sorted({name.split(".")[0] for name in params})
    values = sum(p.numel() for p in params.values())
    return f"{', '.join(groups)}: {len(params)} tensors, {values:,} values"


def task_families(cfg: Any, task: Any) -> list[str]:
    """The family of ``task``, or, where its node has a ``family`` knob, each one it accepts."""
    from omegaconf import open_dict

    from discograd.config import build_task
    from discograd.errors import ConfigError
    from primitives.families import FAMILIES

    if "family" not in cfg.task:
        return [task.family]
    families = []
    for family in FAMILIES:
        with open_dict(cfg):
            cfg.task.family = family
        try:
            families.append(build_task(cfg).family)
        except ConfigError:  # this family is refused (at the other knobs' defaults)
            pass
    return families


def task_facts(cfg: Any) -> list[str]:
    """[families, estimand, exact gradient] of the task composed in ``cfg`` (module docstring)."""
    from discograd.config import build_task
    from tasks import Task

    task = build_task(cfg)
    if type(task).exact_gradient is Task.exact_gradient:
        exact = "no"
    else:
        exact = "yes" if task.exact_gradient(None) is not None else "small latents only"
    return [", ".join(task_families(cfg, task)), estimand_text(task), exact]


def tasks() -> list[str]:
    """Every registered task: its families, estimand and exact gradient, then its knobs."""
    from hydra import compose, initialize_config_dir

    from tasks import TASKS

    rows, details = [["name", "families", "estimand (at the defaults)", "exact gradient"]], []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for name in sorted(TASKS):
            rows.append([name] + task_facts(compose("config", overrides=[f"task={name}"])))
            path = CONF_DIR / "task" / f"{name}.yaml"
            details += wrapped(f"{name}: {header(path)[0]}", 2, 2) + knob_lines(path)
    title = "tasks: task=NAME, knobs task.KNOB=VALUE (conf/task/NAME.yaml)"
    return [title] + table(rows) + ["", "  knobs"] + details


# ------------------------------------------------------------------------ datasets, presets


def datasets() -> list[str]:
    """Every conf/dataset/ option: its description and knobs."""
    lines = ["datasets: dataset=NAME, for the VAE tasks; knobs dataset.KNOB=VALUE (conf/dataset/)"]
    for path in sorted((CONF_DIR / "dataset").glob("*.yaml")):
        lines += [f"  {path.stem}"] + wrapped(header(path)[0], 4) + knob_lines(path)
    return lines


def preset_sets(path: Path) -> list[str]:
    """The group options a preset overrides (its defaults list) and the values it sweeps."""
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    defaults = [entry for entry in node.get("defaults", []) if isinstance(entry, dict)]
    sets = [f"{key.split('/')[-1]}={value}" for entry in defaults for key, value in entry.items()]
    params = node.get("hydra", {}).get("sweeper", {}).get("params", {})
    sweeps = [f"{key}={value}" for key, value in params.items()]
    lines = []
    for label, items in (("sets", sets), ("sweeps", sweeps)):
        lines += wrapped(f"{label}: {' '.join(items)}", 4, 2) if items else []
    return lines


def presets() -> list[str]:
    """Every conf/experiment/ preset: the first sentence of its description, what it sets and
    sweeps, and the command that runs it."""
    lines = ["presets: experiment=NAME, named studies (conf/experiment/NAME.yaml)"]
    for path in sorted((CONF_DIR / "experiment").glob("*.yaml")):
        description, usage = header(path)
        lines += [f"  {path.stem}"] + wrapped(first_sentence(description), 4) + preset_sets(path)
        lines += [line for command in usage for line in wrapped(f"run: {command}", 4, 2)]
    return lines


SECTION_LINES: dict[str, Callable[[], list[str]]] = {
    "estimators": estimators, "tasks": tasks, "datasets": datasets, "presets": presets,
}  # fmt: skip
SECTIONS = tuple(SECTION_LINES)


def main(argv: list[str]) -> int:
    """Print the sections named in ``argv`` (all without one); 2 for an unknown section."""
    if argv in (["-h"], ["--help"]):
        print(f"usage: discograd list [SECTION ...]; sections: {', '.join(SECTIONS)}; default: all")
        return 0
    for name in argv:
        if name not in SECTION_LINES:
            valid = ", ".join(SECTIONS)
            print(f"discograd: error: unknown section {name!r}; valid: {valid}", file=sys.stderr)
            return 2
    text = "\n\n".join("\n".join(SECTION_LINES[name]()) for name in argv or SECTIONS)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # the reader stopped early (| head): no traceback at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0
