"""Parameter-map reconstruction by name: per-contrast reconstruction + pixel-wise fit (``zf-fit``, ``fit`` =
CG-SENSE, ``lps-fit`` = L+S over the contrasts), the classical model-based reconstruction (``model-tv``: the
maps themselves are the unknowns, TV on the maps, L-BFGS) and the untrained prior on the maps (``dip``). The
model-based methods are (operator, parameterization, loss, callbacks) for the one fit loop: the operator is
:class:`MapForward` (maps → signal model → per-contrast SENSE), the parameterization pixels or a generator.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ...errors import ConfigError, InputError
from ...fit import FitConfig, FitInterrupted, fit, resolve_device
from ...fit.stopping import Holdout
from ...operators.base import Identity, Operator
from ...params import Pixels
from ...presets import resolve
from ...regularizers import TV
from ..common import split_kspace, support
from ..methods import MRIResult, reconstruct
from .data import MapData, map_metrics
from .models import SignalModel
from .pixelfit import loglinear_fit, nlls_fit

METHODS = ("zf-fit", "fit", "lps-fit", "model-tv", "dip")
FITS = ("nlls", "loglin")
# model-tv's weight on the TV of the maps (M0 on the data's unit scale, relaxation times in units of their
# mid-range), tuned on T2 mapping at R = 4 (bench/mapping.py --tune) and reused at every other setting.
MODEL_TV_WEIGHT = 1e-4
MODEL_TV_RATIO = 0.1  # the relaxation maps' TV weight relative to M0's
MODEL_TV_ITERS, MODEL_TV_LR = 600, 0.01
INIT_STEPS = 500  # dip's image-domain steps towards a classical start (init=)
# CG-SENSE per contrast: iterations (early stopping is its regulariser), tuned on T2 R = 4 like the TV weight.
CG_ITERS = 10
# L+S over the contrasts (low rank: the decay curves span few dimensions; sparse: their Fourier transform along
# the contrasts), relative thresholds tuned on T2 R = 4.
LPS_LAMBDAS = (0.003, 0.001)


class MapForward(Operator):
    """Channels ``(1, 2+P, H, W)`` (M0 real, imag, one raw map per model parameter) → bounded maps → the
    model's ``K`` contrasts → ``op`` (a per-contrast complex-image operator, e.g. the SENSE of each contrast)."""

    def __init__(self, model: SignalModel, op: nn.Module, gain: float = 1.0):
        super().__init__()
        self.model, self.op, self.gain = model, op, gain

    def maps(self, x: Tensor) -> dict[str, Tensor]:
        out = self.model.bounded(x[0, 2:])
        out["M0"] = torch.complex(x[0, 0], x[0, 1])
        return out

    def contrasts(self, x: Tensor) -> Tensor:
        m = self.maps(x)
        return self.model(m.pop("M0"), m)

    def forward(self, x: Tensor) -> Tensor:
        out = self.op(self.contrasts(x))
        return out * self.gain if self.gain != 1.0 else out


@contextmanager
def maps_on_interrupt(fwd: MapForward, scale: float):
    """Ctrl-C in a map fit: the :class:`~deepprior.fit.FitInterrupted` carries ``maps``, the maps reached so far
    (M0 on the data's scale), so that the command can write them."""
    try:
        yield
    except FitInterrupted as e:
        with torch.no_grad():
            e.maps = {k: v.detach().cpu() for k, v in fwd.maps(e.result.output).items()}
            e.maps["M0"] = e.maps["M0"] / scale
        raise


class MapTV(nn.Module):
    """Isotropic TV of the maps: M0 (complex) plus each relaxation map over its mid-range value, inside the
    support."""

    def __init__(self, fwd: MapForward, where: Tensor, ratio: float = 1.0):
        super().__init__()
        self.fwd, self.where, self.ratio, self.tv = fwd, where, ratio, TV("iso")

    def forward(self, x: Tensor) -> Tensor:
        m = self.fwd.maps(x)
        total = self.tv((m.pop("M0") * self.where)[None, None])
        for p in self.fwd.model.params:
            total = total + self.ratio * self.tv((m[p.name] / p.mid() * self.where)[None, None])
        return total


