"""Atomic file writes: a temp file in the same folder, then os.replace, so that an
interrupted run never leaves a half-written stats.csv, train.csv or summary.json."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import pandas as pd


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write text (or bytes) to path so that readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> None:
    """rows as a CSV; ``columns`` fixes the order and puts any other keys after them."""
    frame = pd.DataFrame(list(rows))
    if columns is not None:
        extra = [c for c in frame.columns if c not in columns]
        frame = frame.reindex(columns=list(columns) + extra)
    write_atomic(path, frame.to_csv(index=False))


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")
