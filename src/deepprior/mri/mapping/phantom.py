"""Known parameter maps to simulate from: a built-in analytic brain phantom, mrphantom's tissue phantom (the
optional ``deepprior[phantom]`` extra), or the user's own maps.

The built-in phantom is the default because it needs no compiler and renders at any resolution from the
same analytic description, which is what a simulation without the inverse crime needs (render the object on a
finer grid, keep the central k-space). mrphantom builds a C++/OpenMP extension at install time (g++ needed),
draws its random fields from NumPy's global generator and knows four body tissues (fat, myocardium, blood,
liver); it is offered, not required.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError

# Literature relaxation times at 3 T in ms (Stanisz et al., MRM 2005; Wansapura et al., JMRI 1999; fat as in
# mrphantom's table) and relative proton density. CSF's T2 lies far beyond an 80 ms echo train: it is reported on
# its own, never averaged into the tissue error.
TISSUES: dict[str, dict[str, float]] = {
    "background": {"PD": 0.0, "T1": 1000.0, "T2": 50.0},
    "scalp fat": {"PD": 0.9, "T1": 382.0, "T2": 68.0},
    "bone": {"PD": 0.05, "T1": 300.0, "T2": 10.0},
    "grey matter": {"PD": 0.8, "T1": 1820.0, "T2": 99.0},
    "white matter": {"PD": 0.69, "T1": 1084.0, "T2": 69.0},
    "deep grey matter": {"PD": 0.75, "T1": 1350.0, "T2": 60.0},
    "lesion": {"PD": 0.85, "T1": 1500.0, "T2": 140.0},
    "CSF": {"PD": 1.0, "T1": 4300.0, "T2": 1800.0},
}
MEASURABLE_T2_MS = 200.0  # tissues above this are not measurable with TE ≤ 80 ms and are reported apart

# (label, centre x, centre y, semi-axis x, semi-axis y, angle in degrees), painted in order on [-1, 1]².
_ELLIPSES = (
    ("scalp fat", 0.0, 0.0, 0.74, 0.94, 0),
    ("bone", 0.0, 0.0, 0.69, 0.89, 0),
    ("grey matter", 0.0, -0.01, 0.65, 0.85, 0),
    ("white matter", 0.0, -0.02, 0.53, 0.72, 0),
    ("grey matter", -0.3, 0.45, 0.1, 0.22, 25),
    ("grey matter", 0.32, -0.45, 0.09, 0.2, -20),
    ("deep grey matter", -0.24, 0.02, 0.09, 0.16, 10),
    ("deep grey matter", 0.24, 0.02, 0.09, 0.16, -10),
    ("CSF", -0.1, 0.05, 0.06, 0.3, 18),
    ("CSF", 0.1, 0.05, 0.06, 0.3, -18),
    ("lesion", 0.3, 0.35, 0.06, 0.05, 0),
    ("lesion", -0.35, -0.3, 0.045, 0.07, 30),
    ("lesion", 0.02, -0.5, 0.05, 0.04, 0),
)


@dataclass
class TissueMaps:
    """Maps on an ``(H, W)`` grid: ``pd`` (relative), ``t1``/``t2`` (ms), ``labels`` (index into ``names``),
    ``b1`` (relative flip angle; 1 = nominal)."""

    pd: Tensor
    t1: Tensor
    t2: Tensor
    labels: Tensor
    names: list[str]
    b1: Tensor

    def measurable(self) -> Tensor:
        """Tissue whose T2 a TE ≤ 80 ms protocol can measure: signal present and T2 < 200 ms, away from a
        tissue boundary (a pixel whose 3×3 neighbourhood holds one tissue), so that partial volume — which a
        finer-grid simulation puts at every edge — is not scored against a single-tissue truth."""
        inside = _uniform(self.labels)
        tissue = torch.tensor([n not in ("background", "bone", "CSF") for n in self.names])[self.labels]
        return inside & tissue & (self.t2 < MEASURABLE_T2_MS)

    def named(self, name: str) -> Tensor:
        """The interior pixels of tissue ``name``."""
        if name not in self.names:
            return torch.zeros_like(self.labels, dtype=torch.bool)
        return (self.labels == self.names.index(name)) & _uniform(self.labels)


def _uniform(labels: Tensor) -> Tensor:
    lab = labels[None, None].float()
    mx = torch.nn.functional.max_pool2d(lab, 3, 1, 1)
    mn = -torch.nn.functional.max_pool2d(-lab, 3, 1, 1)
    return (mx == mn)[0, 0]


def _smooth_field(h: int, w: int, seed: int, strength: float) -> Tensor:
    """A seeded low-order random field, 1 ± ``strength`` (tissue is not perfectly uniform)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(8, generator=g, dtype=torch.float64) * 2 - 1
    y = torch.linspace(-1, 1, h, dtype=torch.float64)[:, None]
    x = torch.linspace(-1, 1, w, dtype=torch.float64)[None, :]
    f = (c[0] * torch.sin(math.pi * (x + c[1])) + c[2] * torch.sin(math.pi * (y + c[3]))
         + c[4] * torch.cos(math.pi * (x * c[5] + y * c[6])) + c[7] * x * y) / 4
    return (1 + strength * f / f.abs().max().clamp(min=1e-12)).float()


