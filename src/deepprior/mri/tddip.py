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

import copy
import math
import time

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, InputError
from ..fit import Callback, FitConfig, FitState, fit
from ..nets import MapNet, build_net
from ..nets.common import center_crop
from ..params import Parameterization, render
from .data import MRIData
from .metrics import mri_psnr
from .operators import CartesianSENSE, ChannelsToComplex

MANIFOLDS = ("helix", "circle", "line", "custom")


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
    >>> net = TDDecoder(1, 2, channels=8)
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


# Presets are data. ``steps`` and ``lr_step`` count optimizer steps as the reference does (one step =
# ``batch`` frames); the fit loop counts sweeps over all frames, converted at run time.
TDDIP_PRESETS: dict[str, dict] = {
    # The reference (jaejun-yoo/TDDIP, basicnet): helix 3-D, MapNet 3→512→64 (1×8×8), decoder 128
    # channels; Adam 1e-3, StepLR(2000, 0.5), 1 random frame per step, 10k steps. A GPU setting.
    "tddip": {"manifold": "helix", "cycles": 13, "mapnet": {"hidden": [512]}, "code_channels": 1,
              "net": {"name": "tddip", "channels": 128, "blocks": 1},
              "fit": {"steps": 10000, "batch": 1, "lr": 1e-3, "lr_step": 2000, "lr_gamma": 0.5, "ema": 0.9}},
    # The CPU reduced setting of the benchmarks: the same design at 64 channels (4× fewer FLOPs) and
    # 3000 steps; a circle manifold because a binned cine is one periodic cardiac cycle.
    "tddip-cpu": {"manifold": "circle", "cycles": 1, "mapnet": {"hidden": [512]}, "code_channels": 1,
                  "net": {"name": "tddip", "channels": 64, "blocks": 1},
                  "fit": {"steps": 3000, "batch": 1, "lr": 1e-3, "lr_step": 1000, "lr_gamma": 0.5, "ema": 0.9}},
}


def build_tddip(frames: int, hw: tuple[int, int], *, preset: str | dict = "tddip", manifold_kind: str | None = None,
                cycles: float | None = None, coords=None, seed: int = 0) -> TimeDIP:
    """The TDDIP parameterization for ``frames`` frames of size ``hw`` from a preset (name or dict);
    ``manifold_kind``/``cycles``/``coords`` override the preset's manifold. Seeded weights."""
    p = resolve_tddip_preset(preset)
    kind = manifold_kind or p["manifold"]
    pts = manifold(kind, frames, cycles=cycles if cycles is not None else p.get("cycles", 1), coords=coords)
    spec = dict(p["net"])
    name = spec.pop("name")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        in_ch = p.get("code_channels", 1)
        decoder_code = name in ("conv_decoder", "deep_decoder")
        net = build_net(name, in_ch, 2, **({**spec, "need_sigmoid": False} if decoder_code else spec))
        code_hw = net.code_size(*hw)
        mapnet = MapNet(pts.shape[1], (net.in_channels, *code_hw), hidden=p["mapnet"].get("hidden", [512]))
    return TimeDIP(pts, mapnet, net, hw)


def resolve_tddip_preset(preset: str | dict) -> dict:
    if isinstance(preset, dict):
        return copy.deepcopy(preset)
    try:
        return copy.deepcopy(TDDIP_PRESETS[preset])
    except KeyError:
        raise ConfigError(f"unknown TDDIP preset {preset!r}; choose one of {', '.join(TDDIP_PRESETS)}") from None


def _zero_filled(data: MRIData) -> Tensor:
    from .methods import _weighted  # radial: density-compensated, as the zero-filled method

    op, y = _weighted(data)
    return op.adjoint(y)


def _radial_weights(data: MRIData, dcf: bool) -> Tensor:
    from .nufft import pipe_dcf

    t, _, k = data.kspace.shape
    return pipe_dcf(data.traj, data.shape) if dcf else torch.ones(t, k)