@dataclass
class MapResult(MRIResult):
    """An :class:`~deepprior.mri.methods.MRIResult` whose ``image`` is the contrasts the maps predict (or the
    per-contrast reconstruction the pixel fit started from), plus ``maps``: {"M0": complex (H, W), "T2"/"T1"/…:
    (H, W) in their units}; ``metrics`` are the maps' errors against the truth (:func:`.data.map_metrics`)."""

    maps: dict = field(default_factory=dict)

    def summary(self) -> str:
        """``T2 NRMSE <x> M0 PSNR <y> dB`` (the tail of the command's last line), or '' without a truth."""
        parts = [f"{k} {v:.4f}" for k, v in self.metrics.items() if k.endswith("NRMSE")]
        if "M0 PSNR" in self.metrics:
            parts.append(f"M0 PSNR {self.metrics['M0 PSNR']:.2f} dB")
        return " ".join(parts)


def _pixel_fit(images: Tensor, model: SignalModel, where: Tensor, how: str) -> dict[str, Tensor]:
    if how not in FITS:
        raise ConfigError(f"unknown pixel fit {how!r}; choose one of {', '.join(FITS)}")
    return loglinear_fit(images, model, where) if how == "loglin" else nlls_fit(images, model, where)


def _signal_support(md: MapData, images: Tensor) -> Tensor:
    """Pixels worth fitting: inside the coil support and above 5 % of the first contrast's 99th percentile."""
    mag = images[0].abs().cpu()
    level = torch.quantile(mag.flatten(), 0.99)
    return (mag > 0.05 * level) & (support(md.data).cpu() > 0)


def reconstruct_map(md: MapData, method: str = "fit", *, fit_kind: str = "nlls", iters: int | None = None,
                    seed: int = 0, device="auto", weight: float | None = None, preset=None, stop: str | None = None,
                    holdout: float = 0.05, patience: int | None = None, lr: float | None = None,
                    tv_weight: float = 0.0, init: str | None = None, callbacks=()) -> MapResult:
    """Estimate the parameter maps of ``md`` with ``method`` (:data:`METHODS`) and score them against the truth.

    ``fit_kind`` chooses the pixel fit of the ``*-fit`` methods and of the start of ``model-tv`` (``nlls`` or
    ``loglin``); ``weight`` is model-tv's TV weight; ``preset``/``stop``/``holdout``/``patience``/``lr`` the DIP's
    (default ``map-skip``, stopping on 5 % held-out k-space); ``tv_weight`` adds model-tv's TV to the DIP (DIP-TV);
    ``init`` ('fit' or 'model-tv') first fits the generator to that method's maps for ``INIT_STEPS`` steps.

    >>> from deepprior.mri.mapping.models import T2Decay
    >>> from deepprior.mri.mapping.data import simulate_map
    >>> from deepprior.mri.mapping.phantom import brain_phantom
    >>> md = simulate_map(T2Decay([10, 30, 50]), brain_phantom(32), coils=2, accel=2, center=4, seed=0)
    >>> r = reconstruct_map(md, "fit", device="cpu")
    >>> sorted(r.maps), r.metrics["T2 NRMSE"] < 0.5
    (['M0', 'T2'], True)
    """
    if method not in METHODS:
        raise ConfigError(f"unknown mapping method {method!r}; choose one of {', '.join(METHODS)}")
    dev = resolve_device(device)
    t0 = time.perf_counter()
    info: dict = {"method": method, "device": str(dev)}
    history, n, selected = {}, None, None
    if method != "dip":
        maps, images, history, n, where = _classical(md, method, fit_kind, weight, iters, dev, callbacks)
        info.update(fit=fit_kind, weight=(MODEL_TV_WEIGHT if weight is None else weight) if method == "model-tv" else None)
    else:
        maps, images, history, n, selected, extra = _dip(md, dev, preset=preset, seed=seed, iters=iters, stop=stop,
                                                         holdout=holdout, patience=patience, callbacks=callbacks,
                                                         lr=lr, tv_weight=tv_weight, init=init)
        info.update(extra)
    maps = {k: v.detach().cpu() for k, v in maps.items()}
    seconds = time.perf_counter() - t0
    return MapResult(images.detach().cpu(), method, seconds, n, selected, history, map_metrics(maps, md), info,
                     maps=maps)


