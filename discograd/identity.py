"""One identity for a configuration: ``config_id``, and the readable ``overrides`` beside it.

``config_id`` hashes the job's resolved config less the keys that do not change its results:
the seed (seeds of one configuration are pooled), ``NEUTRAL`` below, and the top-level
``temperature``, which acts only through the nodes that interpolate it (the estimator's
``temperature``, the basket's), whose resolved values are hashed. So ``temperature=0.3`` and
``estimator.temperature=0.3`` are one configuration, and reinforce swept over temperatures
(which it does not read) is one configuration measured once. Every row of stats.csv and
train.csv and summary.json carries it; tables, summary.csv, the report and resume=true use
nothing else to tell configurations apart.
"""
from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any, Sequence

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from discograd.config import basket_nodes

# keys whose value never changes a number in stats.csv / train.csv (what is written, where,
# how often, how fast): hashed out of config_id
NEUTRAL = ("seed", "temperature", "resume", "overwrite", "report", "logger", "hydra", "log_every", "progress_every", "probe.chunk")
HIDDEN_OVERRIDES = ("seed", "resume", "overwrite", "report", "logger", "hydra", "progress_every")


def identity_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data, less NEUTRAL keys, with probe.estimators as the
    resolved nodes the run probes (a name's node can change; what it measured cannot)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    if plain.get("probe", {}).get("estimators"):
        plain["probe"]["estimators"] = [OmegaConf.to_container(n) for n in basket_nodes(cfg)]
    for key in NEUTRAL:
        *parents, last = key.split(".")
        node = plain
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    return plain


def config_id(cfg: DictConfig) -> str:
    """12 hex digits of sha256 over identity_config(cfg)."""
    text = json.dumps(identity_config(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def readable_overrides(overrides: Sequence[str]) -> str:
    """The job's overrides that distinguish it, space-separated: less seed= and bookkeeping
    keys (resume, report, logger, hydra.*)."""
    def key(override: str) -> str:
        return override.split("=", 1)[0].lstrip("+~").split(".", 1)[0].split("/", 1)[0]

    return " ".join(o for o in overrides if key(o) not in HIDDEN_OVERRIDES)


def estimator_knobs(node: DictConfig) -> dict[str, Any]:
    """An estimator node's knobs, resolved (less _target_ and Hydra's other _keys_)."""
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    return {k: v for k, v in plain.items() if not (k.startswith("_") and k.endswith("_"))}


def knobs_text(node: DictConfig) -> str:
    """Every knob of an estimator node as "k=v, ..." (sorted): stats.csv's ``knobs``."""
    return ", ".join(f"{k}={v}" for k, v in sorted(estimator_knobs(node).items()))


def estimator_label(node: DictConfig) -> str:
    """How rows name an estimator: its registry name, plus "[k=v,...]" for the knobs that differ
    from the class's defaults (temperature has its own column), e.g. reinforce[baseline=loo,
    num_samples=2]; unique among the estimators one run probes."""
    cls = get_class(node._target_)
    defaults = {n: p.default for n, p in inspect.signature(cls).parameters.items() if p.default is not p.empty}
    changed = {k: v for k, v in estimator_knobs(node).items() if k != "temperature" and defaults.get(k, object()) != v}
    return cls.label() + (f"[{','.join(f'{k}={v}' for k, v in sorted(changed.items()))}]" if changed else "")