def split_kspace(data: MRIData, fraction: float, seed: int = 0, dcf: bool = False):
    """Hold out a seeded ``fraction`` of the acquired k-space samples for self-validation.

    Returns ``(train_op, y_train, val_op, y_val, count)``: complex-image operators on the training
    and held-out samples, their data, and the number of held-out samples. Cartesian: points of the
    mask; radial: samples of the trajectory (0/1 sample weights; ``dcf`` density-compensates both, so
    that the held-out loss weighs all spatial frequencies as the image error does, not mostly the
    over-sampled centre).
    """
    from ..fit.stopping import holdout_split

    if data.radial:
        from .nufft import Weighted

        op = data.operator
        t, c, k = data.kspace.shape
        tr, va = holdout_split(torch.ones(t, k), fraction, seed=seed)
        w = _radial_weights(data, dcf)
        tr_op, va_op = Weighted(op, tr * w), Weighted(op, va * w)
        return tr_op, tr_op.sw * data.kspace, va_op, va_op.sw * data.kspace, float(va.sum()) * c
    tr, va = holdout_split(data.mask, fraction, seed=seed)
    tr_op, va_op = CartesianSENSE(tr, data.maps), CartesianSENSE(va, data.maps)
    return tr_op, data.kspace * tr[:, None], va_op, data.kspace * va[:, None], float(va.sum()) * data.kspace.shape[1]


class MRIOracle(Callback):
    """Diagnostic only (never steers the fit): magnitude PSNR of the iterate (and its EMA) against a
    reference every ``every`` iterations, as :func:`~deepprior.mri.metrics.mri_metrics` computes it
    (data range = max |reference|). ``to_image`` maps the fit's output to the complex series."""

    def __init__(self, ref: Tensor, to_image, every: int = 1):
        self.ref, self.to_image, self.every = ref.detach(), to_image, every
        self.iters: list[int] = []
        self.psnr: list[float] = []
        self.psnr_ema: list[float] = []
        self.best_psnr, self.best_iter, self.best = -math.inf, None, None

    def _psnr(self, x: Tensor) -> float:
        return mri_psnr(self.to_image(x), self.ref)

    def on_step_end(self, state: FitState) -> None:
        if (state.it + 1) % self.every:
            return
        with torch.no_grad():
            p = self._psnr(state.x)
            pe = self._psnr(state.ema) if state.ema is not None else p
        self.iters.append(state.it)
        self.psnr.append(p)
        self.psnr_ema.append(pe)
        delivered = pe if state.ema is not None else p
        if delivered > self.best_psnr:
            self.best_psnr, self.best_iter = delivered, state.it
            self.best = (state.ema if state.ema is not None else state.x).clone()


