"""Motion-corrupted multi-shot k-space from any image: seeded per-shot rigid motion (sudden jumps or a random
walk), applied to the object before the scanner-fixed coil maps, each shot sampling its own lines or spokes.
The truth — the image in shot 0's pose and the motion — is kept with the data."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError
from ..coils import birdcage_maps
from ..data import MRIData, add_noise, central_kspace, fine_object, resample_maps
from ..shots import shot_labels
from .operator import MotionSENSE
from .rigid import check_motion, rigid

KINDS = ("none", "jumps", "walk")


def motion_curve(kind: str, shots: int, *, max_shift: float = 4.0, max_rot: float = 4.0, seed: int = 0) -> Tensor:
    """Per-shot rigid motion ``(S, 3)`` = (dx px, dy px, rotation °), shot 0 at zero, seeded.

    ``jumps``: the subject holds still, then moves suddenly — 1 to 3 jumps at random shots, each to a new random
    pose; ``walk``: a Gaussian random walk (drift); ``none``: zeros. Each axis is scaled so that its largest
    excursion is exactly ``max_shift`` (px) or ``max_rot`` (°): the amplitudes are the peak motion.

    >>> m = motion_curve("jumps", 16, max_shift=2, max_rot=2, seed=0)
    >>> tuple(m.shape), m[0].tolist(), m.abs().max(0).values.tolist()
    ((16, 3), [0.0, 0.0, 0.0], [2.0, 2.0, 2.0])
    """
    if kind not in KINDS:
        raise InputError(f"unknown motion {kind!r}; choose one of {', '.join(KINDS)}")
    if max_shift < 0 or max_rot < 0:
        raise InputError("motion amplitudes must be ≥ 0")
    amp = np.array([max_shift, max_shift, max_rot])
    rng = np.random.default_rng(seed + 101)
    m = np.zeros((shots, 3))
    if kind == "jumps" and shots > 1:
        n = int(rng.integers(1, min(3, shots - 1) + 1))
        at = np.sort(rng.choice(np.arange(1, shots), size=n, replace=False))
        for j in at:
            m[j:] = rng.uniform(-1, 1, 3)
    elif kind == "walk" and shots > 1:
        m = np.vstack([np.zeros((1, 3)), np.cumsum(rng.normal(size=(shots - 1, 3)), 0)])
    peak = np.abs(m).max(0)
    m = m / np.where(peak > 0, peak, 1) * amp
    return torch.from_numpy(m).float()


def simulate_motion(image, *, coils: int = 8, shots: int = 16, order: str = "interleaved", motion="jumps",
                    max_shift: float = 4.0, max_rot: float = 4.0, accel: float = 1.0, center: int = 16,
                    snr_db: float | None = 40.0, phase: bool = True, seed: int = 0, maps: Tensor | None = None,
                    oversample: int = 1, spokes: int | None = None) -> MRIData:
    """Multi-shot k-space of ``image`` ``(H, W)`` (magnitude, or complex: then its phase is kept) under per-shot
    rigid motion: ``motion`` a kind of :func:`motion_curve` or an ``(S, 3)`` array. Cartesian: ``shots`` segments
    of the lines of a fully sampled (``accel=1``) or uniformly ``accel``-undersampled grid with a ``center``-line
    calibration block, in ``order``; radial (``spokes`` per image): golden-angle spokes in ``shots`` consecutive
    groups. Coil maps as in :func:`~deepprior.mri.data.simulate` (birdcage, or measured ``maps``), noise at
    ``snr_db``. ``oversample=2`` moves the object on a 2× finer grid and keeps the central k-space (Cartesian),
    so the simulation does not use the reconstruction's own rotation (no inverse crime). ``gt`` is the object in
    shot 0's pose (unmoved); ``motion`` the truth.

    >>> d = simulate_motion(torch.rand(32, 32), coils=2, shots=4, max_shift=1, max_rot=1, seed=0)
    >>> tuple(d.kspace.shape), tuple(d.motion.shape), int(d.shots.max()) + 1
    ((1, 2, 32, 32), (4, 3), 4)
    """
    img = torch.as_tensor(np.asarray(image))
    if img.ndim == 3 and img.shape[0] == 1:
        img = img[0]
    if img.ndim != 2:
        raise InputError(f"motion simulation takes one image (H, W) or (1, H, W), got shape {tuple(img.shape)}")
    if not torch.isfinite(torch.view_as_real(img.to(torch.complex128))).all() or img.abs().max() == 0:
        raise InputError("the image must be finite and not all zero")
    h, w = img.shape
    m = motion_curve(motion, shots, max_shift=max_shift, max_rot=max_rot, seed=seed) if isinstance(motion, str) \
        else check_motion(motion, shots)
    if maps is not None:
        maps = resample_maps(maps, h, w)
    else:
        maps = birdcage_maps(coils, h, w) if coils > 1 else None
    complex_in = img.is_complex()
    if complex_in:
        obj = (img / img.abs().max()).to(torch.complex64)
    else:
        obj = fine_object(img.double()[None], 1, seed, phase)[0]
    meta = {"coils": 1 if maps is None else maps.shape[0], "shots": shots, "order": order, "snr_db": snr_db,
            "seed": seed, "phase": phase, "oversample": oversample, "accel_nominal": accel,
            "motion_kind": motion if isinstance(motion, str) else "given", "max_shift": max_shift, "max_rot": max_rot}
    if spokes is not None:
        return _radial(obj, maps, m, shots, spokes, snr_db, seed, meta)
    labels = shot_labels(h, w, shots, order, accel=accel, center=center)
    mask = (labels >= 0).float()[None]
    if oversample == 1:
        k = MotionSENSE(labels, maps, m)(obj)
        gt = obj[None]
    else:
        if complex_in or oversample < 1 or int(oversample) != oversample:
            raise InputError("oversample takes an integer ≥ 1 and a magnitude image")
        f = int(oversample)
        fine = fine_object(img.double()[None], f, seed, phase)[0]
        moved = rigid(fine, m * torch.tensor([f, f, 1.0]))  # a shift of d coarse pixels is f·d fine ones
        gt_s, k_s = central_kspace(moved, maps, h, w)
        k = (k_s * torch.stack([(labels == s) for s in range(shots)])[:, None]).sum(0, keepdim=True)
        gt = gt_s[:1]
    k = add_noise(k.to(torch.complex64), mask[:, None].expand_as(k.real), snr_db, seed)
    return MRIData(k, mask, maps, gt.to(torch.complex64), meta, shots=labels, motion=m)


def _radial(obj, maps, m, shots, spokes, snr_db, seed, meta) -> MRIData:
    from ..sampling import golden_angle_radial

    if spokes % shots:
        raise InputError(f"{spokes} spokes do not split into {shots} equal shots: choose spokes divisible by shots")
    h, w = obj.shape
    traj = golden_angle_radial(shots, spokes // shots, max(h, w), oversampling=2).reshape(1, -1, 2)
    per = traj.shape[1] // shots
    labels = torch.arange(shots).repeat_interleave(per)
    k = MotionSENSE(labels, maps, m, traj=traj[0], shape=(h, w))(obj)
    k = add_noise(k, torch.ones_like(k.real), snr_db, seed)
    meta.update(spokes=spokes, oversampling=2, pattern="radial")
    return MRIData(k, None, maps, obj[None], meta, traj=traj, shape=(h, w), shots=labels, motion=m)
