"""Motion-corrected reconstruction from multi-shot k-space: the image and every shot's rigid pose estimated
together, through the one fit loop.

* :func:`cg_moco` — the classical joint estimate: alternate CG-SENSE image updates (the model is linear in
  the image for a fixed motion) and per-shot Levenberg–Marquardt motion updates (the image fixed), coarse to fine.
* :func:`dip_moco` — the untrained-network joint estimate: the image is a generator's output, fitted together
  with the motion (its own Adam group and learning rate) through :class:`~.operator.MotionSENSE`.
* :func:`known_motion` — CG-SENSE with a given motion (a navigator's, or the truth).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...errors import ConfigError, InputError
from ...fit import Callback, FitConfig, FitState, fit
from ...fit.stopping import Holdout, holdout_split
from ..coils import normalize_maps
from ..data import MRIData
from ..recon import cg
from .operator import MotionSENSE, RigidMotion, WithMotion
from .register import register_shots
from .rigid import check_motion


def shot_count(data: MRIData) -> int:
    """The number of shots of multi-shot ``data``; an :class:`InputError` for data without shot labels."""
    if data.shots is None:
        raise InputError("these data have no shot labels: motion correction needs multi-shot data "
                         "(deepprior mri simulate ... --motion, or MRIData(shots=...))")
    return int(data.shots.max()) + 1


def motion_operator(data: MRIData, motion, shots: Tensor | None = None) -> MotionSENSE:
    """The :class:`MotionSENSE` of multi-shot ``data`` (its own shot labels unless ``shots`` are given)."""
    shot_count(data)
    lab = data.shots if shots is None else shots
    if data.radial:
        return MotionSENSE(lab, data.maps, motion, traj=data.traj[0], shape=data.shape)
    return MotionSENSE(lab, data.maps, motion)


def motion_rmse(est: Tensor, true: Tensor) -> dict:
    """RMS error of an estimated motion against the truth over the shots after the first (whose pose is fixed):
    ``shift_px`` over both in-plane axes, ``rot_deg`` over the rotations.

    >>> motion_rmse(torch.tensor([[0, 0, 0], [1.0, 0, 2]]), torch.zeros(2, 3))
    {'shift_px': 0.7071, 'rot_deg': 2.0}
    """
    e = (torch.as_tensor(est).float() - torch.as_tensor(true).float())[1:]
    if not e.numel():
        return {"shift_px": 0.0, "rot_deg": 0.0}
    return {"shift_px": round(float(e[:, :2].square().mean().sqrt()), 4),
            "rot_deg": round(float(e[:, 2].square().mean().sqrt()), 4)}


def coarse(data: MRIData, f: int) -> MRIData:
    """``data`` at 1/f resolution: the central (H/f, W/f) k-space (scaled so image values keep), its shot labels
    and coil maps; motion in pixels of that grid. Cartesian only — where coarse-to-fine estimation starts."""
    if data.radial:
        raise ConfigError("coarse-to-fine motion estimation is for Cartesian data; use levels=(1,) for radial")
    h, w = data.shape
    ch, cw = h // f, w // f
    y0, x0 = h // 2 - ch // 2, w // 2 - cw // 2
    cut = (..., slice(y0, y0 + ch), slice(x0, x0 + cw))
    # every f-th pixel from the centre: the coarse grid's pixel i is the fine grid's pixel f·i (the centres of the
    # centred FFTs coincide); interpolating (align_corners=False) would shift the maps by (f−1)/2 pixels
    maps = None if data.maps is None else normalize_maps(data.maps[:, (h // 2) % f::f, (w // 2) % f::f][:, :ch, :cw])
    motion = None if data.motion is None else data.motion * torch.tensor([1 / f, 1 / f, 1.0], device=data.motion.device)
    return MRIData(data.kspace[cut] / f, data.mask[cut], maps, None, dict(data.meta), shots=data.shots[cut],
                   motion=motion)


class MotionTrace(Callback):
    """The motion ``(S, 3)`` after every step (for the curves, and the motion of the iterate a stopping rule
    delivers)."""

    def __init__(self, motion: RigidMotion):
        self.motion, self.trace = motion, {}  # keyed by the loop's iteration (a resumed fit starts past 0)

    def on_step_end(self, state: FitState) -> None:
        self.trace[state.it] = self.motion().detach().cpu().clone()


def _cg_image(data: MRIData, motion: Tensor, x0: Tensor | None, iters: int, lam: float) -> Tensor:
    a = motion_operator(data, motion)
    b = a.adjoint(data.kspace)
    return cg(lambda v: a.adjoint(a(v)) + lam * v, b, x0=x0, iters=iters)


def _motion_step(data: MRIData, x: Tensor, motion: Tensor, iters: int) -> Tensor:
    return register_shots(lambda m: motion_operator(data, m)(x), data.kspace, data.shots, motion, iters=iters)[0]


def cg_moco(data: MRIData, *, outer: int = 8, cg_iters: int = 10, motion_steps: int = 2, lam: float = 0.0,
            levels: tuple[int, ...] | None = None, init: Tensor | None = None, final_iters: int = 30) -> tuple[Tensor, Tensor, dict]:
    """Classical joint estimate: at each resolution level f (coarse to fine; default 1/4, 1/2, 1 for Cartesian data,
    full resolution only for radial), ``outer`` rounds of
    CG-SENSE on the image (``cg_iters``, warm-started, Tikhonov ``lam``) then ``motion_steps`` Levenberg–Marquardt
    steps on every shot's pose (:func:`~.register.register_shots`); the motion carries to the next level; a final
    CG-SENSE (``final_iters``) with the estimate. Returns the image ``(1, H, W)``, the motion ``(S, 3)`` and an info dict (the motion after each round, per level).

    >>> from deepprior.mri.motion import simulate_motion
    >>> d = simulate_motion(torch.rand(24, 24), coils=2, shots=3, max_shift=1, max_rot=1, seed=0)
    >>> x, m, info = cg_moco(d, outer=1, levels=(1,))
    >>> tuple(x.shape), tuple(m.shape)
    ((1, 24, 24), (3, 3))
    """
    s = shot_count(data)
    motion = torch.zeros(s, 3) if init is None else check_motion(init, s).clone()
    motion = motion.to(data.kspace.device)
    if levels is None:
        levels = (1,) if data.radial else (4, 2, 1)
    rounds = []
    for f in levels:
        d = data if f == 1 else coarse(data, f)
        per_px = torch.tensor([f, f, 1.0], device=motion.device)  # this level's pixels are f of the data's
        m, x = motion / per_px, None
        for _ in range(outer):
            x = _cg_image(d, m, x, cg_iters, lam)
            m = _motion_step(d, x, m, motion_steps)
            rounds.append({"level": f, "motion": (m * per_px).cpu()})
        motion = m * per_px
    x = _cg_image(data, motion, None, final_iters, lam)
    return x.detach(), motion.cpu(), {"rounds": rounds, "levels": list(levels), "outer": outer, "cg_iters": cg_iters,
                                      "motion_steps": motion_steps, "lam": lam}


def known_motion(data: MRIData, motion: Tensor, *, iters: int = 15, lam: float = 0.0) -> Tensor:
    """CG-SENSE through the motion model with a known ``motion`` ``(S, 3)`` — with the truth, the motion-free ceiling
    of the classical reconstruction.

    >>> from deepprior.mri.motion import simulate_motion
    >>> d = simulate_motion(torch.rand(16, 16), coils=2, shots=2, seed=0)
    >>> tuple(known_motion(d, d.motion).shape)
    (1, 16, 16)
    """
    return _cg_image(data, check_motion(motion, shot_count(data)).to(data.kspace.device), None, iters, lam).detach()


def dip_moco(data: MRIData, *, preset: str | dict | None = None, seed: int = 0, iters: int | None = None,
             lr: float | None = None, motion_lr: float | None = None, init: Tensor | str | None = None,
             stop: str | None = None, holdout: float = 0.05, patience: int | None = None, dc_iters: int | None = None,
             callbacks=(), device="auto", checkpoint=None, checkpoint_every: int = 0, resume=None) -> tuple[Tensor, Tensor, dict]:
    """The untrained-network joint estimate: a generator's output is the image, fitted together with every shot's
    motion through :class:`~.operator.MotionSENSE` (the motion an Adam group of its own, ``motion_lr`` × the
    network's rate, in pixels and degrees). ``init``: a start for the motion (``(S, 3)``, or ``"coarse"``: the
    classical estimate on the k-space centre, :func:`cg_moco` at 1/4 and 1/2 resolution), default the preset's.
    ``stop='holdout'`` (the default for Cartesian data; radial data run all steps) holds out ``holdout`` of the
    samples, scores the EMA image on them and delivers the best (with the motion of that step). ``dc_iters`` (default the preset's) CG-SENSE iterations through the estimated
    motion, started at the network image, make the delivered image agree with every measured sample (0 = deliver
    the network image). Returns the image ``(1, H, W)``, the motion ``(S, 3)`` and an info dict
    (``network_image``, ``motion_trace`` per step, ``history``, ``selected``).

    >>> from deepprior.mri.motion import simulate_motion
    >>> d = simulate_motion(torch.rand(16, 16), coils=2, shots=2, max_shift=1, max_rot=1, seed=0)
    >>> p = {"net": {"name": "conv_decoder", "channels": 8, "layers": 3, "need_sigmoid": False},
    ...      "code": {"kind": "noise", "scale": 0.1}, "fit": {"iters": 3, "lr": 0.01, "ema": None},
    ...      "motion": {"lr_scale": 1.0, "init": "zero"}}
    >>> x, m, info = dip_moco(d, preset=p, stop="none", device="cpu")
    >>> tuple(x.shape), tuple(m.shape), tuple(info["motion_trace"].shape)
    ((1, 16, 16), (2, 3), (3, 2, 3))
    """
    from ...fit import resolve_device
    from ...presets import resolve
    from ..common import check_network_memory, image_on_interrupt, kspace_scale, support
    from ..dip import build_static_dip
    from ..operators import ChannelsToComplex

    p = resolve(preset, "moco")[1]
    dev = resolve_device(device)
    data = data.to(dev)
    s = shot_count(data)
    init = p["motion"]["init"] if init is None else init
    info: dict = {}
    if isinstance(init, str):
        if init == "coarse":
            start = cg_moco(data, levels=(4, 2), outer=p["motion"]["coarse_outer"], final_iters=1)[1]
            info["coarse_motion"] = start
        elif init == "zero":
            start = None
        else:
            raise ConfigError(f"unknown motion init {init!r}; give 'coarse', 'zero' or an (S, 3) motion")
    else:
        start = check_motion(init, s)
    dip = build_static_dip(p, data.shape, seed)
    motion = RigidMotion(s, init=start)
    param = WithMotion(dip, motion, p["motion"]["lr_scale"] if motion_lr is None else motion_lr).to(dev)
    check_network_memory(param, data, dev, what="DIP motion correction")
    c2c = ChannelsToComplex()
    with torch.no_grad():
        scale = kspace_scale(param(perturb=False), data)
    y = data.kspace * scale
    stop = stop or ("none" if data.radial else p.get("stop", {}).get("rule", "none"))
    if stop == "holdout" and data.radial:
        raise ConfigError("dip-moco holds out Cartesian lines only; radial data take stop='none'")
    trace = MotionTrace(motion)
    cbs = [*callbacks, trace]
    if stop == "holdout":
        tr, va = holdout_split(data.mask[0].cpu(), holdout, seed=seed + 11)
        tr, va = tr.to(dev), va.to(dev)
        lab_tr, lab_va = torch.where(tr > 0, data.shots, -1), torch.where(va > 0, data.shots, -1)
        op = motion_operator(data, motion, lab_tr) @ c2c
        val = motion_operator(data, motion, lab_va) @ c2c
        count = float(va.sum()) * data.kspace.shape[1]
        stopper = Holdout(val, y * va, every=10, patience=patience or p["stop"]["patience"], count=count, source="ema")
        cbs.insert(0, stopper)
        y = y * tr
    elif stop == "none":
        op = motion_operator(data, motion) @ c2c
    else:
        raise ConfigError(f"unknown stop rule {stop!r} for dip-moco; choose holdout or none")
    where = support(data)
    to_image = lambda x: (c2c(x) / scale * where)[None]  # noqa: E731
    cfg = FitConfig().replace(**{**p["fit"], **{k: v for k, v in {"iters": iters, "lr": lr}.items() if v is not None}})
    with image_on_interrupt(to_image):
        result = fit(param, op, y, cfg, callbacks=cbs, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                     resume=resume)
    sel = result.selected_iter
    est = trace.trace.get(sel, motion().detach().cpu()) if sel is not None else motion().detach().cpu()
    img = to_image(result.output).detach()
    info["network_image"] = img.cpu()
    dc = p.get("dc_iters", 0) if dc_iters is None else dc_iters
    if dc:
        # data consistency through the estimated motion: CG from the network image keeps what the data do not
        # determine (the null space) as the network made it and fits every measured sample, held-out ones too
        img = _cg_image(data, est.to(dev), img, dc, 0.0)
    info.update(history=result.history, iters=result.iters_run, selected=sel, scale=scale, stop=stop, dc_iters=dc,
                motion_trace=torch.stack([trace.trace[k] for k in sorted(trace.trace)]) if trace.trace else None,
                backtracks=result.backtracks)
    return img.detach().cpu(), est, info
