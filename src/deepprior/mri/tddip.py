"""Dynamic MRI with the time-dependent deep image prior (TDDIP; Yoo et al., IEEE TMI 2021).

Frame t is ``x_t = h_ψ(g_φ(m(t)))``: a point m(t) on a low-dimensional time manifold, a MapNet g_φ
to a latent code, and one CNN generator h_ψ shared by all frames. θ = (φ, ψ) is fitted jointly to
the undersampled k-space of all frames through the exact multi-coil operator (Cartesian or radial),
in mini-batches of frames, with the shared fit loop. Nothing is pre-trained.

Stopping needs no ground truth: a seeded fraction of the acquired k-space samples is held out of
the data term and the fit stops when their loss has not improved for ``patience`` sweeps
(self-validation), or by ES-WMV on the outputs. Oracle PSNR against a reference, when one is given,
is recorded as a diagnostic only.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, InputError
from ..fit import FitConfig, fit, resolve_device
from ..fit.stopping import Holdout, TimeLimit, WindowedVariance
from ..nets import MapNet, build_net
from ..nets.common import center_crop
from ..params import Offset, Parameterization, render
from ..presets import resolve
from .common import MRIOracle, check_network_memory, image_on_interrupt, kspace_scale, radial_weights, split_kspace, support, weighted
from .data import MRIData
from .dcweight import choose_dc_weight, dc_step, final_step_seconds
from .dip import ScaledTV
from .gramloss import data_term
from .operators import ChannelsToComplex
from .pics import kt_tv, pics

MANIFOLDS = ("helix", "circle", "line", "custom")
STOPS = ("holdout", "wmv", "none")  # the rules TDDIP can stop by
DC_PULL = 0.1  # the TV pull as a factor of the held-out μ where a preset names none (tddip-cpu's, tuned on OCMR R = 4)


def manifold(kind: str, frames: int, *, cycles: float = 1.0, coords=None) -> Tensor:
    """Points ``(frames, d)`` on a time manifold (the TDDIP input).

    * ``helix`` (d = 3): ``(cos 2πc·s, sin 2πc·s, s)``, s = 0…1 over the frames, c = ``cycles`` — the
      reference, for real-time series that repeat the cardiac cycle (reference: 13 cycles).
    * ``circle`` (d = 2): ``cycles`` turns with the end joined to the start — a binned cine that is
      one periodic cardiac cycle (the last frame neighbours the first).
    * ``line`` (d = 1): s = 0…1, no periodicity.
    * ``custom``: ``coords`` per frame — ``(frames,)`` cardiac phases in [0, 1) (from ECG or a
      navigator) are placed on the circle; ``(frames, d)`` coordinates are used as given.

    >>> manifold("helix", 5, cycles=1).shape, manifold("circle", 4)[1].round().tolist()
    (torch.Size([5, 3]), [0.0, 1.0])
    """
    if not isinstance(frames, int) or frames < 1:
        raise ConfigError(f"frames must be a positive integer, got {frames}")
    if kind == "custom":
        if coords is None:
            raise ConfigError("the custom manifold needs coords: per-frame cardiac phases (T,) or points (T, d)")
        c = torch.as_tensor(np.asarray(coords), dtype=torch.float64)
        if c.shape[0] != frames or c.ndim not in (1, 2) or not torch.isfinite(c).all():
            raise InputError(f"manifold coords must be finite, (frames,) or (frames, d) with frames = {frames}, "
                             f"got shape {tuple(c.shape)}")
        if c.ndim == 1:
            a = 2 * math.pi * c
            return torch.stack([a.cos(), a.sin()], 1).float()
        return c.float()
    if kind not in MANIFOLDS:
        raise ConfigError(f"unknown manifold {kind!r}; choose one of {', '.join(MANIFOLDS)}")
    if not cycles > 0:
        raise ConfigError(f"cycles must be > 0, got {cycles}")
    s = torch.linspace(0, 1, frames, dtype=torch.float64) if frames > 1 else torch.zeros(1, dtype=torch.float64)
    if kind == "line":
        return s[:, None].float()
    if kind == "helix":
        a = 2 * math.pi * cycles * s
        return torch.stack([a.cos(), a.sin(), s], 1).float()
    a = 2 * math.pi * cycles * torch.arange(frames, dtype=torch.float64) / frames
    return torch.stack([a.cos(), a.sin()], 1).float()


class TimeDIP(Parameterization):
    """``x_t = crop(h(g(m_t)))`` for the manifold points ``points`` ``(T, d)``: MapNet ``mapnet`` → code
    ``(c, h0, w0)`` → generator ``net`` → ``(T, 2, H, W)`` (real, imag). ``index`` picks frames
    (``n_items`` = T), for mini-batches of frames in :func:`~deepprior.fit.fit`.

    >>> import torch
    >>> from deepprior.nets import MapNet, TDDecoder
    >>> net = TDDecoder(1, 2, channels=8, out_hw=(20, 18))
    >>> hw = net.code_size(20, 18)
    >>> p = TimeDIP(manifold("circle", 6), MapNet(2, (1, *hw), hidden=(16,)), net, (20, 18))
    >>> p().shape, p(index=torch.tensor([0, 3])).shape
    (torch.Size([6, 2, 20, 18]), torch.Size([2, 2, 20, 18]))
    """

    def __init__(self, points: Tensor, mapnet: MapNet, net, out_hw: tuple[int, int]):
        super().__init__()
        self.register_buffer("points", torch.as_tensor(points, dtype=torch.float32))
        self.mapnet, self.net = mapnet, net
        self.out_hw = tuple(out_hw)
        self.n_items = self.points.shape[0]

    def forward(self, perturb: bool = True, index: Tensor | None = None) -> Tensor:
        p = self.points if index is None else self.points[index.to(self.points.device)]
        out = self.net(self.mapnet(p))
        if tuple(out.shape[-2:]) != self.out_hw:
            out = center_crop(out, *self.out_hw)
        return out


def build_tddip(frames: int, hw: tuple[int, int], *, preset: str | dict | None = None, manifold_kind: str | None = None,
                cycles: float | None = None, coords=None, seed: int = 0) -> TimeDIP:
    """The TDDIP parameterization for ``frames`` frames of size ``hw`` from a preset (name or dict);
    ``manifold_kind``/``cycles``/``coords`` override the preset's manifold. Seeded weights."""
    p = resolve(preset, "tddip")[1]
    kind = manifold_kind or p["manifold"]
    pts = manifold(kind, frames, cycles=cycles if cycles is not None else p.get("cycles", 1), coords=coords)
    spec = dict(p["net"])
    name = spec.pop("name")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        in_ch = p.get("code_channels", 1)
        decoder_code = name in ("conv_decoder", "deep_decoder")
        net = build_net(name, in_ch, 2, out_hw=hw, **({**spec, "need_sigmoid": False} if decoder_code else spec))
        code_hw = net.code_size(*hw)
        mapnet = MapNet(pts.shape[1], (net.in_channels, *code_hw), hidden=p["mapnet"].get("hidden", [512]))
    return TimeDIP(pts, mapnet, net, hw)


