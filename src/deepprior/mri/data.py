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
from .shots import check_shots


@dataclass
class MRIData:
    """Undersampled k-space with what is needed to reconstruct it.

    Cartesian: ``kspace`` ``(T, C, H, W)`` complex, zero where not sampled, ``mask`` ``(T, H, W)``.
    Radial: ``kspace`` ``(T, C, K)`` and ``traj`` ``(T, K, 2)`` in radians, ``shape`` = (H, W).
    ``maps``: ``(C, H, W)`` or None (single coil); ``gt``: ``(T, H, W)`` complex reference or None.
    Static data have T = 1. Multi-shot static data (motion correction) add ``shots``: which shot acquired each
    sample (Cartesian ``(H, W)``, −1 where nothing was; radial ``(K,)``), and ``motion`` ``(S, 3)``, the true
    per-shot motion when it is known (a simulation).
    """

    kspace: Tensor
    mask: Tensor | None = None
    maps: Tensor | None = None
    gt: Tensor | None = None
    meta: dict = field(default_factory=dict)
    traj: Tensor | None = None
    shape: tuple[int, int] | None = None
    shots: Tensor | None = None
    motion: Tensor | None = None

    def __post_init__(self):
        k = self.kspace
        if not k.is_complex():
            raise InputError(f"k-space must be complex, got {k.dtype}")
        if not torch.isfinite(torch.view_as_real(k)).all():
            raise InputError("k-space contains NaN or Inf values")
        if self.traj is not None:
            self._check_radial()
        else:
            self._check_cartesian()
        if self.shots is not None:
            self.shots, self.motion = check_shots(self)

    def _check_cartesian(self):
        k = self.kspace
        if k.ndim != 4:
            raise InputError(f"Cartesian k-space must be (frames, coils, H, W), got {tuple(k.shape)}")
        if self.mask is None:
            raise InputError("Cartesian k-space needs a sampling mask")
        t, c, h, w = k.shape
        self.shape = (h, w)
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

    def _check_radial(self):
        k, tr = self.kspace, self.traj
        if k.ndim != 3 or tr.ndim != 3 or tr.shape[-1] != 2:
            raise InputError(f"radial data need k-space (frames, coils, samples) and a (frames, samples, 2) "
                             f"trajectory, got {tuple(k.shape)} and {tuple(tr.shape)}")
        t, c, n = k.shape
        if tuple(tr.shape[:2]) != (t, n):
            raise InputError(f"trajectory {tuple(tr.shape)} does not match k-space frames×samples {(t, n)}")
        if self.maps is not None:
            self.shape = tuple(self.maps.shape[-2:])
            if self.maps.shape[0] != c:
                raise InputError(f"coil maps have {self.maps.shape[0]} coils, k-space {c}")
        elif c != 1:
            raise InputError(f"{c}-coil k-space needs coil maps")
        if self.shape is None:
            raise InputError("radial data without coil maps need the image shape")
        if self.gt is not None and tuple(self.gt.shape) != (t, *self.shape):
            raise InputError(f"reference image {tuple(self.gt.shape)} does not match frames×H×W {(t, *self.shape)}")

    def to(self, device) -> "MRIData":
        """The same data with every tensor on ``device`` (the operator is built there too)."""
        mv = lambda t: None if t is None else t.to(device)  # noqa: E731
        return MRIData(mv(self.kspace), mv(self.mask), mv(self.maps), mv(self.gt), dict(self.meta),
                       traj=mv(self.traj), shape=self.shape, shots=mv(self.shots), motion=mv(self.motion))

    def frame(self, t: int) -> "MRIData":
        """Frame ``t`` alone, as static data (T = 1)."""
        sl = slice(t, t + 1)
        pick = lambda v: None if v is None else v[sl]  # noqa: E731
        return MRIData(self.kspace[sl], pick(self.mask), self.maps, pick(self.gt), dict(self.meta),
                       traj=pick(self.traj), shape=self.shape, shots=self.shots, motion=self.motion)

    @property
    def radial(self) -> bool:
        return self.traj is not None

    @property
    def frames(self) -> int:
        return self.kspace.shape[0]

    @property
    def operator(self):
        if self.radial:
            from .nufft import RadialSENSE

            return RadialSENSE(self.traj, self.maps, shape=self.shape)
        return CartesianSENSE(self.mask, self.maps)

    @property
    def acceleration(self) -> float:
        """Nyquist samples per frame / acquired samples per frame (radial: spokes × readout vs H×W·π/2)."""
        if self.radial:
            h, w = self.shape
            n = self.kspace.shape[-1] / (self.meta.get("oversampling", 2) or 1)  # samples at Nyquist spacing
            return float(math.pi / 2 * max(h, w) * max(h, w) / n)
        return float(self.mask.numel() / max(self.mask.sum().item(), 1))


