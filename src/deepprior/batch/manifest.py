"""``OUTDIR/manifest.jsonl``: one JSON row per finished item, appended (and synced) as each arrives, so that a
driver killed mid-batch loses nothing already done. A rerun appends; the latest row per item counts."""

from __future__ import annotations

import json
import os
from pathlib import Path

MANIFEST = "manifest.jsonl"


def read_manifest(outdir) -> dict[str, dict]:
    """The latest row per item name in ``OUTDIR/manifest.jsonl`` (empty when there is none).

    >>> import tempfile
    >>> d = tempfile.mkdtemp(); append_row(d, {"name": "a", "status": "failed"}); append_row(d, {"name": "a", "status": "ok"})
    >>> read_manifest(d)["a"]["status"]
    'ok'
    """
    path = Path(outdir) / MANIFEST
    rows: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash of the driver: that item is simply redone
            rows[r.get("name")] = r
    return rows


def append_row(outdir, row: dict) -> None:
    with open(Path(outdir) / MANIFEST, "a") as f:
        f.write(json.dumps(row, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