def _classical(md: MapData, method: str, fit_kind: str, weight, iters, dev, callbacks=()):
    """A per-contrast reconstruction + pixel fit (``*-fit``), refined by the model-based TV fit (``model-tv``)."""
    base = {"zf-fit": "zerofill", "fit": "cgsense", "lps-fit": "lps", "model-tv": "cgsense"}[method]
    extra = dict(zip(("lambda_l", "lambda_s"), LPS_LAMBDAS)) if base == "lps" else {}
    r = reconstruct(md.data, base, iters=CG_ITERS if base == "cgsense" else None, device=dev, ref=None, **extra)
    where = _signal_support(md, r.image)
    maps = _pixel_fit(r.image, md.model, where, fit_kind)
    if method != "model-tv":
        return maps, r.image, {}, r.iters, where
    maps, images, history, n = _model_tv(md, maps, where, weight, iters, dev, callbacks=callbacks)
    return maps, images, history, n, where


def _data_scale(md: MapData, dev) -> float:
    """1 / the 99th percentile of the first contrast's CG-SENSE magnitude: M0 of order 1 for the fits."""
    r = reconstruct(md.data.frame(0), "cgsense", iters=CG_ITERS, device=dev, ref=None)
    return 1.0 / max(float(torch.quantile(r.image.abs().flatten(), 0.99)), 1e-12)


def _model_tv(md: MapData, start: dict, where: Tensor, weight, iters, dev, ratio=None, callbacks=()):
    """Maps as pixels, TV on the maps, Adam through the fit loop from the pixel fit's maps."""
    lam = MODEL_TV_WEIGHT if weight is None else float(weight)
    if lam < 0:
        raise ConfigError(f"the TV weight must be ≥ 0, got {lam}")
    s = _data_scale(md, dev)
    d = md.data.to(dev)
    model = md.model.to(dev)
    x0 = torch.cat([torch.stack([start["M0"].real * s, start["M0"].imag * s]),
                    model.raw({k: v.clamp(min=1e-6) for k, v in start.items() if k != "M0"})])[None].to(dev)
    # A k-space misfit averaged over 10⁶ samples is tiny in absolute terms (below Adam's ε in the squared
    # gradients, below L-BFGS's curvature threshold): both sides carry a gain that makes the measured data's mean
    # square 1, and the TV weight the same gain², which leaves the minimiser unchanged.
    y = d.kspace * s
    gain = 1.0 / max(float(y.abs().square().mean().sqrt()), 1e-30)
    fwd = MapForward(model, d.operator, gain=gain)
    y = y * gain
    cfg = FitConfig(iters=iters or MODEL_TV_ITERS, lr=MODEL_TV_LR, ema=None, backtrack=False,
                    reg_weight=lam * gain**2 if lam else 0.0)
    reg = MapTV(fwd, where.to(dev).float(), MODEL_TV_RATIO if ratio is None else ratio) if lam else None
    with maps_on_interrupt(fwd, s):
        res = fit(Pixels(x0), fwd, y, cfg, regularizer=reg, callbacks=callbacks)
    x = res.output
    maps = fwd.maps(x)
    maps["M0"] = maps["M0"] / s
    return maps, fwd.contrasts(x) / s, res.history, res.iters_run


