"""resume=true: skip a job that already finished ok with the same config.

"The same config" is the same ``config_id`` (discograd/identity.py) and the same seed, as
run_job writes them into summary.json, never a folder name: a sweep rerun with resume=true
into the same sweep directory skips every job whose configuration and seed some folder of it
already holds with status ok, and runs the rest (unfinished, failed, diverged, or new).
"""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from discograd.identity import config_id


def held(path: Path) -> dict | None:
    """The summary.json at ``path`` as a dict, or None where it is missing or unreadable
    (nothing whole to skip or to keep)."""
    try:
        summary = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def same_job(summary: dict, cfg: DictConfig) -> bool:
    """Whether ``summary`` is of cfg's configuration (config_id) and seed."""
    return (summary.get("config_id"), summary.get("seed")) == (config_id(cfg), cfg.seed)


def finished(cfg: DictConfig, root: Path) -> Path | None:
    """The folder under root whose summary.json says ok for cfg's config_id and seed, if any."""
    for path in sorted(Path(root).rglob("summary.json")):
        summary = held(path)
        if summary is not None and summary.get("status") == "ok" and same_job(summary, cfg):
            return path.parent
    return None
