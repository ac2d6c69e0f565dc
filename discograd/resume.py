"""resume=true: skip a job that already finished ok with the same config.

"The same config" is the hash of the resolved config that run_job writes into summary.json
(discograd.run.config_hash), never a folder name: a sweep rerun with resume=true into the
same sweep directory skips every job whose configuration some folder of it already holds
with status ok, and runs the rest (unfinished, failed, diverged, or new).
"""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from discograd.run import config_hash


def finished(cfg: DictConfig, root: Path) -> Path | None:
    """The folder under root whose summary.json says ok for cfg's config hash, if any."""
    wanted = config_hash(cfg)
    for path in sorted(Path(root).rglob("summary.json")):
        try:
            summary = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # unreadable: not finished
        if summary.get("status") == "ok" and summary.get("config_hash") == wanted:
            return path.parent
    return None
