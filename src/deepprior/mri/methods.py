"""MRI reconstruction methods by name — the plug-in table behind ``deepprior mri recon`` and
:func:`reconstruct`, with one result type (:class:`MRIResult`) for every method."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import ConfigError, InputError
from ..fit import resolve_device
from .common import data_consistency, weighted
from .data import MRIData
from .grappa import grappa
from .metrics import mri_metrics
from .pics import KT_TV_TEMPORAL, KT_TV_WEIGHT, TV_STATIC_WEIGHT, WAVELET_WEIGHT, pics
from .recon import LPS_LAMBDA_L, LPS_LAMBDA_S, cg_sense, low_rank_plus_sparse

METHODS = ("zerofill", "grappa", "cgsense", "tv", "wavelet", "lps", "dip", "tddip", "gip", "cg-moco", "dip-moco")

# The options each method takes besides iters/seed/device/callbacks/ref; anything else is refused.
OPTIONS: dict[str, tuple[str, ...]] = {
    "zerofill": (),
    "grappa": ("lam", "kernel"),
    "cgsense": ("lam", "motion"),
    "tv": ("weight", "temporal", "fourier", "rho"),
    "wavelet": ("weight", "rho"),
    "lps": ("lambda_l", "lambda_s"),
    "dip": ("preset", "lr", "stop", "holdout", "patience", "tv_weight", "dc", "checkpoint", "checkpoint_every", "resume"),
    "tddip": ("preset", "manifold_kind", "cycles", "coords", "batch", "stop", "holdout", "patience", "dcf",
              "checkpoint", "checkpoint_every", "resume", "lr", "init", "dc", "tv_weight", "time_limit", "gram",
              "dc_regs"),
    "gip": ("preset", "stop", "holdout", "admm_stage", "log", "checkpoint", "checkpoint_every", "resume", "gram"),
    "cg-moco": ("lam", "motion", "outer", "levels"),
    "dip-moco": ("preset", "lr", "motion_lr", "motion", "stop", "holdout", "patience", "dc_iters", "checkpoint",
                 "checkpoint_every", "resume"),
}
ITERATIVE = ("cgsense", "tv", "wavelet", "lps", "dip", "tddip", "gip", "cg-moco", "dip-moco")  # what --iters applies to


@dataclass
class MRIResult:
    """What every MRI method returns.

    ``image``: the complex series ``(T, H, W)`` (CPU); ``metrics``: mean ``psnr``/``ssim``/``nrmse``/``ser``
    and ``per_frame`` lists against the reference, when one exists (else empty); ``history``: the fit's
    per-iteration curves (empty for the direct methods); ``selected_iter``: the iteration a stopping rule
    delivered (None = the last); ``iters``: iterations run; ``seconds``: the whole call, set-up included;
    ``info``: method-specific details (stages, oracle diagnostics, per-frame losses, settings).
    """

    image: Tensor
    method: str
    seconds: float
    iters: int | None = None
    selected_iter: int | None = None
    history: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def summary(self) -> str:
        """``PSNR <x> dB SSIM <y> NRMSE <z>`` (the tail of the command's last line), or '' without a reference."""
        m = self.metrics
        return f"PSNR {m['psnr']:.2f} dB SSIM {m['ssim']:.4f} NRMSE {m['nrmse']:.4f}" if m else ""


def check_options(method: str, options: dict, iters: int | None = None) -> None:
    """Refuse a method name or an option that does not apply, as the command line does."""
    if method not in METHODS:
        raise ConfigError(f"unknown MRI method {method!r}; choose one of {', '.join(METHODS)}")
    bad = sorted(k for k, v in options.items() if v is not None and k not in OPTIONS[method])
    if bad:
        where = {k: [m for m, o in OPTIONS.items() if k in o] for k in bad}
        says = "; ".join(f"{k} applies to {', '.join(ms) or 'no method'}" for k, ms in where.items())
        raise ConfigError(f"option(s) {', '.join(bad)} do not apply to {method} ({says})")
    if iters is not None and method not in ITERATIVE:
        raise ConfigError(f"{method} is a direct method; iters applies to {', '.join(ITERATIVE)}")
    if iters is not None and not (isinstance(iters, int) and iters >= 1):
        raise ConfigError(f"iters must be a positive integer, got {iters}")


def _grappa(d: MRIData, lam: float, kernel) -> Tensor:
    """GRAPPA per frame (calibrated on the frame's own centre, else on the time average), then the coils
    combined with the maps as every other method's image is (so fully sampled k-space gives the reference)."""
    if d.radial:
        raise ConfigError("GRAPPA is for Cartesian k-space; use cgsense, tv or wavelet for radial data")
    if isinstance(kernel, int):
        kernel = (kernel, kernel)
    k, m = d.kspace.cpu(), d.mask.cpu() > 0
    avg = (k.sum(0) / m.sum(0).clamp(min=1), m.any(0))  # the series' time average
    full = []
    for t in range(d.frames):
        try:
            full.append(grappa(k[t], m[t], lam=lam, kernel=tuple(kernel)))
        except InputError:
            if d.frames == 1:
                raise
            # a frame without a calibration region of its own calibrates on the time average (TGRAPPA)
            full.append(grappa(k[t], m[t], lam=lam, kernel=tuple(kernel), calib=avg))
    full = torch.stack(full).to(d.kspace.device)
    # the coils combined with the maps, Σ|S|²-normalised: data consistency from x = 0 with every point "acquired"
    op = MRIData(full, torch.ones_like(d.mask), d.maps, None, {}).operator
    return data_consistency(torch.zeros_like(d.kspace[:, 0]), op, full, d.maps)


def _moco(d: MRIData, method: str, iters, seed, callbacks, dev, options: dict, info: dict):
    """The motion-correcting methods: (image, iterations, selected iteration, history); the motion goes to info."""
    from .motion.recon import cg_moco, dip_moco

    if d.shots is None:
        raise InputError(f"{method} needs multi-shot data (deepprior mri simulate IMAGE --motion ...); these data have "
                         "no shot labels")
    kw = {k: v for k, v in options.items() if v is not None}
    start = kw.pop("motion", None)
    if method == "cg-moco":
        if "levels" in kw:
            kw["levels"] = tuple(kw["levels"])
        x, m, minfo = cg_moco(d, init=start, final_iters=iters or 30, **kw)
        info.update(minfo, motion=m)
        return x, minfo["outer"] * len(minfo["levels"]), None, {}
    x, m, minfo = dip_moco(d, init=start, iters=iters, seed=seed, callbacks=callbacks, device=dev, **kw)
    history = minfo.pop("history")
    info.update(minfo, motion=m)
    return x, minfo["iters"], minfo["selected"], history


def reconstruct(data: MRIData, method: str = "cgsense", *, iters: int | None = None, seed: int = 0,
                device: str | torch.device = "auto", callbacks=(), ref: Tensor | None = None,
                **options) -> MRIResult:
    """Reconstruct ``data`` with ``method`` (one of :data:`METHODS`) and score it against ``ref`` (default:
    the reference stored with the data, if any).

    Options (refused where they do not apply, see :data:`OPTIONS`): ``grappa`` lam (Tikhonov), kernel (ky, kx);
    ``cgsense`` lam (Tikhonov);
    ``tv`` weight (spatial λ), temporal (temporal λ), fourier (a temporal Fourier L1's λ, default 0; the tuned
    :data:`~deepprior.mri.pics.KT_FOURIER` makes it the strongest classical method on OCMR), rho — ADMM to
    convergence, defaults tuned in docs/mri.md;
    ``wavelet`` (L1-wavelet, BART pics -l1) weight, rho; ``lps`` lambda_l, lambda_s; ``dip``
    preset (``convdecoder`` | ``skip``), lr, stop, holdout, patience, tv_weight, dc, checkpoint, checkpoint_every,
    resume — see
    :func:`deepprior.mri.dip.dip_static`; ``tddip`` preset (``tddip-cpu`` default | ``tddip``), manifold_kind,
    cycles, coords, batch, stop, holdout, patience, dcf, checkpoint, checkpoint_every, resume, lr, init, dc,
    tv_weight, time_limit, gram, dc_regs — see
    :func:`deepprior.mri.tddip.tddip`; ``gip`` preset (``gip-cpu`` default | ``gip``), stop, holdout,
    admm_stage, checkpoint, checkpoint_every, resume, gram — see :func:`deepprior.mri.gip.gip`. Multi-shot data with
    motion (:func:`deepprior.mri.motion.simulate_motion`): ``cgsense`` motion (a known ``(S, 3)`` motion, else none
    is corrected); ``cg-moco`` lam, motion (start), outer, levels — :func:`deepprior.mri.motion.recon.cg_moco`;
    ``dip-moco`` preset, lr, motion_lr, motion (start, or ``"coarse"``), stop, holdout, patience, dc_iters,
    checkpoint, checkpoint_every, resume — :func:`deepprior.mri.motion.recon.dip_moco`; their ``info["motion"]``
    is the estimate and ``info["motion_rmse"]`` its error when the data hold the truth. ``device='auto'`` takes
    a CUDA GPU when there is one.

    >>> import torch
    >>> from deepprior.mri import simulate
    >>> d = simulate(torch.rand(2, 16, 16), coils=2, accel=2, center=4, seed=0)
    >>> r = reconstruct(d, "cgsense", device="cpu")
    >>> tuple(r.image.shape), r.metrics["psnr"] > reconstruct(d, "zerofill", device="cpu").metrics["psnr"]
    ((2, 16, 16), True)
    """
    check_options(method, options, iters)
    opt = lambda k, default: default if options.get(k) is None else options[k]  # noqa: E731 - 0 is a value
    ref = data.gt if ref is None else ref
    if ref is not None and tuple(ref.shape) != (data.frames, *data.shape):
        raise InputError(f"the reference is {tuple(ref.shape)} but the data reconstruct to {(data.frames, *data.shape)}")
    dev = resolve_device(device)
    t0 = time.perf_counter()
    d = data.to(dev)
    info: dict = {"method": method, "device": str(dev)}
    history: dict = {}
    selected = None
    if method == "zerofill":
        op, y = weighted(d)
        x, n = op.adjoint(y), None
    elif method == "grappa":
        x, n = _grappa(d, lam=opt("lam", 0.01), kernel=opt("kernel", (5, 5))), None
        info.update(lam=opt("lam", 0.01), kernel=opt("kernel", (5, 5)))
    elif method == "cgsense":
        n = iters or 15
        info["lam"] = opt("lam", 0.0)
        if options.get("motion") is not None:  # a known motion (navigator, truth): CG-SENSE through the motion model
            from .motion.recon import known_motion

            x = known_motion(d, options["motion"], iters=n, lam=info["lam"])
            info["motion"] = torch.as_tensor(options["motion"]).float().cpu()
        else:
            x = cg_sense(d.operator, d.kspace, iters=n, lam=info["lam"])
    elif method in ("cg-moco", "dip-moco"):
        x, n, selected, history = _moco(d, method, iters, seed, callbacks, dev, options, info)
    elif method == "lps":
        op, y = weighted(d)
        n = iters or 500  # Otazo's iteration converges in ~400 on OCMR 8× (50 stopped 6 dB short); tol ends it
        info.update(lambda_l=opt("lambda_l", LPS_LAMBDA_L), lambda_s=opt("lambda_s", LPS_LAMBDA_S))
        lo, sp = low_rank_plus_sparse(op, y, lambda_l=info["lambda_l"], lambda_s=info["lambda_s"], iters=n)
        x = lo + sp
    elif method in ("tv", "wavelet"):
        op, y = weighted(d)
        if method == "tv":
            info.update(weight=opt("weight", KT_TV_WEIGHT if d.frames > 1 else TV_STATIC_WEIGHT),
                        temporal=opt("temporal", KT_TV_TEMPORAL), fourier=opt("fourier", 0.0))
            regs = {"tv": info["weight"], "tv-t": info["temporal"] if d.frames > 1 else 0.0,
                    "fourier-t": info["fourier"] if d.frames > 1 else 0.0}
        else:
            info["weight"] = opt("weight", WAVELET_WEIGHT)
            regs = {"wavelet": info["weight"]}
        pr = pics(op, y, regs, iters=iters or 100, rho=opt("rho", 0.5), track=True)
        x, n = pr.image, pr.iters
        history = {"loss": pr.objective, "primal": pr.primal, "dual": pr.dual, "rho": pr.rho[1:]}
    elif method == "dip":
        from .dip import dip_static

        x, dinfo = dip_static(d, seed=seed, callbacks=callbacks, device=dev, iters=iters, **options)
        history, n, selected = dinfo.pop("history"), dinfo["iters"], dinfo["selected"]
        info.update(frame_loss=dinfo["frame_loss"], scale=dinfo["scale"], backtracks=dinfo["backtracks"], dc=dinfo["dc"],
                    dc_scores=dinfo["dc_scores"], network_image=dinfo["network_image"])
    elif method == "tddip":
        from .tddip import tddip

        x, tinfo = tddip(d, steps=iters, seed=seed, callbacks=callbacks, ref=ref, device=dev, **options)
        history, n, selected = tinfo.pop("history"), tinfo["steps"], tinfo.get("selected_sweep")
        info.update(tinfo)
    else:
        from .gip import gip

        x, ginfo = gip(d, iters=iters, seed=seed, callbacks=callbacks, ref=ref, device=dev, **options)
        info.update(ginfo)
        n = sum(s["steps"] for s in ginfo["stages"])
    x = x.detach().cpu()
    if data.motion is not None and "motion" in info:
        from .motion.recon import motion_rmse

        info["motion_rmse"] = motion_rmse(info["motion"], data.motion.cpu())
    info["seconds"] = time.perf_counter() - t0  # the whole call, set-up included
    r = MRIResult(x, method, info["seconds"], n, selected, history, {}, info)
    if ref is not None:
        r.metrics = mri_metrics(x, ref)
    return r