def _finer(series: Tensor, maps: Tensor | None, f: int, seed: int, phase: bool) -> tuple[Tensor, Tensor]:
    """The object on an f× finer grid; returns the reference (the object low-passed to the H×W grid) and every
    coil's k-space cropped to the central H×W, both scaled so that a constant object keeps its value."""
    t, h, w = series.shape
    return central_kspace(fine_object(series, f, seed, phase), maps, h, w)


def fine_object(series: Tensor, f: int, seed: int = 0, phase: bool = True) -> Tensor:
    """A magnitude series ``(T, H, W)`` rendered on an f× finer grid: bicubic magnitude (scaled to max 1), and the
    smooth phase of :func:`simulate` (same seed) evaluated there. Complex64 ``(T, f·H, f·W)``.

    >>> tuple(fine_object(torch.rand(1, 8, 8), 2).shape)
    (1, 16, 16)
    """
    import torch.nn.functional as F

    t, h, w = series.shape
    mag = F.interpolate((series.abs() / series.abs().max()).float()[:, None], size=(f * h, f * w), mode="bicubic",
                        align_corners=False)[:, 0].clamp(min=0)
    fine = mag.to(torch.complex64)
    if phase:
        fine = fine * torch.exp(1j * smooth_phase(f * h, f * w, seed)).to(torch.complex64)
    return fine


def central_kspace(fine: Tensor, maps: Tensor | None, h: int, w: int) -> tuple[Tensor, Tensor]:
    """An object ``(T, f·h, f·w)`` rendered on an f× finer grid → (the object low-passed to ``h × w``, every
    coil's k-space cropped to the central ``h × w``), scaled so that a constant object keeps its value. ``maps``
    (any size) are resampled to the fine grid. This is a simulation without the inverse crime: the measured
    k-space is not band-limited to the reconstruction grid.

    >>> gt, k = central_kspace(torch.ones(1, 32, 32, dtype=torch.complex64), None, 16, 16)
    >>> tuple(k.shape), round(float(gt.real.mean()), 4)
    ((1, 1, 16, 16), 1.0)
    """
    from .fft import fft2c, ifft2c

    fh, fw = fine.shape[-2:]
    y0, x0 = (fh - h) // 2, (fw - w) // 2
    f = math.sqrt(fh * fw / (h * w))
    crop = lambda k: k[..., y0:y0 + h, x0:x0 + w] / f  # noqa: E731 - orthonormal FFTs: 1/f keeps the values
    gt = ifft2c(crop(fft2c(fine)))
    coil_imgs = fine[:, None] * (resample_maps(maps, fh, fw) if maps is not None else 1)
    return gt, crop(fft2c(coil_imgs)).to(torch.complex64)


def add_noise(k: Tensor, sampled: Tensor, snr_db: float | None, seed: int) -> Tensor:
    """Complex Gaussian noise on the ``sampled`` entries of ``k`` at ``snr_db``: 20·log10 of the RMS signal over
    the sampled points / the noise standard deviation (the definition of ``mri simulate --snr``), seeded.

    >>> k = torch.ones(1, 1, 8, 8, dtype=torch.complex64)
    >>> round(float((add_noise(k, torch.ones(1, 1, 8, 8), 20.0, 0) - k).abs().square().mean().sqrt()), 1)
    0.1
    """
    if snr_db is None:
        return k
    sampled = sampled.expand_as(k.real)
    sigma = float(k[sampled > 0].abs().pow(2).mean().sqrt()) / 10 ** (snr_db / 20)
    g = torch.Generator().manual_seed(seed + 7)
    noise = torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g)) * (sigma / math.sqrt(2))
    return (k + noise * sampled).to(torch.complex64)


def smooth_phase(h: int, w: int, seed: int = 0, strength: float = math.pi / 2) -> Tensor:
    """A random low-order polynomial phase map (radians), as B0/receiver phase looks."""
    g = torch.Generator().manual_seed(seed)
    c = (torch.rand(6, generator=g, dtype=torch.float64) - 0.5) * 2
    y = torch.linspace(-1, 1, h, dtype=torch.float64)[:, None]
    x = torch.linspace(-1, 1, w, dtype=torch.float64)[None, :]
    return strength * (c[0] * x + c[1] * y + c[2] * x * y + c[3] * x**2 + c[4] * y**2 + 0.2 * c[5])


