"""GRAPPA (Griswold et al., MRM 2002): the scanner's own k-space reconstruction, as a baseline for Cartesian data
with a fully sampled calibration region.

Every missing k-space point is a linear combination, across coils, of the acquired points in a window around
it. The weights depend on which points of the window were acquired (the point's *pattern*), so they are
calibrated once per distinct pattern on the fully sampled calibration region (ACS). This handles regular,
variable-density and 2-D Poisson-disc sampling alike (for a regular 1-D pattern it is textbook GRAPPA). Points
whose window holds no acquired sample are filled in a later pass from the points filled before.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError
from .calib import calibration_region


def _patches(k: Tensor, size: tuple[int, int], pad: bool) -> Tensor:
    """All ``size`` windows of ``k`` ``(C, H, W)`` as ``(C, K, L)`` (K window points, L positions), zero-padded
    to one window per pixel when ``pad``."""
    c = k.shape[0]
    ry, rx = size[0] // 2, size[1] // 2
    x = torch.view_as_real(k).permute(0, 3, 1, 2).reshape(1, 2 * c, *k.shape[-2:])
    if pad:
        x = F.pad(x, (rx, rx, ry, ry))
    u = F.unfold(x, size).reshape(c, 2, size[0] * size[1], -1)
    return torch.complex(u[:, 0], u[:, 1])


def grappa(kspace: Tensor, sampled: Tensor, *, kernel: tuple[int, int] = (5, 5), lam: float = 0.01,
           max_sources: int = 12, grow: int = 2, calib: tuple[Tensor, Tensor] | None = None,
           chunk: int = 512) -> Tensor:
    """Fill the missing points of multi-coil k-space ``(C, H, W)``; ``sampled`` ``(H, W)`` bool marks the
    acquired ones, which are returned unchanged. ``kernel`` is the (ky, kx) window, ``lam`` the Tikhonov
    weight relative to the mean diagonal of each calibration system. Each point uses at most ``max_sources``
    acquired neighbours (the nearest), each with all coils. A point with no acquired neighbour in the window
    is filled by a later pass with a window 2 points larger per axis — from acquired points only, so that
    errors do not propagate — at most ``grow`` times and while the window fits the calibration region (points
    still empty stay 0: farther extrapolation from the centre's kernels was unstable).
    ``calib`` = (k-space, sampled) calibrates on other data, e.g. a dynamic series' time average (TGRAPPA).

    >>> import torch
    >>> from deepprior.mri.fft import fft2c
    >>> img = torch.zeros(32, 32, dtype=torch.complex64); img[8:24, 10:22] = 1
    >>> yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    >>> full = fft2c(torch.stack([img * (1.5 + xx), img * (1.5 - yy)]))
    >>> m = torch.zeros(32, 32, dtype=torch.bool); m[::2] = True; m[10:22] = True
    >>> err = lambda k: float((k - full).norm() / full.norm())
    >>> err(grappa(full * m, m)) < 0.3 * err(full * m)
    True
    """
    c, h, w = kspace.shape
    sampled = sampled.bool()
    ck, cm = calib if calib is not None else (kspace, sampled)
    cy, cx = calibration_region(cm.bool())
    ah, aw = cy.stop - cy.start, cx.stop - cx.start
    if ah < kernel[0] + 2 or aw < kernel[1] + 2:
        raise InputError(f"GRAPPA needs a fully sampled calibration region larger than its {kernel[0]}×{kernel[1]} "
                         f"kernel; this one is {ah}×{aw}: sample a larger centre (e.g. --center 24)")
    out = kspace.clone(memory_format=torch.contiguous_format)  # written through a flat view below
    todo = (~sampled).flatten()
    size = tuple(kernel)
    for _ in range(grow + 1):
        if not todo.any() or size[0] > ah - 2 or size[1] > aw - 2:
            break
        acs = _patches(ck[:, cy, cx], size, pad=False).permute(2, 1, 0)  # (N, K, C)
        target = acs[:, (size[0] // 2) * size[1] + size[1] // 2]  # (N, C): the window centre
        yy, xx = torch.meshgrid(torch.arange(size[0]) - size[0] // 2, torch.arange(size[1]) - size[1] // 2,
                                indexing="ij")
        order = (yy.square() + xx.square()).flatten().double().argsort(stable=True)  # nearest first
        holes = todo.nonzero().squeeze(1)
        window = _patches(sampled.to(kspace.dtype)[None], size, pad=True)[0].real.bool()[:, holes].T  # (holes, K)
        near = window[:, order]
        near &= near.cumsum(1) <= max_sources
        pat = torch.zeros_like(window)
        pat[:, order] = near
        useful = pat.any(1)
        holes, pat = holes[useful], pat[useful]
        if holes.numel():
            src = _patches(kspace, size, pad=True)[:, :, holes].permute(2, 1, 0)  # (holes, K, C)
            filled = _apply(acs, target, src, pat, lam, chunk)
            out.view(c, -1)[:, holes] = filled.T
            todo[holes] = False
        size = (size[0] + 2, size[1] + 2)
    return out


def _apply(acs: Tensor, target: Tensor, src: Tensor, pat: Tensor, lam: float, chunk: int) -> Tensor:
    """Calibrate one kernel per distinct source pattern on the ACS patches and apply it to the holes with that
    pattern. ``acs`` (N, K, C), ``target`` (N, C), ``src`` (holes, K, C), ``pat`` (holes, K) bool."""
    c = acs.shape[-1]
    keys, inverse = np.unique(pat.numpy(), axis=0, return_inverse=True)
    keys, inverse = torch.from_numpy(keys), torch.from_numpy(inverse.reshape(-1))
    filled = torch.zeros(src.shape[0], c, dtype=src.dtype)
    counts = keys.sum(1)
    lookup = torch.full((keys.shape[0],), -1, dtype=torch.long)
    for n in counts.unique().tolist():
        for part in (counts == n).nonzero().squeeze(1).split(chunk):
            idx = keys[part].nonzero()[:, 1].reshape(len(part), n)  # each pattern's source positions
            a = acs[:, idx].permute(1, 0, 2, 3).reshape(len(part), acs.shape[0], n * c)  # (G, N, f)
            aha = a.mH @ a
            reg = lam * aha.diagonal(dim1=-2, dim2=-1).real.mean(-1)[:, None, None]
            wts = torch.linalg.solve(aha + reg * torch.eye(n * c, dtype=a.dtype), a.mH @ target)  # (G, f, C)
            lookup.fill_(-1)
            lookup[part] = torch.arange(len(part))
            sel = (lookup[inverse] >= 0).nonzero().squeeze(1)
            g = lookup[inverse[sel]]
            s = src[sel[:, None], idx[g]].reshape(len(sel), n * c)
            filled[sel] = torch.einsum("nf,nfc->nc", s, wts[g])
    return filled
