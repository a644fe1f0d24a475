"""Mapping data: the contrast series' k-space (an :class:`~deepprior.mri.data.MRIData` whose frames are the
echoes / inversions / flip angles, each with its own sampling), its signal model, and the truth when simulated.

Files are deepprior's MRI HDF5 (``mri recon`` reads them as a series) plus a ``mapping`` group: the model and
its contrast values as attributes, and the true maps (``m0`` complex, ``t1``/``t2`` in ms, ``labels``, ``b1``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError
from ..coils import birdcage_maps
from ..data import MRIData, add_noise, central_kspace, resample_maps, smooth_phase
from ..operators import CartesianSENSE
from ..sampling import cartesian_mask
from .models import SignalModel, build_model
from .phantom import TissueMaps, brain_phantom


@dataclass
class MapData:
    """``data``: k-space of the K contrasts ``(K, C, H, W)`` (or radial); ``model``: the signal model;
    ``truth``: the true maps on the reconstruction grid (None for measured data); ``m0``: the true complex M0
    on the scale of ``data`` (None for measured data)."""

    data: MRIData
    model: SignalModel
    truth: TissueMaps | None = None
    m0: Tensor | None = None

    def __post_init__(self):
        if self.data.frames != self.model.contrasts:
            raise InputError(f"the data hold {self.data.frames} contrasts but the {self.model.name} model has "
                             f"{self.model.contrasts} {self.model.axis_name} values {self.model.axis}; give one value per contrast")


def signal_axis(model: str, *, echoes: int = 8, te: float = 10.0, esp: float = 10.0, tes=None, tis=None,
                fas=None) -> list[float]:
    """The contrast values of a protocol: T2 echoes ``te, te+esp, …`` (or ``tes``); IR ``tis`` (default 8 inversion
    times 100…3000 ms); VFA ``fas`` (default 2, 5, 10, 15, 20 degrees).

    >>> signal_axis("t2", echoes=3)
    [10.0, 20.0, 30.0]
    """
    if model == "t2":
        if tes:
            return [float(t) for t in tes]
        if echoes < 2:
            raise InputError(f"T2 mapping needs at least 2 echoes, got {echoes}")
        return [float(te + i * esp) for i in range(echoes)]
    if model == "ir":
        return [float(t) for t in (tis or (100, 200, 400, 700, 1000, 1500, 2200, 3000))]
    if model == "vfa":
        return [float(a) for a in (fas or (2, 5, 10, 15, 20))]
    raise InputError(f"unknown model {model!r}")


def simulate_map(model: SignalModel, phantom: TissueMaps | None = None, *, coils: int = 8, pattern: str = "kt-random",
                 accel: float = 8, center: int = 8, snr_db: float | None = 30.0, seed: int = 0,
                 spokes: int | None = None, oversample: int = 1, render=None, coil_maps: Tensor | None = None,
                 phase: bool = True) -> MapData:
    """Multi-coil undersampled k-space of the contrasts ``model`` makes from ``phantom`` (default: the built-in
    brain at 128²). Each contrast has its own seeded sampling (k-t undersampling: the contrasts are the "time"
    axis). The complex M0 is PD × a smooth phase, scaled so that the brightest contrast image peaks at 1; noise
    as in ``mri simulate`` (``snr_db`` over the sampled points). ``oversample=f`` renders the object with
    ``render(f·H, f·W)`` (the phantom's own renderer) on an f× finer grid and keeps the central k-space, so the
    data are not band-limited to the reconstruction grid (Cartesian only).

    >>> from deepprior.mri.mapping.models import T2Decay
    >>> d = simulate_map(T2Decay([10, 20, 30]), brain_phantom(32), coils=2, accel=2, center=4)
    >>> tuple(d.data.kspace.shape), round(d.data.acceleration)
    ((3, 2, 32, 32), 2)
    """
    if phantom is None:
        ph = brain_phantom(128, seed=seed)
        render = render or (lambda fh, fw: brain_phantom(fh, fw, seed=seed))
    else:
        ph = phantom
    h, w = ph.pd.shape
    if getattr(model, "b1", None) is not None and tuple(model.b1.shape) != (h, w):
        raise InputError(f"the B1 map is {tuple(model.b1.shape)} but the phantom is {(h, w)}")
    phi = smooth_phase(h, w, seed).float() if phase else torch.zeros(h, w)
    m0 = ph.pd * torch.exp(1j * phi)

    def contrasts(tm: TissueMaps, ph_map: Tensor, b1: Tensor | None) -> Tensor:
        mdl = model if b1 is None else build_model(model.name, model.axis, tr=model.tr, b1=b1)
        mm = tm.pd * torch.exp(1j * ph_map)
        return mdl(mm.to(torch.complex64), {"T2": tm.t2, "T1": tm.t1, "eff": torch.ones_like(tm.pd)})

    imgs = contrasts(ph, phi, None)
    scale = float(imgs.abs().max())
    if scale == 0:
        raise InputError("the phantom has no signal (pd is zero everywhere)")
    if coil_maps is not None:
        maps = resample_maps(coil_maps, h, w)
        coils = maps.shape[0]
    else:
        maps = birdcage_maps(coils, h, w) if coils > 1 else None
    k_count = model.contrasts
    if spokes is not None:
        pattern = "radial"
    fine_k = None
    if oversample != 1:
        if pattern == "radial" or render is None or int(oversample) != oversample or oversample < 1:
            raise InputError("oversample needs Cartesian sampling and an analytic phantom (built-in or mrphantom); "
                             f"got oversample={oversample}, pattern={pattern}")
        f = int(oversample)
        fine = render(f * h, f * w)
        fphi = smooth_phase(f * h, f * w, seed).float() if phase else torch.zeros(f * h, f * w)
        fb1 = fine.b1 if getattr(model, "b1", None) is not None else None
        _, fine_k = central_kspace(contrasts(fine, fphi, fb1) / scale, maps, h, w)
    imgs = (imgs / scale).to(torch.complex64)
    if pattern == "radial":
        from ..nufft import RadialSENSE
        from ..sampling import golden_angle_radial

        traj = golden_angle_radial(k_count, spokes or 13, max(h, w), oversampling=2)
        k = RadialSENSE(traj, maps, shape=(h, w))(imgs)
        k = add_noise(k, torch.ones_like(k.real), snr_db, seed)
        meta = {"spokes": spokes or 13, "oversampling": 2}
        data = MRIData(k, None, maps, imgs, meta, traj=traj, shape=(h, w))
    else:
        mask = cartesian_mask(k_count, h, w, accel=accel, center=center, pattern=pattern, seed=seed)
        k = CartesianSENSE(mask, maps)(imgs) if fine_k is None else fine_k * mask[:, None]
        k = add_noise(k, mask[:, None], snr_db, seed)
        data = MRIData(k, mask, maps, imgs, {})
    data.meta.update({"coils": coils, "pattern": pattern, "accel_nominal": accel, "center": center,
                      "snr_db": snr_db, "oversample": oversample, "seed": seed, "phase": phase,
                      "quantitative": model.describe()})
    return MapData(data, model, ph, (m0 / scale).to(torch.complex64))


def save_map_data(path, md: MapData, overwrite: bool = False) -> None:
    """Write :class:`MapData` (see the module docstring)."""
    from ..io import save_data

    group = {"attrs": {"model": md.model.describe(), "tissues": md.truth.names if md.truth else []}}
    if md.truth is not None:
        t = md.truth
        group.update(t1=t.t1.numpy(), t2=t.t2.numpy(), pd=t.pd.numpy(), labels=t.labels.numpy(), b1=t.b1.numpy())
    if md.m0 is not None:
        group["m0"] = md.m0.numpy()
    save_data(path, md.data, overwrite=overwrite, groups={"mapping": group})


def load_map_data(path, *, model: str | None = None, axis=None, tr: float | None = None, b1=None) -> MapData:
    """Read a mapping file (or any deepprior/fastMRI/raw k-space series with ``model`` and ``axis`` given).
    ``model``/``axis`` given for a simulated file must agree with it."""
    import h5py

    from ..io import load_data

    path = Path(path)
    data = load_data(path)
    stored, truth, m0 = {}, None, None
    if path.suffix in (".h5", ".hdf5"):
        with h5py.File(path, "r") as f:
            if "mapping" in f:
                g = f["mapping"]
                stored = json.loads(g.attrs["model"])
                names = json.loads(g.attrs.get("tissues", "[]"))
                get = lambda k: torch.from_numpy(np.asarray(g[k])) if k in g else None  # noqa: E731
                if "t2" in g:
                    truth = TissueMaps(get("pd"), get("t1"), get("t2"), get("labels"), names, get("b1"))
                m0 = get("m0")
    if stored:
        if model is not None and model != stored["model"]:
            raise InputError(f"{path} was acquired for the {stored['model']} model, not {model}")
        key = {"t2": "te", "ir": "ti", "vfa": "fa"}[stored["model"]]
        if axis is not None and (len(axis) != len(stored[key]) or not np.allclose(axis, stored[key])):
            raise InputError(f"{path} stores {key.upper()} = {stored[key]}, which differs from the given {list(axis)}")
        model, axis, tr = stored["model"], stored[key], stored.get("tr", tr)
        if b1 is None and stored["model"] == "vfa" and truth is not None:
            b1 = truth.b1
    elif model is None or axis is None:
        raise InputError(f"{path} has no stored protocol; give the model and its contrast values "
                         "(--model t2 --tes 10,20,…; --model ir --tis …; --model vfa --fas … --tr …)")
    mdl = build_model(model, axis, tr=tr, b1=b1, magnitude=bool(stored.get("magnitude", False)))
    return MapData(data, mdl, truth, m0)


def nrmse(x: Tensor, ref: Tensor, where: Tensor) -> float:
    """‖x − ref‖ / ‖ref‖ over the pixels ``where``.

    >>> nrmse(torch.tensor([1.1, 2.0]), torch.tensor([1.0, 2.0]), torch.tensor([True, True]))  # doctest: +ELLIPSIS
    0.0447...
    """
    d, r = x[where].double(), ref[where].double()
    return float(torch.linalg.vector_norm(d - r) / torch.linalg.vector_norm(r).clamp(min=1e-30))


def map_metrics(maps: dict[str, Tensor], md: MapData) -> dict:
    """Errors of estimated maps against the stored truth: for each relaxation map, NRMSE inside the measurable
    tissue mask (``<map> NRMSE``), the median relative error (bias) per tissue, CSF's NRMSE apart; ``M0 PSNR``
    (magnitude, on the truth's peak) inside the head."""
    if md.truth is None:
        return {}
    t = md.truth
    out: dict = {}
    where = t.measurable()
    for name in ("T2", "T1"):
        if name not in maps or (md.model.name == "t2") != (name == "T2"):
            continue
        ref = t.t2 if name == "T2" else t.t1
        est = maps[name].float().cpu()
        out[f"{name} NRMSE"] = nrmse(est, ref, where)
        bias = {}
        for tissue in t.names:
            m = t.named(tissue)
            if tissue in ("background", "bone") or m.sum() < 4:
                continue
            bias[tissue] = float(((est[m] - ref[m]) / ref[m]).median())
        out[f"{name} bias"] = bias
        csf = t.named("CSF")
        if csf.sum() >= 4:
            out[f"{name} NRMSE CSF"] = nrmse(est, ref, csf)
    if md.m0 is not None and "M0" in maps:
        head = t.pd > 0.1 * float(t.pd.max())
        ref, est = md.m0.abs(), maps["M0"].abs().float().cpu()
        mse = float((est[head] - ref[head]).double().square().mean())
        out["M0 PSNR"] = math.inf if mse == 0 else 10 * math.log10(float(ref.max()) ** 2 / mse)
    return out