def brain_phantom(h: int = 128, w: int | None = None, *, seed: int = 0, texture: float = 0.05) -> TissueMaps:
    """The built-in analytic brain slice at ``h × w``: scalp fat, bone, cortex, white matter, deep grey nuclei,
    ventricles (CSF) and three lesions, with 3 T literature T1/T2/PD (:data:`TISSUES`) varied smoothly by
    ±``texture`` within each tissue (seeded), and a smooth B1 field (0.85…1.15) for VFA.

    >>> m = brain_phantom(64)
    >>> tuple(m.t2.shape), m.names[int(m.labels[32, 32])]
    ((64, 64), 'white matter')
    """
    w = w or h
    if h < 8 or w < 8:
        raise InputError(f"the phantom needs at least 8×8 pixels, got {h}×{w}")
    yy = (torch.arange(h, dtype=torch.float64) + 0.5) / h * 2 - 1
    xx = (torch.arange(w, dtype=torch.float64) + 0.5) / w * 2 - 1
    y, x = yy[:, None], xx[None, :]
    names = list(TISSUES)
    labels = torch.zeros(h, w, dtype=torch.long)
    for name, cx, cy, ax, ay, deg in _ELLIPSES:
        a = math.radians(deg)
        u = (x - cx) * math.cos(a) + (y - cy) * math.sin(a)
        v = -(x - cx) * math.sin(a) + (y - cy) * math.cos(a)
        labels[(u / ax) ** 2 + (v / ay) ** 2 <= 1] = names.index(name)
    table = {k: torch.tensor([TISSUES[n][k] for n in names], dtype=torch.float32) for k in ("PD", "T1", "T2")}
    maps = {k: table[k][labels] for k in table}
    for i, k in enumerate(("PD", "T1", "T2")):
        maps[k] = maps[k] * _smooth_field(h, w, seed * 3 + i, texture)
    b1 = 1 + 0.15 * (_smooth_field(h, w, seed * 3 + 5, 1.0) - 1)
    return TissueMaps(maps["PD"], maps["T1"], maps["T2"], labels, names, b1)


def mrphantom_maps(h: int = 128, w: int | None = None, *, field: float = 3.0) -> TissueMaps:
    """mrphantom's tissue slice (fat, myocardium, blood, liver) at ``field`` tesla, if the extra is installed."""
    try:
        import mrphantom as mpt
    except ImportError:
        raise InputError("the mrphantom phantom needs the optional package: pip install 'deepprior[phantom]' "
                         "(it compiles a C++ extension: g++ is required)") from None
    w = w or h
    enum = np.asarray(mpt.genPhant((h, w)))
    get = lambda k: torch.from_numpy(np.asarray(mpt.Enum2Para(enum, field, k), dtype=np.float32))  # noqa: E731
    names = list(mpt.lstTissue)
    labels = torch.zeros(h, w, dtype=torch.long)
    for i, n in enumerate(names):
        labels[torch.from_numpy(enum == mpt.dictNmrPara[n]["enum"])] = i
    names = ["background" if n == "air" else n for n in names]
    t1 = get("T1") * 1000
    t1[~torch.isfinite(t1)] = 1000.0
    return TissueMaps(get("PD"), t1, get("T2") * 1000, labels, names, torch.ones(h, w))


def load_maps(path) -> TissueMaps:
    """User maps from ``.npz``/``.h5``/``.mat``: ``pd`` (or ``m0``), ``t2`` and/or ``t1`` in ms, optional
    ``labels`` (non-zero = tissue) and ``b1``. Missing T1 or T2 are set to 1000 / 80 ms (unused by the other model)."""
    from ...io import check_readable

    path = Path(path)
    check_readable(path, "parameter-map file")
    arrays: dict[str, np.ndarray] = {}
    try:
        if path.suffix == ".npz":
            with np.load(path) as f:
                arrays = {k.lower(): np.asarray(f[k]) for k in f.files}
        elif path.suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                arrays = {k.lower(): np.asarray(f[k]) for k in f.keys() if isinstance(f[k], h5py.Dataset)}
        elif path.suffix == ".mat":
            from scipy.io import loadmat

            arrays = {k.lower(): np.asarray(v) for k, v in loadmat(path).items() if not k.startswith("__")}
        else:
            raise InputError(f"{path}: parameter maps must be .npz, .h5 or .mat")
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"cannot read parameter maps from {path}: {e}") from None
    pd = arrays.get("pd", arrays.get("m0"))
    if pd is None or ("t2" not in arrays and "t1" not in arrays):
        raise InputError(f"{path} must hold 'pd' (or 'm0') and 't2' and/or 't1' (ms); found {', '.join(arrays) or 'nothing'}")
    pd = torch.from_numpy(np.abs(pd).astype(np.float32))
    if pd.ndim != 2:
        raise InputError(f"{path}: maps must be 2-D (H, W), 'pd' is {tuple(pd.shape)}")
    out = {}
    for k, default in (("t1", 1000.0), ("t2", 80.0), ("b1", 1.0)):
        v = torch.from_numpy(arrays[k].astype(np.float32)) if k in arrays else torch.full_like(pd, default)
        if tuple(v.shape) != tuple(pd.shape):
            raise InputError(f"{path}: '{k}' is {tuple(v.shape)} but 'pd' is {tuple(pd.shape)}")
        if not torch.isfinite(v).all() or (v[pd > 0] <= 0).any():
            raise InputError(f"{path}: '{k}' must be positive and finite where pd > 0")
        out[k] = v.clamp(min=1e-3)
    lab = arrays.get("labels")
    labels = torch.from_numpy((lab != 0).astype(np.int64)) if lab is not None else (pd > 0.05 * pd.max()).long()
    return TissueMaps(pd, out["t1"], out["t2"], labels, ["background", "tissue"], out["b1"])
