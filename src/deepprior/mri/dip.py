"""Untrained-network MRI reconstruction through the shared fit loop: a generator outputs the
complex image as (real, imag) channels, fitted through the SENSE operator to the k-space.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..fit import FitConfig, fit
from ..nets import build_net, make_code
from ..params import DIP
from .data import MRIData
from .operators import ChannelsToComplex

MRI_PRESETS = {
    # ConvDecoder (Darestani & Heckel 2021) at a CPU-friendly width; outputs real/imag, no sigmoid.
    "convdecoder": {"net": {"name": "conv_decoder", "channels": 64, "layers": 6, "need_sigmoid": False},
                    "code": {"kind": "noise", "scale": 0.1}, "reg_noise_std": 0.0,
                    "fit": {"iters": 1500, "lr": 0.008, "ema": 0.99, "backtrack": True}},
    # The DIP skip net with 2 linear output channels.
    "skip": {"net": {"name": "skip", "channels_down": [64] * 5, "channels_up": [64] * 5, "channels_skip": [4] * 5,
                     "upsample_mode": "bilinear", "need_sigmoid": False},
             "code": {"kind": "noise", "channels": 32, "scale": 0.1}, "reg_noise_std": 0.0,
             "fit": {"iters": 1500, "lr": 0.005, "ema": 0.99, "backtrack": True}},
}


def dip_static(data: MRIData, *, preset: str | dict = "convdecoder", seed: int = 0, callbacks=(), **fit_overrides) -> tuple[Tensor, object]:
    """Reconstruct each frame of ``data`` independently with an untrained generator (static DIP /
    ConvDecoder). Returns the complex image ``(T, H, W)`` and the last frame's FitResult.

    The k-space is scaled as in ConvDecoder: y ← y · ‖f(z)‖ / ‖Aᴴy‖ with the untrained output, so that
    the network starts at the data's scale; the result is scaled back.
    """
    p = MRI_PRESETS[preset] if isinstance(preset, str) else preset
    h, w = data.shape
    out, result = [], None
    for t in range(data.frames):
        sub = _frame(data, t)
        spec = dict(p["net"])
        name = spec.pop("name")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            decoder = name in ("conv_decoder", "deep_decoder")  # their code width is their channel count
            net = build_net(name, None if decoder else p["code"].get("channels"), 2, **spec)
        z = make_code(p["code"]["kind"], net.in_channels, net.code_size(h, w), scale=p["code"].get("scale", 0.1),
                      generator=torch.Generator().manual_seed(seed + 1))
        param = DIP(net, z, (h, w), p.get("reg_noise_std", 0.0), generator=torch.Generator().manual_seed(seed + 2))
        op = sub.operator @ ChannelsToComplex(frames=1)
        with torch.no_grad():
            scale = (torch.linalg.vector_norm(param(perturb=False)) /
                     torch.linalg.vector_norm(sub.operator.adjoint(sub.kspace))).item()
        cfg = FitConfig().replace(**{**p["fit"], **{k: v for k, v in fit_overrides.items() if v is not None}})
        result = fit(param, op, sub.kspace * scale, cfg, callbacks=callbacks)
        img = ChannelsToComplex(frames=1)(result.output)[0] / scale
        out.append(img)
    return torch.stack(out), result


def _frame(data: MRIData, t: int) -> MRIData:
    sl = slice(t, t + 1)
    return MRIData(data.kspace[sl], None if data.mask is None else data.mask[sl], data.maps,
                   None if data.gt is None else data.gt[sl], dict(data.meta),
                   traj=None if data.traj is None else data.traj[sl], shape=data.shape)
