"""Calibration and preprocessing of measured multi-coil k-space: the fully sampled calibration region,
ESPIRiT coil maps, noise pre-whitening and SVD coil compression. Written in torch (runs where the data are,
no autograd needed); k-space is centred (DC at index N//2), as :func:`~deepprior.mri.fft.fft2c` writes it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError, InputError
from .fft import ifft2c


def calibration_region(sampled: Tensor, minimum: int = 6) -> tuple[slice, slice]:
    """The largest centred rectangle of ``sampled`` ``(H, W)`` (bool: a sample was acquired) that is fully
    sampled, grown one line at a time from the centre, each axis as far as it stays fully sampled.
    Raises InputError when it is smaller than ``minimum`` × ``minimum`` (no calibration region).

    >>> m = torch.zeros(32, 32, dtype=torch.bool); m[12:20, 10:22] = True; m[:, ::4] = True
    >>> calibration_region(m)
    (slice(12, 20, None), slice(10, 22, None))
    """
    h, w = sampled.shape
    cy, cx = h // 2, w // 2
    y0, y1, x0, x1 = cy, cy + 1, cx, cx + 1
    if not bool(sampled[cy, cx]):
        raise InputError("the k-space centre is not sampled: no calibration region for coil maps; "
                         "give coil maps or data with a fully sampled centre")
    grown = True
    while grown:
        grown = False
        for dy0, dy1, dx0, dx1 in ((-1, 0, 0, 0), (0, 1, 0, 0), (0, 0, -1, 0), (0, 0, 0, 1)):
            a, b, c, d = y0 + dy0, y1 + dy1, x0 + dx0, x1 + dx1
            if a >= 0 and b <= h and c >= 0 and d <= w and (a, b, c, d) != (y0, y1, x0, x1) \
                    and bool(sampled[a:b, c:d].all()):
                y0, y1, x0, x1, grown = a, b, c, d, True
    if min(y1 - y0, x1 - x0) < minimum:
        raise InputError(f"the fully sampled calibration region is only {y1 - y0}×{x1 - x0} (need ≥ {minimum}×"
                         f"{minimum}) for coil maps; give coil maps or data with a larger fully sampled centre")
    return slice(y0, y1), slice(x0, x1)


def espirit_maps(kspace: Tensor, *, calib: tuple[slice, slice] | None = None, calib_size: int = 24, kernel: int = 6,
                 threshold: float = 0.02, crop: float = 0.95) -> Tensor:
    """ESPIRiT coil maps (Uecker et al., MRM 2014) from multi-coil k-space ``(C, H, W)``, one set of maps.

    1. The calibration matrix of all ``kernel``×``kernel`` patches of the calibration region (found with
       :func:`calibration_region` unless given, and cut to its central ``calib_size`` lines per axis, as
       BART's ``ecalib -r 24``: outer lines add mostly noise), its right singular vectors above ``threshold`` × the
       largest singular value: the kernels that span the data's signal subspace.
    2. In image space each pixel's C×C matrix ``Σ_n k_n k_nᴴ`` (k_n: the n-th kernel's image, scaled so that
       a pixel inside the object has eigenvalue 1) has the coil sensitivities as its top eigenvector.
    3. Maps are phase-referenced to their first coil's phase and set to 0 where the top eigenvalue is below
       ``crop`` (outside the object: the SENSE operator has a null space there, which the methods respect).

    Returns complex64 maps ``(C, H, W)`` with Σ|S|² = 1 inside the support, 0 outside.

    >>> from deepprior.mri import birdcage_maps, fft2c
    >>> yy, xx = torch.meshgrid(torch.linspace(-1, 1, 48), torch.linspace(-1, 1, 48), indexing="ij")
    >>> img = ((xx**2 + yy**2) < 0.6).to(torch.complex64)
    >>> s = birdcage_maps(4, 48, 48)
    >>> est = espirit_maps(fft2c(img * s))
    >>> inside = (xx**2 + yy**2) < 0.4
    >>> bool((torch.einsum("chw,chw->hw", est.conj(), s).abs()[inside] > 0.97).all())
    True
    """
    if kspace.ndim != 3 or not kspace.is_complex():
        raise InputError(f"ESPIRiT needs complex k-space (coils, H, W), got {tuple(kspace.shape)} {kspace.dtype}")
    if not 0 < threshold < 1 or not 0 <= crop < 1 or kernel < 2:
        raise ConfigError(f"ESPIRiT needs kernel ≥ 2, 0 < threshold < 1, 0 ≤ crop < 1; got {kernel}, {threshold}, {crop}")
    c, h, w = kspace.shape
    k = kspace.to(torch.complex128)
    sy, sx = calib or calibration_region(k.abs().sum(0) > 0)
    cut = lambda sl: slice(max(sl.start, (sl.start + sl.stop) // 2 - calib_size // 2),  # noqa: E731
                           min(sl.stop, (sl.start + sl.stop) // 2 - calib_size // 2 + calib_size))
    cal = k[:, cut(sy), cut(sx)]
    if min(cal.shape[-2:]) < 2 * kernel:
        # fewer patch positions than this leave the kernels' null space badly estimated (measured: an 8-line
        # region gave maps with holes inside a phantom)
        raise InputError(f"the fully sampled calibration region {tuple(cal.shape[-2:])} is too small for "
                         f"{kernel}×{kernel} ESPIRiT kernels (need ≥ {2 * kernel} lines per axis); sample a larger "
                         "centre (e.g. --center 24) or give coil maps")
    patches = cal.unfold(1, kernel, 1).unfold(2, kernel, 1)  # (C, ny, nx, k, k)
    mat = patches.permute(1, 2, 0, 3, 4).reshape(-1, c * kernel * kernel)
    _, s, vh = torch.linalg.svd(mat, full_matrices=False)
    kernels = vh[s > threshold * s[0]].reshape(-1, c, kernel, kernel)
    # Each kernel's image is the inverse FFT of its patch weights padded to the image size. (Which of the
    # flip/conjugate variants is right was checked against known maps: only this one recovers them exactly,
    # tests/test_raw.py.)
    kern = kernels
    padded = torch.zeros(kern.shape[0], c, h, w, dtype=kern.dtype)
    oy, ox = h // 2 - kernel // 2, w // 2 - kernel // 2
    padded[..., oy:oy + kernel, ox:ox + kernel] = kern
    imgs = ifft2c(padded) * math.sqrt(h * w) / kernel  # (n, C, H, W); eigenvalue 1 where the data live
    gram = torch.einsum("nchw,ndhw->hwcd", imgs, imgs.conj())
    evals, evecs = torch.linalg.eigh(gram)  # ascending
    top, lam = evecs[..., -1], evals[..., -1]  # (H, W, C), (H, W)
    top = top * torch.exp(-1j * torch.angle(top[..., :1]))  # the first coil's phase as the reference
    maps = top.permute(2, 0, 1) * (lam > crop)
    norm = maps.abs().square().sum(0, keepdim=True).sqrt()
    maps = torch.where(norm > 0, maps / norm.clamp(min=1e-12), maps)
    return maps.to(torch.complex64)


def whitening_matrix(noise: Tensor) -> Tensor:
    """``W = L⁻¹`` with ``L Lᴴ`` the coil noise covariance of ``noise`` ``(C, N)`` samples: applied to every
    coil vector, it makes the noise white with unit variance per coil.

    >>> g = torch.Generator().manual_seed(0)
    >>> mix = torch.tensor([[1.0, 0.0], [0.8, 0.6]], dtype=torch.complex64)
    >>> n = mix @ torch.complex(torch.randn(2, 20000, generator=g), torch.randn(2, 20000, generator=g))
    >>> cov = whitening_matrix(n) @ n; cov = cov @ cov.conj().T / n.shape[1]
    >>> bool(torch.allclose(cov, torch.eye(2, dtype=cov.dtype), atol=0.03))
    True
    """
    if noise.ndim != 2 or noise.shape[1] < noise.shape[0]:
        raise InputError(f"noise samples must be (coils, N) with N ≥ coils, got {tuple(noise.shape)}")
    n = noise.to(torch.complex128)
    cov = n @ n.conj().T / n.shape[1]
    try:
        chol = torch.linalg.cholesky(cov)
    except RuntimeError:
        raise InputError("the noise covariance is singular (a dead or duplicated coil?); drop that coil") from None
    return torch.linalg.inv(chol).to(torch.complex64)


def whiten(kspace: Tensor, w: Tensor, coil_dim: int = -3) -> Tensor:
    """Apply the whitening (or any coil-mixing) matrix ``w`` ``(C', C)`` along ``coil_dim``."""
    k = kspace.movedim(coil_dim, -1)
    return (k @ w.T.to(k.dtype)).movedim(-1, coil_dim)


def compression_matrix(kspace: Tensor, coils: int, coil_dim: int = -3) -> tuple[Tensor, float]:
    """SVD coil compression: the ``(coils, C)`` matrix onto the strongest virtual coils of ``kspace`` and the
    fraction of the signal energy they keep.

    >>> k = torch.randn(4, 8, 8, dtype=torch.complex64); k = torch.cat([k, 2 * k])  # 8 coils, rank 4
    >>> m, kept = compression_matrix(k, 4)
    >>> tuple(m.shape), round(kept, 6)
    ((4, 8), 1.0)
    """
    k = kspace.movedim(coil_dim, 0).reshape(kspace.shape[coil_dim], -1).to(torch.complex128)
    if not 1 <= coils <= k.shape[0]:
        raise ConfigError(f"compress to 1..{k.shape[0]} coils, got {coils}")
    u, s, _ = torch.linalg.svd(k, full_matrices=False)
    kept = float(s[:coils].square().sum() / s.square().sum())
    return u[:, :coils].conj().T.to(torch.complex64), kept


def compress_coils(kspace: Tensor, coils: int | None, coil_dim: int = -3) -> tuple[Tensor, dict]:
    """SVD-compress ``kspace`` to ``coils`` virtual coils (``None`` or at least as many coils as there are: no
    change). Returns the k-space and the metadata to record (``compressed_to``, ``energy_kept``; empty if
    unchanged).

    >>> k = torch.randn(4, 8, 8, dtype=torch.complex64); k = torch.cat([k, 2 * k])  # 8 coils, rank 4
    >>> c, meta = compress_coils(k, 4)
    >>> tuple(c.shape), round(meta["energy_kept"], 6), compress_coils(k, None)[1]
    ((4, 8, 8), 1.0, {})
    """
    if coils is None or coils >= kspace.shape[coil_dim]:
        return kspace, {}
    m, kept = compression_matrix(kspace, coils, coil_dim=coil_dim)
    return whiten(kspace, m, coil_dim=coil_dim), {"compressed_to": coils, "energy_kept": kept}