def tddip(data: MRIData, *, preset: str | dict = "tddip", steps: int | None = None, batch: int | None = None,
          manifold_kind: str | None = None, cycles: float | None = None, coords=None, stop: str = "holdout",
          holdout: float = 0.05, patience: int | None = None, dcf: bool = True, seed: int = 0, callbacks=(), ref: Tensor | None = None,
          device: str | torch.device = "cpu", checkpoint=None, checkpoint_every: int = 0, resume=None,
          **fit_overrides) -> tuple[Tensor, dict]:
    """Reconstruct a dynamic series with TDDIP. Returns the complex series ``(T, H, W)`` and an info dict
    (steps, sweeps, seconds, the stopped/selected sweep, loss curves and — with ``ref`` — the oracle
    PSNR curve and its best sweep, as diagnostics).

    ``stop``: ``'holdout'`` (hold out ``holdout`` of the acquired samples, stop when their loss has not
    improved for ``patience`` sweeps and deliver that iterate), ``'wmv'`` (ES-WMV on the outputs) or
    ``'none'`` (run all ``steps``). ``steps`` counts optimizer steps of ``batch`` frames, as the reference.
    ``checkpoint``/``checkpoint_every``/``resume`` as in :func:`~deepprior.fit.fit` (counted in sweeps).

    >>> import torch
    >>> from deepprior.mri.data import simulate
    >>> d = simulate(torch.rand(4, 16, 16), coils=2, accel=2, center=4, seed=0)
    >>> p = {**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [16]}}
    >>> x, info = tddip(d, preset=p, steps=8, stop="none")
    >>> tuple(x.shape), info["sweeps"]
    ((4, 16, 16), 2)
    """
    from ..fit.stopping import Holdout, WindowedVariance

    if stop not in ("holdout", "wmv", "none"):
        raise ConfigError(f"unknown stop rule {stop!r} for TDDIP; choose holdout, wmv or none")
    p = resolve_tddip_preset(preset)
    fcfg = dict(p["fit"])
    t_frames = data.frames
    preset_batch, preset_steps = fcfg.pop("batch", 1), fcfg.pop("steps")
    b = batch if batch is not None else preset_batch
    b = None if b is None or b >= t_frames else int(b)
    per_sweep = 1 if b is None else math.ceil(t_frames / b)
    n_steps = steps if steps is not None else preset_steps
    sweeps = max(1, math.ceil(n_steps / per_sweep))
    lr_step = max(1, round(fcfg.pop("lr_step", 2000) / per_sweep))
    dev = torch.device(device)
    param = build_tddip(t_frames, data.shape, preset=p, manifold_kind=manifold_kind, cycles=cycles, coords=coords,
                        seed=seed).to(dev)
    c2c = ChannelsToComplex(frames=t_frames)
    if stop == "holdout":
        tr_op, y_tr, va_op, y_va, count = split_kspace(data, holdout, seed=seed + 11, dcf=dcf)
    elif data.radial:
        from .nufft import Weighted

        tr_op = Weighted(data.operator, _radial_weights(data, dcf))
        y_tr = tr_op.sw * data.kspace
    else:
        tr_op, y_tr = data.operator, data.kspace
    # ConvDecoder's scaling: bring the k-space to the untrained network's output scale, measured on the
    # zero-filled image (density-compensated for radial data, whose plain adjoint overweights the centre).
    with torch.no_grad():
        x0 = render(param, b)
        scale = float(torch.linalg.vector_norm(x0) / torch.linalg.vector_norm(_zero_filled(data)))
    to_image = lambda x: c2c(x) / scale  # noqa: E731

    cbs = list(callbacks)
    stopper = None
    if stop == "holdout":
        # scored on the EMA of the sweeps: smoother than single sweeps, and it is what is delivered
        stopper = Holdout((va_op @ c2c).to(dev), (y_va * scale).to(dev), every=1, patience=patience or 15, count=count,
                          source="ema")
    elif stop == "wmv":
        stopper = WindowedVariance(window=min(20, max(2, sweeps // 5)), patience=patience or 15)
    if stopper is not None:
        cbs.insert(0, stopper)
    oracle = MRIOracle(ref, to_image) if ref is not None else None
    if oracle is not None:
        cbs.append(oracle)
    cfg = FitConfig(iters=sweeps, lr_schedule="step", lr_step=lr_step, batch=b, batch_seed=seed, backtrack=True,
                    backtrack_every=max(1, min(100, sweeps // 10)), **fcfg)
    cfg = cfg.replace(**{k: v for k, v in fit_overrides.items() if v is not None})
    t0 = time.perf_counter()
    res = fit(param, (tr_op @ c2c).to(dev), (y_tr * scale).to(dev), cfg, callbacks=cbs, checkpoint=checkpoint,
              checkpoint_every=checkpoint_every, resume=resume)
    seconds = time.perf_counter() - t0
    x = to_image(res.output).detach().cpu()
    info = {"method": "tddip", "steps": res.iters_run * per_sweep, "sweeps": res.iters_run, "batch": b or t_frames,
            "seconds": seconds, "scale": scale, "stop": stop, "selected_sweep": res.selected_iter,
            "loss": res.history["data"], "backtracks": res.backtracks,
            "params": sum(q.numel() for q in param.parameters())}
    if stopper is not None:
        info["stop_scores"], info["stop_iters"], info["fired_at"] = stopper.scores, stopper.iters, stopper.fired_at
    if oracle is not None:
        info.update(oracle_iters=oracle.iters, oracle_psnr=oracle.psnr_ema, oracle_best_sweep=oracle.best_iter,
                    oracle_best_psnr=oracle.best_psnr)
    return x, info
