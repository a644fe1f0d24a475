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
from .common import check_network_memory, data_consistency, image_on_interrupt, kspace_scale, split_kspace, support, weighted
from .dcweight import choose_dc_for_acquisition, choose_dc_weight, dc_step
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
    maps are zero the image is 0. ``stop='holdout'`` scores the EMA on the held-out samples every 10 steps and
    delivers the best, stopping after ``patience`` (default 300) steps without improvement. ``tv_weight`` λ > 0
    adds DIP-TV's total-variation penalty on the output (Liu et al., ICASSP 2019), with λ on the scale of the
    ``tv`` method's weight.

    ``dc`` (default: the preset's, on) ends with data consistency towards the network image, over all acquired
    samples (held-out ones included, once the iterate is chosen). The preset's ``dc_weight`` says which:
    ``'auto'`` (the default) chooses per frame, on its held-out samples, between the network image, the exact step
    ``min ½‖Ax − y‖² + μ/2‖x − x_net‖²`` for μ on a grid, and (Cartesian) ConvDecoder's replacement: the one with
    the least estimated error against a fully sampled acquisition
    (:func:`~deepprior.mri.dcweight.choose_dc_for_acquisition`; radial data: the μ that predicts the held-out
    samples best, :func:`~deepprior.mri.dcweight.choose_dc_weight`). ``'replace'`` is ConvDecoder's step,
    ``x ← x + Aᴴ(y − Ax) / Σ|S|²`` (every coil keeps the measured samples; Cartesian only); a number fixes μ.
    Held-out samples (``holdout`` of each frame's acquired ones, seeded, drawn per frame) are kept out of the fit
    when the stop rule or the ``'auto'`` step needs them. ``info["dc"]`` is the step taken: ``'replace'``, μ, or
    for ``'auto'`` a list of each frame's choice (μ, ``'replace'``, or None: the network image kept;
    ``info["dc_scores"]`` their estimates); None without a step.
    ``checkpoint``/``checkpoint_every``/``resume`` as in :func:`~deepprior.fit.fit`.

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
    dc, weight = _dc_choice(p, dc, data.radial)
    if stop not in ("holdout", "none"):
        raise ConfigError(f"unknown stop rule {stop!r} for static DIP; choose holdout or none")
    op = data.operator @ c2c
    if stop == "holdout" or weight == "auto":
        tr_op, y_tr, va_op, y_va, count = split_kspace(data, holdout, seed=seed + 11, per_frame=True)
        sc = scale[:, None, None, None]
        y = y_tr * sc
        op = tr_op @ c2c
        if stop == "holdout":
            cbs.insert(0, Holdout(va_op @ c2c, y_va * sc, every=10, patience=patience or 300, count=count,
                                  source="ema"))
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
    scores = None
    if weight == "auto":
        img, weight, scores = _auto_dc(img, data, holdout, seed + 11)
    elif weight == "replace":
        with torch.no_grad():
            img = data_consistency(img, data.operator, data.kspace, data.maps)
    elif dc:
        img = dc_step(img, *weighted(data), float(weight)).detach()
    img = img.cpu()
    per_frame = [[v] for v in result.history["data"]] if frame_loss is None else frame_loss.history
    return img, {"history": result.history, "frame_loss": per_frame, "iters": result.iters_run,
                 "scale": scale.tolist(), "backtracks": result.backtracks, "fit": result,
                 "selected": result.selected_iter, "stop": stop, "dc": weight if dc else None, "dc_scores": scores,
                 "network_image": network}


def _auto_dc(img: Tensor, data: MRIData, holdout: float, seed: int) -> tuple[Tensor, list, list]:
    """Each frame's data-consistency step chosen on its own held-out samples (frames stay independent fits).
    Cartesian: the candidate (μ grid, ConvDecoder's replacement, the network image) with the least estimated error
    against a fully sampled acquisition; radial (no grid of unacquired positions): the μ whose step predicts the
    held-out samples best, on the density-compensated split, so that the solves converge as on a grid."""
    tr_op, y_tr, va_op, y_va, _ = split_kspace(data, holdout, seed=seed, dcf=True, per_frame=True)
    op, y = weighted(data)
    out, choices, scores = [], [], []
    for t in range(data.frames):
        i = torch.tensor([t])
        split = (tr_op.select(i), y_tr[i], va_op.select(i), y_va[i])
        if data.radial:
            c, sc = choose_dc_weight(img[i], *split)
            x = img[i] if c is None else dc_step(img[i], op.select(i), y[i], c).detach()
        else:
            unseen = float((data.mask[t].numel() - data.mask[t].sum()) / va_op.mask[t].sum())  # masks are (T, H, W)
            replace = {"replace": lambda o, v, i=i: data_consistency(img[i], o, v, data.maps)}
            c, sc, x = choose_dc_for_acquisition(img[i], split, op.select(i), y[i], unseen, extra=replace)
        out.append(x.detach())
        choices.append(c)
        scores.append(sc)
    return torch.cat(out), choices, scores


def _dc_choice(preset: dict, dc: bool | None, radial: bool) -> tuple[bool, str | float | None]:
    """(dc on?, its weight: 'auto', 'replace' or μ; None when off) from the preset and the caller's ``dc``."""
    weight = preset.get("dc_weight", "auto")
    if weight not in ("auto", "replace") and not (isinstance(weight, (int, float)) and weight > 0):
        raise ConfigError(f"the preset's dc_weight must be 'auto', 'replace' or a number > 0, got {weight!r}")
    on = preset.get("dc", True) if dc is None else dc
    if on and weight == "replace" and radial:
        if dc:  # asked for explicitly
            raise ConfigError("ConvDecoder's data-consistency step (dc_weight 'replace') replaces Cartesian samples; "
                              "radial data take dc_weight 'auto' or dc=False")
        on = False
    return bool(on), (weight if on else None)
