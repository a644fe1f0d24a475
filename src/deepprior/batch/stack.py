"""Per-slice MRI batches: once every slice of a file is reconstructed, stack them into the file's volume."""

from __future__ import annotations

import os
from pathlib import Path

from .manifest import append_row, read_manifest
from .worker import PARTIAL


def stack_volumes(jobs, rows_in, outdir: Path, ext: str, force: bool) -> list[dict]:
    """Write ``OUTDIR/<stem><ext>`` for every file whose slices are all done (this run or an earlier one) and whose
    volume is missing (or ``force``). Each slice was reconstructed at its own intensity scale; the volume takes the
    largest, so that slice-to-slice intensities are the scanner's (as ``mri recon`` does for a whole file)."""
    import numpy as np
    import torch

    from ..mri.io import save_recon

    done = read_manifest(outdir)
    rows = []
    for r in rows_in:
        name = r["name"]
        mine = sorted((j for j in jobs if j.item.file == name), key=lambda j: j.item.slice)
        final = Path(outdir) / f"{name}{ext}"
        if final.exists() and not force:
            continue
        states = [done.get(j.item.name, {}) for j in mine]
        if not mine or any(s.get("status") != "ok" or not j.final.exists() for s, j in zip(states, mine, strict=True)):
            continue
        scales = [float(s.get("scale", 1.0)) for s in states]
        top = max(scales)
        vol = torch.cat([torch.from_numpy(np.load(j.final)) * (v / top) for j, v in zip(mine, scales, strict=True)])
        tmp = Path(outdir) / PARTIAL / f"{name}{ext}"
        save_recon(tmp, vol, overwrite=True)
        os.replace(tmp, final)
        row = {"name": name, "input": r["input"], "output": str(final), "status": "ok", "kind": "volume",
               "slices": len(mine), "seconds": round(sum(float(s.get("seconds", 0)) for s in states), 3)}
        append_row(outdir, row)
        rows.append(row)
    return rows
