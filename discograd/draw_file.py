"""``probe.save_draws=true``: a probe's raw estimates streamed to DIR/draws/step<S>-<label>.npy.

The file is a .npy written through numpy's memory map chunk by chunk (the probe never holds
[N, P]); it appears under its name only when complete (written as .partial, renamed at the
end, removed if the probe fails), so nothing half-written is left.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from types import TracebackType

import numpy as np
from torch import Tensor


def draw_path(output_dir: Path, step: int, label: str) -> Path:
    """DIR/draws/step000500-reinforce_baseline=loo_num_samples=2_.npy: the label with every
    character other than letters, digits and ._=- replaced by _."""
    return Path(output_dir) / "draws" / f"step{step:06d}-{re.sub(r'[^A-Za-z0-9._=-]+', '_', label)}.npy"


class DrawFile:
    """A context manager: ``write(rows)`` appends [n, P] estimates; the file is complete on exit."""

    def __init__(self, output_dir: Path, step: int, label: str, shape: tuple[int, int]) -> None:
        self.path = draw_path(output_dir, step, label)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.shape, self.filled, self.array = shape, 0, None

    def __enter__(self) -> "DrawFile":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, rows: Tensor) -> None:
        n = rows.shape[0]
        if self.array is None:  # the draws' own dtype, known at the first chunk
            dtype = np.dtype(str(rows.dtype).removeprefix("torch."))
            self.array = np.lib.format.open_memmap(self.partial, mode="w+", dtype=dtype, shape=self.shape)
        self.array[self.filled : self.filled + n] = rows.detach().cpu().numpy()
        self.filled += n

    def __exit__(self, kind: type | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.array is not None:
            self.array.flush()
            self.array = None  # closes the map
        if kind is None and self.filled == self.shape[0]:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)
