"""The image-domain mode: magnitude contrast images in, maps out (for users who only have reconstructed
images). The magnitude of a complex image with Gaussian noise is Rician: its mean lies above the true signal
where the signal is low (the noise floor), which biases a late-echo fit towards long T2. Both methods model the
floor: the fitted curve is the Rician mean of the model's magnitude, with σ estimated from the background.
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from ...errors import ConfigError, InputError
from ...fit import FitConfig, fit, resolve_device
from ...fit.stopping import Discrepancy
from ...operators.base import Operator
from ...presets import resolve
from .models import SignalModel
from .pixelfit import nlls_fit, rician_mean
from .recon import MapForward, MapResult, build_map_dip

IMAGE_METHODS = ("fit", "dip")


class RicianMagnitude(Operator):
    """Complex contrasts → the expected magnitude images ``E|S + n|`` at noise level ``sigma``."""

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = float(sigma)

    def forward(self, x: Tensor) -> Tensor:
        return rician_mean(x.abs(), self.sigma)


def background_sigma(images: Tensor, border: int = 6) -> float:
    """σ of the complex noise from the image border (no object there): the Rayleigh mode estimate,
    ``σ = median(|x|) / √(2 ln 2)``, over the ``border``-pixel frame of every contrast.

    >>> g = torch.Generator().manual_seed(0)
    >>> n = torch.complex(torch.randn(4, 64, 64, generator=g), torch.randn(4, 64, 64, generator=g)).abs()
    >>> round(background_sigma(n), 1)
    1.0
    """
    m = images.abs().float()
    frame = torch.ones(m.shape[-2:], dtype=torch.bool)
    frame[border:-border, border:-border] = False
    return float(m[:, frame].median()) / math.sqrt(2 * math.log(2))


def map_images(images: Tensor, model: SignalModel, method: str = "fit", *, sigma: float | None = None,
               seed: int = 0, device="auto", preset=None, iters: int | None = None, callbacks=()) -> MapResult:
    """Maps from magnitude images ``(K, H, W)``. ``sigma`` (the complex noise std; default: from the image border)
    sets the Rician floor; ``dip`` stops by the discrepancy principle (at the first step whose mean squared misfit
    to the images is ≤ σ², the variance of a Rician magnitude at high SNR — below it the network fits noise),
    ``fit`` is the pixel-wise NLLS on the Rician mean.

    >>> from deepprior.mri.mapping.models import T2Decay
    >>> m = T2Decay([10, 20, 40, 80])
    >>> x = m(torch.full((16, 16), 1.0 + 0j), {"T2": torch.full((16, 16), 40.0)}).abs()
    >>> round(float(map_images(x, m, "fit", sigma=0.0).maps["T2"][8, 8]), 1)
    40.0
    """
    if method not in IMAGE_METHODS:
        raise ConfigError(f"magnitude images take --method {' or '.join(IMAGE_METHODS)}, not {method!r}")
    images = torch.as_tensor(images).abs().float()
    if images.ndim != 3 or images.shape[0] != model.contrasts:
        raise InputError(f"{model.contrasts} {model.axis_name} values need {model.contrasts} images (K, H, W); "
                         f"got shape {tuple(images.shape)}")
    t0 = time.perf_counter()
    sigma = background_sigma(images) if sigma is None else float(sigma)
    scale = 1.0 / max(float(torch.quantile(images[0].flatten(), 0.99)), 1e-12)
    info = {"method": method, "sigma": sigma, "image_domain": True}
    where = images[0] > max(3 * sigma, 0.02 / scale)
    if method == "fit":
        maps = nlls_fit(images, model, where, sigma=sigma)
        return MapResult(images, method, time.perf_counter() - t0, info=info, maps=maps)
    dev = resolve_device(device)
    name, p = resolve(preset, "mapping")
    model = model.to(dev)
    param = build_map_dip(p, model, tuple(images.shape[-2:]), seed).to(dev)
    fwd = MapForward(model, RicianMagnitude(sigma * scale))
    y = (images * scale).to(dev)
    cbs = list(callbacks)
    if sigma > 0:
        # a magnitude's variance about its Rician mean is σ² at high SNR and (2 − π/2)σ² in the background: a
        # misfit of σ² on average is reached before the fit starts on the noise
        cbs.insert(0, Discrepancy((sigma * scale) ** 2))
    cfg = FitConfig().replace(**{**p["fit"], **({"iters": iters} if iters else {})})
    res = fit(param, fwd, y, cfg, callbacks=cbs)
    maps = fwd.maps(res.output)
    maps = {k: v.detach().cpu() for k, v in maps.items()}
    maps["M0"] = maps["M0"] / scale
    info.update(preset=name, stop="discrepancy" if sigma > 0 else "none")
    return MapResult((fwd.contrasts(res.output) / scale).detach().cpu(), method, time.perf_counter() - t0,
                     res.iters_run, res.selected_iter, res.history, {}, info, maps=maps)
