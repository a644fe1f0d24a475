"""Typed MRI data and the k-space simulator (magnitude series → multi-coil undersampled k-space)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from .coils import birdcage_maps
from .operators import CartesianSENSE
from .sampling import cartesian_mask


@dataclass
class MRIData:
    """Undersampled Cartesian k-space with what is needed to reconstruct it.

    ``kspace``: ``(T, C, H, W)`` complex, zero where not sampled; ``mask``: ``(T, H, W)``;
    ``maps``: ``(C, H, W)`` or None (single coil); ``gt``: ``(T, H, W)`` complex reference or None.
    Static data have T = 1.
    """

    kspace: Tensor
    mask: Tensor
    maps: Tensor | None = None
    gt: Tensor | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        k = self.kspace
        if k.ndim != 4 or not k.is_complex():
            raise InputError(f"k-space must be complex (frames, coils, H, W), got {tuple(k.shape)} {k.dtype}")
        if not torch.isfinite(torch.view_as_real(k)).all():
            raise InputError("k-space contains NaN or Inf values")
        t, c, h, w = k.shape
        if self.mask.ndim == 2:
            self.mask = self.mask.expand(t, h, w)
        if tuple(self.mask.shape) != (t, h, w):
            raise InputError(f"mask shape {tuple(self.mask.shape)} does not match k-space frames×H×W {(t, h, w)}")
        if self.maps is not None and tuple(self.maps.shape) != (c, h, w):
            raise InputError(f"coil maps {tuple(self.maps.shape)} do not match k-space coils×H×W {(c, h, w)}")
        if self.maps is None and c != 1:
            raise InputError(f"{c}-coil k-space needs coil maps (or estimate them with estimate_maps)")
        if self.gt is not None and tuple(self.gt.shape) != (t, h, w):
            raise InputError(f"reference image {tuple(self.gt.shape)} does not match frames×H×W {(t, h, w)}")

    @property
    def operator(self) -> CartesianSENSE:
        return CartesianSENSE(self.mask, self.maps)

    @property
    def acceleration(self) -> float:
        return float(self.mask.numel() / max(self.mask.sum().item(), 1))


def smooth_phase(h: int, w: int, seed: int = 0, strength: float = math.pi / 2) -> Tensor:
    """A random low-order polynomial phase map (radians), as B0/receiver phase looks."""
    g = torch.Generator().manual_seed(seed)
    c = (torch.rand(6, generator=g, dtype=torch.float64) - 0.5) * 2
    y = torch.linspace(-1, 1, h, dtype=torch.float64)[:, None]
    x = torch.linspace(-1, 1, w, dtype=torch.float64)[None, :]
    return strength * (c[0] * x + c[1] * y + c[2] * x * y + c[3] * x**2 + c[4] * y**2 + 0.2 * c[5])


def simulate(series, *, coils: int = 8, pattern: str = "kt-random", accel: float = 8, center: int = 8,
             snr_db: float | None = 40.0, phase: bool = True, seed: int = 0) -> MRIData:
    """Simulate multi-coil undersampled k-space from a magnitude series ``(T, H, W)`` or ``(H, W)``.

    The magnitude is scaled to max 1, given a smooth phase (``phase``), multiplied by birdcage
    coil maps (``coils``; 1 = single coil, no maps), Fourier transformed, sampled with ``pattern``
    at ``accel`` with a ``center``-line calibration region, and complex Gaussian noise is added to the
    sampled points at ``snr_db`` (20·log10 of RMS signal / noise std over the sampled points; None
    = no noise). Everything is seeded by ``seed``. The complex image is kept as ``gt``.

    >>> d = simulate(torch.rand(4, 32, 32), coils=4, accel=4, seed=0)
    >>> tuple(d.kspace.shape), round(d.acceleration)
    ((4, 4, 32, 32), 4)
    """
    s = torch.as_tensor(np.asarray(series), dtype=torch.float64)
    if s.ndim == 2:
        s = s[None]
    if s.ndim != 3:
        raise InputError(f"series must be (frames, H, W) or (H, W), got shape {tuple(s.shape)}")
    if not torch.isfinite(s).all() or s.abs().max() == 0:
        raise InputError("series must be finite and not all zero")
    t, h, w = s.shape
    img = s.abs() / s.abs().max()
    if phase:
        img = img * torch.exp(1j * smooth_phase(h, w, seed))
    img = img.to(torch.complex64)
    maps = birdcage_maps(coils, h, w) if coils > 1 else None
    mask = cartesian_mask(t, h, w, accel=accel, center=center, pattern=pattern, seed=seed)
    op = CartesianSENSE(mask, maps)
    k = op(img)
    if snr_db is not None:
        sampled = k[mask.unsqueeze(1).expand_as(k) > 0]
        sigma = float(sampled.abs().pow(2).mean().sqrt()) / 10 ** (snr_db / 20)
        g = torch.Generator().manual_seed(seed + 7)
        noise = torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g)) * (sigma / math.sqrt(2))
        k = (k + noise * mask.unsqueeze(1)).to(torch.complex64)
    meta = {"coils": coils, "pattern": pattern, "accel_nominal": accel, "center": center, "snr_db": snr_db,
            "seed": seed, "phase": phase}
    return MRIData(k, mask, maps, img, meta)