def resample_maps(maps: Tensor, h: int, w: int) -> Tensor:
    """Coil maps ``(C, H', W')`` resampled to ``(C, h, w)`` (bilinear on real and imaginary parts) and normalised
    to Σ|S|² = 1 where they are non-zero — measured maps (e.g. ESPIRiT of a real scan) for a simulation.

    >>> from deepprior.mri.coils import birdcage_maps
    >>> m = resample_maps(birdcage_maps(4, 32, 32), 20, 24)
    >>> tuple(m.shape), round(float(m.abs().square().sum(0).mean()), 4)
    ((4, 20, 24), 1.0)
    """
    import torch.nn.functional as F

    m = torch.as_tensor(maps).to(torch.complex64)
    if m.ndim != 3:
        raise InputError(f"coil maps must be (coils, H, W), got shape {tuple(m.shape)}")
    support = F.interpolate((m.abs().square().sum(0) > 0).float()[None, None], size=(h, w), mode="nearest")[0, 0] > 0
    ri = F.interpolate(torch.view_as_real(m).permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False)
    out = torch.complex(ri[:, 0], ri[:, 1]) * support
    norm = out.abs().square().sum(0, keepdim=True).sqrt()
    return torch.where(norm > 0, out / norm.clamp(min=1e-12), out)


def simulate(series, *, coils: int = 8, pattern: str = "kt-random", accel: float = 8, center: int = 8,
             snr_db: float | None = 40.0, phase: bool = True, seed: int = 0, spokes: int | None = None,
             maps: Tensor | None = None, oversample: int = 1) -> MRIData:
    """Simulate multi-coil undersampled k-space from a magnitude series ``(T, H, W)`` or ``(H, W)``.

    The magnitude is scaled to max 1, given a smooth phase (``phase``), multiplied by birdcage
    coil maps (``coils``; 1 = single coil, no maps), Fourier transformed, sampled with ``pattern``
    at ``accel`` with a ``center``-line calibration region, and complex Gaussian noise is added to the
    sampled points at ``snr_db`` (20·log10 of RMS signal / noise std over the sampled points; None
    = no noise). ``pattern='radial'`` (or ``spokes=N``) samples ``N`` golden-angle spokes per frame
    (readout oversampling 2) through the NUFFT instead. Everything is seeded by ``seed``. The complex
    image is kept as ``gt``.

    Without the inverse crime: ``maps`` takes measured coil maps (any size: resampled, see
    :func:`resample_maps`) instead of birdcage maps; ``oversample=2`` simulates the object on a 2× finer grid
    (bicubic magnitude, phase and maps there), so that its k-space is not band-limited to the reconstruction
    grid, and keeps the central H×W of that k-space (Cartesian only); ``gt`` is then the same low-passed object,
    the best any reconstruction on the H×W grid can do.

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
    if spokes is not None:
        pattern = "radial"
    img = s.abs() / s.abs().max()
    if phase:
        img = img * torch.exp(1j * smooth_phase(h, w, seed))
    img = img.to(torch.complex64)
    if maps is not None:
        maps = resample_maps(maps, h, w)
        coils = maps.shape[0]
    else:
        maps = birdcage_maps(coils, h, w) if coils > 1 else None
    if oversample != 1:
        if pattern == "radial" or oversample < 1 or int(oversample) != oversample:
            raise InputError(f"oversample must be an integer ≥ 1 and the sampling Cartesian, got {oversample}, {pattern}")
        img, coil_k = _finer(s, maps, int(oversample), seed, phase)
    else:
        coil_k = None
    if pattern == "radial":
        from .nufft import RadialSENSE
        from .sampling import golden_angle_radial

        traj = golden_angle_radial(t, spokes or 13, max(h, w), oversampling=2)
        op, mask = RadialSENSE(traj, maps, shape=(h, w)), None
        k = op(img)
        sel = torch.ones_like(k.real)
    else:
        traj = None
        mask = cartesian_mask(t, h, w, accel=accel, center=center, pattern=pattern, seed=seed)
        k = CartesianSENSE(mask, maps)(img) if coil_k is None else coil_k * mask[:, None]
        sel = mask.unsqueeze(1).expand_as(k)
    k = add_noise(k, sel, snr_db, seed)
    meta = {"coils": coils, "pattern": pattern, "accel_nominal": accel, "center": center, "snr_db": snr_db,
            "oversample": oversample,
            "seed": seed, "phase": phase}
    if traj is not None:
        meta.update(spokes=spokes or 13, oversampling=2)
        return MRIData(k, None, maps, img, meta, traj=traj, shape=(h, w))
    return MRIData(k, mask, maps, img, meta)