def tddip(data: MRIData, *, preset: str | dict | None = None, steps: int | None = None, batch: int | None = None,
          manifold_kind: str | None = None, cycles: float | None = None, coords=None, stop: str = "holdout",
          holdout: float = 0.05, patience: int | None = None, dcf: bool = True, seed: int = 0, callbacks=(),
          ref: Tensor | None = None, device: str | torch.device = "auto", checkpoint=None, checkpoint_every: int = 0,
          resume=None, init=None, dc: bool | None = None, tv_weight: float = 0.0, time_limit: float | None = None,
          gram: bool = True, dc_regs: dict | None = None, **fit_overrides) -> tuple[Tensor, dict]:
    """Reconstruct a dynamic series with TDDIP. Returns the complex series ``(T, H, W)`` and an info dict
    (steps, sweeps, seconds, the stopped/selected sweep, loss curves and — with ``ref`` — the oracle
    PSNR curve and its best sweep, as diagnostics). Most users call
    :func:`deepprior.mri.reconstruct` (``method='tddip'``), which wraps this in an :class:`MRIResult`.

    ``preset``: ``'tddip-cpu'`` (default, as on the command line) or ``'tddip'`` (the reference, a GPU
    setting), or a dict. ``stop``: ``'holdout'`` (hold out ``holdout`` of the acquired samples, stop when
    their loss has not improved for ``patience`` sweeps and deliver that iterate), ``'wmv'`` (ES-WMV on the
    outputs) or ``'none'`` (run all ``steps``); neither rule fires before the schedule's last learning-rate drop has
    run ``patience`` sweeps (``info["not_before"]``). ``steps`` counts optimizer steps of ``batch`` frames, as the
    reference. ``device``: ``'auto'`` takes a CUDA GPU when there is one.
    ``checkpoint``/``checkpoint_every``/``resume`` as in :func:`~deepprior.fit.fit` (counted in sweeps).
    ``init``: ``'tv'`` (the ``tv`` method's k-t TV solution at its defaults) or a complex series ``(T, H, W)`` —
    the generator then starts exactly at that image and fits only the changes (:class:`~deepprior.params.Offset`).
    ``tv_weight`` λ > 0 adds DIP-TV's spatial TV penalty on every fitted frame (as ``dip``'s ``tv_weight``).
    ``dc=True``: once the iterate is chosen, end with exact data consistency towards it,
    ``min_x ½‖Ax − y‖² + μ/2‖x − x_net‖²`` over *all* acquired samples (held-out ones included), by conjugate
    gradients — the scanner's samples are kept, the network fills the rest. μ is the preset's ``dc_weight``: a
    number (Cartesian data only), or ``'auto'``: the μ of a grid, or none (the network image), whose step on the
    training samples best predicts the held-out ones (:func:`~deepprior.mri.dcweight.choose_dc_weight`; needs
    ``stop='holdout'``). ``dc=None`` takes the preset's ``dc``.
    ``dc_regs``: classical terms added to that final step (``{"tv": λ_xy, "tv-t": λ_t}``, as :func:`~deepprior.mri.pics.pics`
    takes them) — k-t TV pulled towards the network image, ``min ½‖Ax − y‖² + Σ λ‖Gx‖₁ + μ'/2‖x − x_net‖²`` with
    μ' = the preset's ``dc_pull`` (default 0.1) × the chosen μ; None takes the preset's ``dc_regs``, ``{}`` turns them off.
    ``time_limit``: seconds of fitting after which the run ends with what the stop rule selected so far
    (:class:`~deepprior.fit.stopping.TimeLimit`; ``info["time_limited"]`` is the sweep it ended after, or None);
    0 turns it off. None takes the preset's: its ``budget`` (seconds for the whole call: the fit ends early enough
    for the set-up so far and the final step, whose cost is timed on this machine before the fit,
    :func:`~deepprior.mri.dcweight.final_step_seconds`; ``info["time_limit"]`` is the fit's share), else its
    ``time_limit`` (none if absent).
    ``gram``: radial data's term and held-out score through the Toeplitz gram
    (:class:`~deepprior.mri.gramloss.GramMisfit`, no NUFFT per step; the same loss and gradient); False: through the
    NUFFT pair.

    >>> import torch
    >>> from deepprior.mri.data import simulate
    >>> from deepprior.presets import get_preset
    >>> d = simulate(torch.rand(4, 16, 16), coils=2, accel=2, center=4, seed=0)
    >>> p = {**get_preset("tddip-cpu", "tddip"), "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [16]}}
    >>> x, info = tddip(d, preset=p, steps=8, stop="none", device="cpu")
    >>> tuple(x.shape), info["sweeps"]
    ((4, 16, 16), 2)
    """
    t_start = time.perf_counter()
    if stop not in STOPS:
        raise ConfigError(f"unknown stop rule {stop!r} for TDDIP; choose one of {', '.join(STOPS)}")
    p = resolve(preset, "tddip")[1]
    mu, explicit = p.get("dc_weight"), dc is not None
    if mu not in (None, "auto") and not (isinstance(mu, (int, float)) and mu > 0):
        raise ConfigError(f"the preset's dc_weight must be a number > 0 or 'auto', got {mu!r}")
    dc = bool(p.get("dc", False) if dc is None else dc)
    if dc and not mu:
        raise ConfigError("this TDDIP preset has no data-consistency weight ('dc_weight'); add one or take dc=False")
    if dc and mu == "auto" and stop != "holdout":
        if explicit:
            raise ConfigError("dc_weight 'auto' chooses μ on the held-out samples: it needs stop='holdout'")
        dc = False  # the preset's default meets a stop rule without held-out samples: deliver the network image
    if dc and mu != "auto" and data.radial:
        raise ConfigError("a fixed data-consistency weight is tuned for Cartesian data; radial data take "
                          "dc_weight 'auto' (chosen on held-out samples) or dc=False")
    if tv_weight < 0:
        raise ConfigError(f"tv_weight must be >= 0, got {tv_weight}")
    regs = dict(p.get("dc_regs") or {}) if dc_regs is None else dict(dc_regs)
    pull = float(p.get("dc_pull", DC_PULL))
    if regs and not pull > 0:
        raise ConfigError(f"the preset's dc_pull must be > 0, got {pull}")
    fcfg = dict(p["fit"])
    dev = resolve_device(device)
    bf16 = FitConfig(amp=fit_overrides.get("amp") or fcfg.get("amp")).bf16_on(dev)
    if not bf16:  # a preset may give float32 steps their own count and schedule (tddip-cpu leaves it to its budget)
        fcfg.update(p.get("fit_fp32", {}))
    t_frames = data.frames
    preset_batch, preset_steps = fcfg.pop("batch", 1), fcfg.pop("steps")
    b = batch if batch is not None else preset_batch
    b = None if b is None or b >= t_frames else int(b)
    per_sweep = 1 if b is None else math.ceil(t_frames / b)
    n_steps = steps if steps is not None else preset_steps
    sweeps = max(1, math.ceil(n_steps / per_sweep))
    schedule = fcfg.pop("lr_schedule", "step")  # None: a constant learning rate, no drops
    lr_step = max(1, round(fcfg.pop("lr_step", 2000) / per_sweep))
    data = data.to(dev)
    param = build_tddip(t_frames, data.shape, preset=p, manifold_kind=manifold_kind, cycles=cycles, coords=coords,
                        seed=seed).to(dev)
    check_network_memory(param, data, dev, what="TDDIP", frames_per_step=b)
    c2c = ChannelsToComplex(frames=t_frames)
    if stop == "holdout":
        tr_op, y_tr, va_op, y_va, count = split_kspace(data, holdout, seed=seed + 11, dcf=dcf)
    elif data.radial:
        from .nufft import Weighted

        tr_op = Weighted(data.operator, radial_weights(data, dcf))
        y_tr = tr_op.sw * data.kspace
    else:
        tr_op, y_tr = data.operator, data.kspace
    with torch.no_grad():
        scale = kspace_scale(render(param, b), data)
    loss_op, target = data_term(tr_op, y_tr * scale, c2c, gram)  # radial: through the Toeplitz gram, no NUFFT per step
    where = support(data)  # the maps' null space stays 0 (see common.support)
    cfg = FitConfig(iters=sweeps, lr_schedule=schedule, lr_step=lr_step, batch=b, batch_seed=seed, backtrack=True,
                    backtrack_every=max(1, min(100, sweeps // 10)), **fcfg)
    cfg = cfg.replace(**{k: v for k, v in fit_overrides.items() if v is not None})
    if init is not None:
        # rendered in the fit's precision and memory layout (bf16 kernels round differently per layout), so that a
        # bf16 network too starts exactly at the given image
        if cfg.channels_last_on(dev, param):
            param.to(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            param = Offset(param, c2c.adjoint(_start(init, data) * scale, (t_frames, 2, *data.shape)), batch=b)
    to_image = lambda x: c2c(x) / scale * where  # noqa: E731
    cbs = list(callbacks)
    stopper = None
    patience = patience or p.get("patience", 15)
    # After a learning-rate drop the held-out score can rise for longer than the patience and then fall below its
    # earlier minimum (OCMR R = 8: a minimum at sweep 202, 48 after the first drop, beaten from sweep 269 on; the
    # rule had fired at 262): the rule waits until the last drop has run `patience` sweeps.
    last_drop = (sweeps - 1) // lr_step * lr_step if schedule == "step" else 0
    not_before = last_drop + patience if last_drop else 0
    if stop == "holdout":
        # scored on the EMA of the sweeps: smoother than single sweeps, and it is what is delivered
        # Radial data are scored through the Toeplitz gram too: 64 against the forward NUFFT's 106 ms per 13-spoke
        # sweep (~5 % of it), the same score to 7·10⁻⁵ on a fixed image; on 8 spokes seed 0 it chose the same sweep as
        # the NUFFT score (433, the rule firing at 554).
        stopper = Holdout(*data_term(va_op, y_va * scale, c2c, gram), every=1, patience=patience, count=count,
                          source="ema", not_before=not_before)
    elif stop == "wmv":
        stopper = WindowedVariance(window=min(20, max(2, sweeps // 5)), patience=patience, not_before=not_before)
    if stopper is not None:
        cbs.insert(0, stopper)
    oracle = MRIOracle(ref.to(dev), to_image) if ref is not None else None
    if oracle is not None:
        cbs.append(oracle)
    # all samples, density-compensated: the final step's operator, built once (a radial one keeps its Toeplitz kernel,
    # which the budget's probe below computes already)
    full = weighted(data, dcf) if dc else None
    budget = p.get("budget") if time_limit is None else None
    if budget:
        # the whole reconstruction within `budget` seconds: the fit gets what the set-up so far (the held-out score's
        # kernels included) and the final step (timed here, on this machine) leave, and at least a tenth of it
        if not budget > 0:
            raise ConfigError(f"the preset's budget must be > 0 seconds, got {budget!r}")
        blank = torch.zeros(t_frames, *data.shape, dtype=torch.complex64, device=dev)
        final = final_step_seconds(*full, blank, regs, int(p.get("dc_iters", 100))) if dc else 0.0
        limit = max(0.1 * budget, budget - (time.perf_counter() - t_start) - final)
    else:
        final, limit = None, p.get("time_limit") if time_limit is None else time_limit
    timer = TimeLimit(limit) if limit else None
    # an "anneal" schedule ends its decay at the time limit when that comes before the last step
    cfg = cfg.replace(time_budget=limit or None)
    if timer is not None:
        cbs.append(timer)  # after the stop rule: the last sweep's score counts before the fit ends
    reg = None
    if tv_weight:
        # the loop's data term is a mean over the step's frames' samples: normalise the penalty the same way
        reg = ScaledTV(c2c, torch.tensor(scale, device=dev), where, y_tr[0].numel() * (b or t_frames))
        cfg = cfg.replace(reg_weight=tv_weight)
    t0 = time.perf_counter()
    with image_on_interrupt(to_image):
        res = fit(param, loss_op, target, cfg, regularizer=reg, callbacks=cbs, checkpoint=checkpoint,
                  checkpoint_every=checkpoint_every, resume=resume)
    seconds = time.perf_counter() - t0
    x = to_image(res.output).detach()
    network = x.cpu()
    dc_scores = None
    t_final = time.perf_counter()
    if dc:
        if mu == "auto":
            mu, dc_scores = choose_dc_weight(x, tr_op, y_tr, va_op, y_va)
        if mu is not None and regs:
            # The network and k-t TV err in different places: on OCMR k-t 8× (3 seeds) the pull gained 0.61 ± 0.09 dB
            # over the plain step on the same fits. With TV sharing the work the pull is weaker than the μ chosen
            # without it (0.1 × μ, tuned on R = 4).
            x = pics(*full, regs, prior=(x, pull * float(mu)), x0=x,
                     iters=int(p.get("dc_iters", 100))).image.detach()
        elif mu is not None:
            x = dc_step(x, *full, float(mu)).detach()
    x = x.cpu()
    t_end = time.perf_counter()
    info = {"method": "tddip", "dc": float(mu) if dc and mu is not None else None, "dc_scores": dc_scores, "bf16": bf16,
            "dc_regs": regs if dc and mu is not None else {}, "dc_pull": pull * float(mu) if dc and mu and regs else None,
            "network_image": network,
            "steps": res.iters_run * per_sweep, "sweeps": res.iters_run, "batch": b or t_frames,
            "last_lr_drop": last_drop, "not_before": not_before, "time_limit": limit or None,
            "budget": budget or None, "final_step_estimate": final, "final_step_seconds": t_end - t_final,
            "setup_seconds": t0 - t_start,
            "time_limited": None if timer is None else timer.fired_at,
            "seconds": seconds, "scale": scale, "stop": stop, "selected_sweep": res.selected_iter,
            "loss": res.history["data"], "backtracks": res.backtracks,
            "params": sum(q.numel() for q in param.parameters()), "history": res.history}
    if stopper is not None:
        info["stop_scores"], info["stop_iters"], info["fired_at"] = stopper.scores, stopper.iters, stopper.fired_at
    if oracle is not None:
        info.update(oracle_iters=oracle.iters, oracle_psnr=oracle.psnr_ema, oracle_best_sweep=oracle.best_iter,
                    oracle_best_psnr=oracle.best_psnr)
    return x, info


def _start(init, data: MRIData) -> Tensor:
    """The complex series a warm-started TDDIP begins from."""
    if isinstance(init, str):
        if init != "tv":
            raise ConfigError(f"init must be 'tv' or a complex series (T, H, W), got {init!r}")
        return kt_tv(*weighted(data)).detach()
    x = torch.as_tensor(init).to(data.kspace.device)
    if not x.is_complex() or tuple(x.shape) != (data.frames, *data.shape):
        raise InputError(f"init must be a complex series of shape {(data.frames, *data.shape)}, got "
                         f"{tuple(x.shape)} {x.dtype}")
    return x
