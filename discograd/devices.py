"""Device names users type (``device=cpu|cuda|mps|auto``) and what they resolve to here."""
from __future__ import annotations

import torch

from discograd.errors import ConfigError

DEVICES = ("cpu", "cuda", "mps", "auto")


def _available() -> dict[str, bool]:
    return {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}


def resolve_device(name: str) -> torch.device:
    """torch.device for ``name``; auto picks cuda, then mps, then cpu. A ConfigError if
    the name is unknown or the device is not available on this machine."""
    if name not in DEVICES:
        raise ConfigError(f"unknown device {name!r}; valid: {', '.join(DEVICES)}")
    available = _available()
    if name == "auto":
        name = next(d for d in ("cuda", "mps", "cpu") if available[d])
    if not available[name]:
        here = [d for d in DEVICES if d == "auto" or available.get(d)]
        raise ConfigError(
            f"device={name} asked for, but {name} is not available on this machine "
            f"(torch {torch.__version__}); valid here: {', '.join(here)}"
        )
    return torch.device(name)
