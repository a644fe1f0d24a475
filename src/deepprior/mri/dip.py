"""Static untrained-network MRI reconstruction (DIP / ConvDecoder) through the shared fit loop: a
generator per frame outputs the complex image as (real, imag) channels, fitted through the SENSE
operator to that frame's k-space. The frames of a series are independent fits run together as one
:class:`~deepprior.params.BatchedDIP` (one vmapped network, each frame's exact gradient).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..fit import Callback, FitConfig, FitState, fit, resolve_device
from ..nets import build_net, make_code
from ..params import DIP, BatchedDIP
from ..presets import resolve
from .common import image_on_interrupt, kspace_scale
from .data import MRIData
from .operators import ChannelsToComplex


class FrameLosses(Callback):
    """Each frame's own data misfit (mean over its k-space) at every step: the per-frame histories of a
    batched static fit, whose loop records only the sum."""

    def __init__(self, op, y: Tensor):
        self.op, self.y = op, y
        self.history: list[list[float]] = []

    def on_step_end(self, state: FitState) -> None:
        with torch.no_grad():
            r = (self.op(state.x) - self.y).abs().square()
            self.history.append(r.reshape(r.shape[0], -1).mean(1).tolist())


def build_static_dip(preset: dict, hw: tuple[int, int], seed: int = 0) -> DIP:
    """One frame's generator (2 linear output channels) and code from a static MRI preset, seeded."""
    spec = dict(preset["net"])
    name = spec.pop("name")
    decoder = name in ("conv_decoder", "deep_decoder")  # their code width is their channel count
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_net(name, None if decoder else preset["code"].get("channels"), 2, out_hw=hw, **spec)
    z = make_code(preset["code"]["kind"], net.in_channels, net.code_size(*hw), scale=preset["code"].get("scale", 0.1),
                  generator=torch.Generator().manual_seed(seed + 1))
    return DIP(net, z, hw, preset.get("reg_noise_std", 0.0), generator=torch.Generator().manual_seed(seed + 2))


def dip_static(data: MRIData, *, preset: str | dict | None = None, seed: int = 0, callbacks=(), device="auto",
               **fit_overrides) -> tuple[Tensor, dict]:
    """Reconstruct every frame of ``data`` with its own untrained generator (static DIP / ConvDecoder), all
    frames in one batched fit. Returns the complex image ``(T, H, W)`` and an info dict: ``history`` (the
    loop's curves, summed over frames), ``frame_loss`` (per step, each frame's data misfit), ``iters``.

    Each frame's k-space is scaled as in ConvDecoder: y_t ← y_t · ‖f_t(z)‖ / ‖Aᴴ_t y_t‖ with the untrained
    output, so that the network starts at the data's scale; the result is scaled back. Divergence
    backtracking, when the preset asks for it, acts on all frames together (the summed loss).

    >>> import torch
    >>> from deepprior.mri.data import simulate
    >>> d = simulate(torch.rand(2, 16, 16), coils=2, accel=2, center=4, seed=0)
    >>> p = {"net": {"name": "conv_decoder", "channels": 8, "layers": 3, "need_sigmoid": False},
    ...      "code": {"kind": "noise", "scale": 0.1}, "fit": {"iters": 3, "lr": 0.01, "ema": None}}
    >>> x, info = dip_static(d, preset=p, device="cpu")
    >>> tuple(x.shape), len(info["frame_loss"]), len(info["frame_loss"][0])
    ((2, 16, 16), 3, 2)
    """
    p = resolve(preset, "mri-dip")[1]
    dev = resolve_device(device)
    data = data.to(dev)
    t = data.frames
    # Every frame starts from the same seeded network: frame t's result does not depend on the others.
    dips = [build_static_dip(p, data.shape, seed) for _ in range(t)]
    param = (dips[0] if t == 1 else BatchedDIP(dips)).to(dev)
    c2c = ChannelsToComplex(frames=t)
    with torch.no_grad():
        out = param(perturb=False)  # (T, 2, H, W) real/imag
        scale = [kspace_scale(out[i:i + 1], data.frame(i)) for i in range(t)]
    # a Python float per frame (one frame: exactly the single-image fit's arithmetic)
    y = data.kspace * scale[0] if t == 1 else data.kspace * torch.tensor(scale, device=dev)[:, None, None, None]
    scale = torch.tensor(scale, device=dev)
    op = data.operator @ c2c
    to_image = lambda x: c2c(x) / scale[:, None, None]  # noqa: E731
    frame_loss = FrameLosses(op, y)
    cfg = FitConfig().replace(**{**p["fit"], **{k: v for k, v in fit_overrides.items() if v is not None}})
    with image_on_interrupt(to_image):
        result = fit(param, op, y, cfg, callbacks=[*callbacks, frame_loss])
    img = to_image(result.output).detach().cpu()
    return img, {"history": result.history, "frame_loss": frame_loss.history, "iters": result.iters_run,
                 "scale": scale.tolist(), "backtracks": result.backtracks, "fit": result}
