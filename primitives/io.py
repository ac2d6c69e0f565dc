"""Atomic file writes: a temp file in the same folder, then os.replace, so that an
interrupted run never leaves a half-written stats.csv, train.csv or summary.json."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, Sequence

import pandas as pd


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write text (or bytes) to path so that readers see the old file or the whole new one.

    The temp file is created inside the ``try`` (open mode "x": exclusive, the usual mode bits),
    so a signal arriving at any point removes it: tempfile.mkstemp, outside it, left one behind
    when SIGTERM came between its creating the file and returning."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        with open(tmp, "xb" if isinstance(text, bytes) else "x") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
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