def build_map_dip(preset: dict, model: SignalModel, hw: tuple[int, int], seed: int = 0):
    """The generator of the maps (2 + P linear output channels) and its code, seeded."""
    from ...nets import build_net, make_code
    from ...params import DIP

    spec = dict(preset["net"])
    name = spec.pop("name")
    out = 2 + len(model.params)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_net(name, preset["code"].get("channels"), out, out_hw=hw, **spec)
    z = make_code(preset["code"]["kind"], net.in_channels, net.code_size(*hw), scale=preset["code"].get("scale", 0.1),
                  generator=torch.Generator().manual_seed(seed + 1))
    return DIP(net, z, hw, preset.get("reg_noise_std", 0.0), generator=torch.Generator().manual_seed(seed + 2))


def _cg_images(md: MapData, dev) -> Tensor:
    """Every contrast's CG-SENSE image (where the maps are worth a TV penalty: :func:`_signal_support`)."""
    return reconstruct(md.data, "cgsense", iters=CG_ITERS, device=dev, ref=None).image


def _dip(md: MapData, dev, *, preset, seed, iters, stop, holdout, patience, callbacks, lr=None, tv_weight=0.0,
         init=None):
    if init not in (None, "fit", "model-tv"):
        raise ConfigError(f"init must be 'fit' or 'model-tv' (a classical start for the generator), got {init!r}")
    name, p = resolve(preset, "mapping")
    stop = stop or (p.get("stop") or {}).get("rule", "none")
    patience = patience or (p.get("stop") or {}).get("patience", 300)
    s = _data_scale(md, dev)
    d = md.data.to(dev)
    model = md.model.to(dev)
    param = build_map_dip(p, model, d.shape, seed).to(dev)
    cbs = list(callbacks)
    if stop == "holdout":
        tr_op, y_tr, va_op, y_va, count = split_kspace(d, holdout, seed=seed + 11)
        fwd = MapForward(model, tr_op)
        y = y_tr * s
        cbs.insert(0, Holdout(MapForward(model, va_op), y_va * s, every=10, patience=patience, count=count, source="ema"))
    elif stop == "none":
        fwd, y = MapForward(model, d.operator), d.kspace * s
    else:
        raise InputError(f"unknown stop rule {stop!r} for mapping DIP; choose holdout or none")
    cfg = FitConfig().replace(**{**p["fit"], **({"iters": iters} if iters else {}), **({"lr": lr} if lr else {})})
    reg = None
    if tv_weight:
        # DIP-TV on the maps: the same TV as model-tv's, on the same scale (gain² cancels with the mean loss)
        gain = 1.0 / max(float(y.abs().square().mean().sqrt()), 1e-30)
        fwd.gain = gain
        y = y * gain
        for cb in cbs:
            if isinstance(cb, Holdout):
                cb.val_op.gain = gain
                cb.y_val = cb.y_val * gain
        where = _signal_support(md, _cg_images(md, dev)).to(dev).float()
        reg = MapTV(fwd, where, MODEL_TV_RATIO)
        cfg = cfg.replace(reg_weight=tv_weight * gain**2)
    if init:
        # a classical start: the generator first learns to output those maps (image domain, cheap), then the
        # k-space fit goes on from there
        start, _, _, _, where = _classical(md, init, "nlls", None, None, dev)
        target = torch.cat([torch.stack([start["M0"].real, start["M0"].imag]) * s,
                            model.raw({k: v.clamp(min=1e-6) for k, v in start.items() if k != "M0"}).cpu() * where])
        fit(param, Identity(), target[None].to(dev), FitConfig(iters=INIT_STEPS, lr=cfg.lr, ema=None, backtrack=False))
    with maps_on_interrupt(fwd, s):
        res = fit(param, fwd, y, cfg, regularizer=reg, callbacks=cbs)
    x = res.output
    maps = fwd.maps(x)
    maps["M0"] = maps["M0"] / s
    extra = {"preset": name, "stop": stop, "scale": s, "backtracks": res.backtracks, "init": init}
    return maps, fwd.contrasts(x) / s, res.history, res.iters_run, res.selected_iter, extra
