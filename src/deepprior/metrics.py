"""Image-quality metrics. Images are in [0, 1] (data_range 1) unless stated.

PSNR is computed in PyTorch (cheap enough to track every iteration); SSIM is scikit-image's
``structural_similarity`` with the Gaussian-window settings of Wang et al. (2004).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _np_hwc(x) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    a = a.astype(np.float64)
    if a.ndim == 4:  # (1, C, H, W)
        a = a[0]
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    return a


def psnr(x, ref, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB; ``x`` is clipped to ``[0, data_range]`` first.

    >>> import torch
    >>> round(psnr(torch.full((1, 1, 4, 4), 0.5), torch.full((1, 1, 4, 4), 0.6)), 2)
    20.0
    """
    if isinstance(x, Tensor) and isinstance(ref, Tensor):
        mse = torch.mean((x.detach().clamp(0, data_range) - ref.to(x.device)) ** 2).item()
    else:
        mse = float(np.mean((np.clip(_np_hwc(x), 0, data_range) - _np_hwc(ref)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def ssim(x, ref, data_range: float = 1.0) -> float:
    """Structural similarity (mean over channels), ``x`` clipped to ``[0, data_range]``. A batch
    ``(N, C, H, W)`` scores every image against its reference and returns the mean.

    >>> import numpy as np
    >>> ssim(np.ones((16, 16)) * 0.5, np.ones((16, 16)) * 0.5)
    1.0
    """
    if getattr(x, "ndim", 0) == 4 and x.shape[0] > 1:
        if tuple(ref.shape) != tuple(x.shape):
            raise ValueError(f"ssim of a batch needs one reference per image: {tuple(x.shape)} vs {tuple(ref.shape)}")
        return float(np.mean([ssim(x[i:i + 1], ref[i:i + 1], data_range) for i in range(x.shape[0])]))
    from skimage.metrics import structural_similarity

    a, b = np.clip(_np_hwc(x), 0, data_range), _np_hwc(ref)
    kw = {"channel_axis": -1} if a.ndim == 3 else {}
    side = min(a.shape[:2])
    if side >= 11:  # the Gaussian window (σ = 1.5, 11 taps) of the SSIM paper
        opts = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    elif side >= 3:  # tiny images: the largest odd uniform window that fits
        opts = {"win_size": side - 1 + side % 2}
    else:
        return float("nan")
    return float(structural_similarity(a, b, data_range=data_range, **opts, **kw))
