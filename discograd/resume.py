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


def finished(cfg: DictConfig, root: Path) -> Path | None:
    """The folder under root whose summary.json says ok for cfg's config_id and seed, if any."""
    wanted = (config_id(cfg), cfg.seed)
    for path in sorted(Path(root).rglob("summary.json")):
        try:
            summary = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # unreadable: not finished
        if summary.get("status") == "ok" and (summary.get("config_id"), summary.get("seed")) == wanted:
            return path.parent
    return None
