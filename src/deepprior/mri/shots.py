"""Multi-shot acquisitions: which shot acquires which k-space line (Cartesian segmented orderings) or which
spokes (radial spoke groups), and the checks that a shot layout tiles the acquired samples.

Phase-encode lines are the columns of k-space (the W axis), as in :mod:`deepprior.mri.sampling`; a shot
acquires whole lines (readouts are fast, motion happens between shots).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError

ORDERS = ("interleaved", "sequential", "centre-out")


def acquired_lines(w: int, accel: float = 1.0, center: int = 16) -> np.ndarray:
    """The phase-encode lines of a uniform Cartesian acquisition: every ``accel``-th line (``accel`` an integer)
    plus a fully sampled centre of ``center`` lines (for coil calibration); ``accel=1`` is every line."""
    if accel < 1 or int(accel) != accel:
        raise InputError(f"multi-shot Cartesian sampling takes an integer acceleration ≥ 1, got {accel}")
    lines = set(range(0, w, int(accel)))
    c0 = w // 2 - center // 2
    lines |= set(range(max(c0, 0), min(c0 + center, w))) if accel > 1 else set()
    return np.array(sorted(lines))


def shot_labels(h: int, w: int, shots: int, order: str = "interleaved", *, accel: float = 1.0,
                center: int = 16) -> Tensor:
    """``(H, W)`` labels: the shot that acquires each k-space point, −1 where none does. ``interleaved``: acquired
    line i goes to shot i mod S (every shot spans k-space); ``sequential``: S contiguous blocks from one edge;
    ``centre-out``: lines ordered by distance from the centre, then cut into S blocks (shot 0 gets the centre).
    Blocks differ in size by at most one line.

    >>> lab = shot_labels(4, 8, 4, "interleaved")
    >>> lab[0].tolist()
    [0, 1, 2, 3, 0, 1, 2, 3]
    >>> shot_labels(4, 8, 4, "centre-out")[0].tolist()  # the centre (line 4) and its neighbour first
    [3, 3, 2, 1, 0, 0, 1, 2]
    """
    if order not in ORDERS:
        raise InputError(f"unknown shot order {order!r}; choose one of {', '.join(ORDERS)}")
    lines = acquired_lines(w, accel, center)
    if not 1 <= shots <= len(lines):
        raise InputError(f"{shots} shots do not tile {len(lines)} acquired lines: choose 1..{len(lines)} shots")
    if order == "interleaved":
        of_line = np.arange(len(lines)) % shots
    else:
        seq = lines if order == "sequential" else lines[np.argsort(np.abs(lines - w // 2) + 0.1 * (lines < w // 2),
                                                                   kind="stable")]
        blocks = np.array_split(np.arange(len(lines)), shots)
        of_line = np.empty(len(lines), dtype=np.int64)
        pos = {int(v): i for i, v in enumerate(lines)}
        for s, b in enumerate(blocks):
            for j in b:
                of_line[pos[int(seq[j])]] = s
    lab = torch.full((h, w), -1, dtype=torch.long)
    lab[:, torch.from_numpy(lines)] = torch.from_numpy(of_line)
    return lab


def check_shots(data) -> tuple[Tensor, Tensor | None]:
    """The shot labels and true motion of multi-shot ``data`` (an :class:`~deepprior.mri.data.MRIData`), checked:
    one frame; Cartesian labels ``(H, W)`` ≥ 0 exactly where the mask samples, radial labels ``(K,)``; every
    shot 0..S−1 present; motion ``(S, 3)``. Raises :class:`InputError` naming what is wrong."""
    lab = torch.as_tensor(data.shots)
    if lab.is_floating_point() or lab.is_complex():
        if not torch.equal(lab, lab.round()):
            raise InputError("shot labels must be integers (−1 = not sampled)")
    lab = lab.long()
    if data.kspace.shape[0] != 1:
        raise InputError(f"multi-shot (motion) data are one image, got {data.kspace.shape[0]} frames")
    if data.traj is not None:
        if tuple(lab.shape) != (data.kspace.shape[-1],):
            raise InputError(f"radial shot labels must be one per sample ({data.kspace.shape[-1]},), got {tuple(lab.shape)}")
    else:
        if tuple(lab.shape) != tuple(data.shape):
            raise InputError(f"shot labels {tuple(lab.shape)} do not match the k-space grid {tuple(data.shape)}")
        sampled = data.mask[0].to(lab.device) > 0
        if not torch.equal(lab >= 0, sampled):
            raise InputError("the shots do not tile the acquired k-space: every sampled point needs exactly one shot "
                             "label ≥ 0 and every unsampled point −1")
    n = int(lab.max()) + 1 if lab.numel() else 0
    present = torch.unique(lab[lab >= 0])
    if n < 1 or present.numel() != n:
        raise InputError(f"shot labels must number the shots 0..S−1 without gaps, found {present.tolist()[:8]}…")
    motion = data.motion
    if motion is not None:
        motion = torch.as_tensor(motion).float()
        if tuple(motion.shape) != (n, 3):
            raise InputError(f"the motion is {tuple(motion.shape)} but the data have {n} shots: expected ({n}, 3)")
    return lab, motion
