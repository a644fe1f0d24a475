"""Static untrained-network MRI reconstruction (DIP / ConvDecoder) through the shared fit loop: a
generator per frame outputs the complex image as (real, imag) channels, fitted through the SENSE
operator to that frame's k-space. The frames of a series are independent fits run together as one
:class:`~deepprior.params.BatchedDIP` (one vmapped network, each frame's exact gradient).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError
from ..fit import Callback, FitConfig, FitState, fit, resolve_device
from ..fit.stopping import Holdout
from ..nets import build_net, make_code
from ..params import DIP, BatchedDIP
from ..presets import resolve
from ..regularizers import TV
from .common import check_network_memory, data_consistency, image_on_interrupt, kspace_scale, split_kspace, support
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


class ScaledTV(torch.nn.Module):
    """DIP-TV's penalty on the generator output, on the classical TV's scale: with frame t fitted at scale
    s_t, ``Σ_t s_t · TV_sum(x_t)`` divided by the number of k-space entries, so that the loop's objective is
    ``(1/N_y) Σ_t s_t² (‖A x_t − y_t‖² + λ TV_sum(x_t))`` — the same λ as ``kt_tv``'s for every frame."""

    def __init__(self, c2c, scale: Tensor, support: Tensor, n_y: int):
        super().__init__()
        self.c2c, self.scale, self.support, self.n_y = c2c, scale, support, n_y
        self.tv = TV("iso")

    def forward(self, x: Tensor) -> Tensor:
        img = self.c2c(x) * self.support
        per_frame = torch.stack([self.tv(f[None, None]) for f in img]) * img[0].numel()
        return (self.scale * per_frame).sum() / self.n_y


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
               stop: str = "none", holdout: float = 0.05, patience: int | None = None, tv_weight: float = 0.0,
               dc: bool | None = None, checkpoint=None, checkpoint_every: int = 0, resume=None,
               **fit_overrides) -> tuple[Tensor, dict]:
    """Reconstruct every frame of ``data`` with its own untrained generator (static DIP / ConvDecoder), all
    frames in one batched fit. Returns the complex image ``(T, H, W)`` and an info dict: ``history`` (the
    loop's curves, summed over frames), ``frame_loss`` (per step, each frame's data misfit), ``iters``.

    Each frame's k-space is scaled as in ConvDecoder: y_t ← y_t · ‖f_t(z)‖ / ‖Aᴴ_t y_t‖ with the untrained
    output, so that the network starts at the data's scale; the result is scaled back. Divergence
    backtracking, when the preset asks for it, acts on all frames together (the summed loss). Where the coil
    maps are zero the image is 0. ``stop='holdout'`` holds ``holdout`` of the acquired samples out of the fit,
    scores the EMA on them every 10 steps and delivers the best, stopping after ``patience`` (default 300)
    steps without improvement. ``tv_weight`` λ > 0 adds DIP-TV's total-variation penalty on the output
    (Liu et al., ICASSP 2019), with λ on the scale of the ``tv`` method's weight. ``dc`` (default: on for
    Cartesian data) ends with ConvDecoder's data-consistency step: every coil's k-space of the network image
    keeps the network's values only where nothing was acquired and takes the measured samples elsewhere (all of
    them, held-out ones included, once the iterate is chosen), ``x ← x + Aᴴ(y − Ax) / Σ|S|²`` — the network
    fills the gaps, the scanner keeps its samples. ``checkpoint``/``checkpoint_every``/``resume`` as in
    :func:`~deepprior.fit.fit`.

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
    check_network_memory(param, data, dev, what="static DIP")
    c2c = ChannelsToComplex(frames=t)
    with torch.no_grad():
        out = param(perturb=False)  # (T, 2, H, W) real/imag
        scale = [kspace_scale(out[i:i + 1], data.frame(i)) for i in range(t)]
    # a Python float per frame (one frame: exactly the single-image fit's arithmetic)
    y = data.kspace * scale[0] if t == 1 else data.kspace * torch.tensor(scale, device=dev)[:, None, None, None]
    scale = torch.tensor(scale, device=dev)
    cbs = list(callbacks)
    stopper = None
    if dc is None:
        dc = not data.radial
    elif dc and data.radial:
        raise ConfigError("the data-consistency step (dc) replaces Cartesian samples; radial data take dc=False")
    if stop == "holdout":
        tr_op, y_tr, va_op, y_va, count = split_kspace(data, holdout, seed=seed + 11)
        sc = scale[:, None, None, None]
        y, y_va = y_tr * sc, y_va * sc
        op = tr_op @ c2c
        stopper = Holdout(va_op @ c2c, y_va, every=10, patience=patience or 300, count=count, source="ema")
        cbs.insert(0, stopper)
    elif stop == "none":
        op = data.operator @ c2c
    else:
        raise ConfigError(f"unknown stop rule {stop!r} for static DIP; choose holdout or none")
    where = support(data)
    to_image = lambda x: c2c(x) / scale[:, None, None] * where  # noqa: E731
    # One frame: its loss is the loop's own data term; only a series needs the extra per-frame misfit.
    frame_loss = FrameLosses(op, y) if t > 1 else None
    cfg = FitConfig().replace(**{**p["fit"], **{k: v for k, v in fit_overrides.items() if v is not None}})
    reg = None
    if tv_weight:
        if tv_weight < 0:
            raise ConfigError(f"tv_weight must be >= 0, got {tv_weight}")
        reg = ScaledTV(c2c, scale, where, y.numel())
        cfg = cfg.replace(reg_weight=tv_weight)
    with image_on_interrupt(to_image):
        result = fit(param, op, y, cfg, regularizer=reg, callbacks=cbs if frame_loss is None else [*cbs, frame_loss],
                     checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
    img = to_image(result.output).detach()
    network = img.cpu()
    if dc:
        with torch.no_grad():
            # every acquired sample, the held-out ones included: they have done their job (choosing the
            # iterate), and the delivered image should agree with everything the scanner measured
            img = data_consistency(img, data.operator, data.kspace, data.maps)
    img = img.cpu()
    per_frame = [[v] for v in result.history["data"]] if frame_loss is None else frame_loss.history
    return img, {"history": result.history, "frame_loss": per_frame, "iters": result.iters_run,
                 "scale": scale.tolist(), "backtracks": result.backtracks, "fit": result,
                 "selected": result.selected_iter, "stop": stop, "dc": dc,
                 "network_image": network}
