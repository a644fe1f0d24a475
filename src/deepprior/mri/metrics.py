"""MRI image quality on magnitudes.

Normalisation (stated once, used everywhere): the reference magnitude is scaled to max 1 by the
simulator (or by its own maximum for user data); reconstructions are compared *as they are*, on
the same scale, with no per-method rescaling — the operators are normalised (orthonormal FFT,
Σ|S|² = 1) so a consistent method lands on the reference's scale. PSNR and SSIM use
data_range = max |reference| over the series; NRMSE = ‖|x| − |ref|‖ / ‖|ref|‖; SER = −20 log10 NRMSE.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def motion_roi(ref: Tensor, margin: int = 8, quantile: float = 0.97) -> tuple[slice, slice]:
    """A fixed region of interest around what moves: the bounding box of the pixels whose temporal standard
    deviation of ``|ref|`` ``(T, H, W)`` is in the top ``1 − quantile``, grown by ``margin`` pixels — the heart
    of a cine, where the whole field of view is mostly static background.

    >>> import torch
    >>> ref = torch.zeros(4, 32, 32); ref[:, 10:14, 20:24] = torch.arange(4.0)[:, None, None]
    >>> motion_roi(ref, margin=2)
    (slice(7, 17, None), slice(17, 27, None))
    """
    sd = ref.detach().abs().double().cpu().std(0)
    # smoothed first, so that scattered noisy or flowing pixels do not stretch the box over the whole image
    sd = torch.nn.functional.avg_pool2d(sd[None, None], 9, stride=1, padding=4, count_include_pad=False)[0, 0]
    hot = (sd >= torch.quantile(sd.flatten(), quantile)) & (sd > 0)
    rows, cols = hot.any(1).nonzero().flatten(), hot.any(0).nonzero().flatten()
    h, w = sd.shape
    return (slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, h)),
            slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, w)))


def mri_metrics(recon: Tensor, ref: Tensor, roi: tuple[slice, slice] | None = None) -> dict:
    """Per-frame and mean PSNR/SSIM/NRMSE/SER of ``|recon|`` against ``|ref|`` (``(T, H, W)`` or ``(H, W)``),
    inside ``roi`` (rows, columns; e.g. :func:`motion_roi`) if given, with the whole reference's data range.

    >>> import torch
    >>> ref = torch.rand(2, 16, 16)
    >>> m = mri_metrics(ref * 1.0, ref)
    >>> m["ssim"], m["nrmse"]
    (1.0, 0.0)
    """
    from skimage.metrics import structural_similarity

    x = recon.detach().abs().double().cpu()
    r = ref.detach().abs().double().cpu()
    if x.ndim == 2:
        x, r = x[None], r[None]
    rng = float(r.max())  # the whole reference's range, also inside a region of interest
    if roi is not None:
        x, r = x[..., roi[0], roi[1]], r[..., roi[0], roi[1]]
    per = {"psnr": [], "ssim": [], "nrmse": [], "ser": []}
    for xt, rt in zip(x, r):
        mse = float(((xt - rt) ** 2).mean())
        per["psnr"].append(math.inf if mse == 0 else 10 * math.log10(rng**2 / mse))
        per["ssim"].append(float(structural_similarity(xt.numpy(), rt.numpy(), data_range=rng)))
        n = float(torch.linalg.vector_norm(xt - rt) / torch.linalg.vector_norm(rt))
        per["nrmse"].append(n)
        per["ser"].append(math.inf if n == 0 else -20 * math.log10(n))
    out = {k: float(np.mean(v)) for k, v in per.items()}
    out["per_frame"] = per
    return out


def mri_psnr(recon: Tensor, ref: Tensor) -> float:
    """The mean per-frame PSNR of :func:`mri_metrics` alone, in torch (cheap enough to log every iteration).

    >>> import torch
    >>> ref = torch.ones(2, 4, 4)
    >>> round(mri_psnr(ref * 0.9, ref), 2)
    20.0
    """
    x, r = recon.detach().abs().double().cpu(), ref.detach().abs().double().cpu()
    if x.ndim == 2:
        x, r = x[None], r[None]
    mse = (x - r).square().mean(dim=(-2, -1))
    return float((10 * torch.log10(float(r.max()) ** 2 / mse.clamp(min=1e-30))).mean())
