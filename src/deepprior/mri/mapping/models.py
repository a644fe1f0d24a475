"""Signal models of quantitative MRI as small differentiable modules: bounded maps → contrast images.

Every model turns a complex proton-density-weighted image ``M0`` ``(H, W)`` and its parameter maps into the
``K`` contrast images ``(K, H, W)`` the scanner measured. Times are in ms everywhere. A parameter's bounds are
kept by a smooth reparameterisation (a sigmoid between the bounds, in log space for a relaxation time), not by
clipping, so that a gradient always flows and a fit never sticks to a bound.

* :class:`T2Decay` — multi-echo spin echo, mono-exponential ``S_k = M0 · exp(−TE_k / T2)``. It assumes perfect
  refocusing (no stimulated echoes, as a CPMG train with ideal 180° pulses gives): with imperfect B1 the even
  echoes rise above the curve and a mono-exponential fit overestimates T2 (stated, not modelled).
* :class:`InversionRecovery` — ``S_k = M0 · (1 − 2δ · exp(−TI_k / T1))`` with the inversion efficiency δ as a
  fitted map (δ = 1: perfect inversion with full recovery between inversions, TR ≫ T1); magnitude or complex.
* :class:`VariableFlipAngle` — spoiled gradient echo (SPGR/FLASH) at flip angles α_k and repetition time TR,
  ``S_k = M0 · sin(b α_k)(1 − E1) / (1 − cos(b α_k) E1)``, ``E1 = exp(−TR/T1)``, with the relative B1 map b.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...errors import InputError


@dataclass(frozen=True)
class Param:
    """A bounded parameter map: ``lo``…``hi`` in ``unit``, through a sigmoid (in log space when ``log``)."""

    name: str
    unit: str
    lo: float
    hi: float
    log: bool = True
    start: float = 0.0  # the value an all-zero raw map stands for (set in __post_init__ when 0)

    def bounded(self, u: Tensor) -> Tensor:
        """Raw unbounded ``u`` → the parameter, strictly inside (lo, hi)."""
        s = torch.sigmoid(u)
        if self.log:
            return self.lo * torch.exp(s * math.log(self.hi / self.lo))
        return self.lo + (self.hi - self.lo) * s

    def raw(self, v: Tensor) -> Tensor:
        """The inverse of :meth:`bounded` (values outside the bounds are pulled just inside)."""
        v = torch.as_tensor(v, dtype=torch.float32)
        if self.log:
            s = torch.log(v.clamp(min=self.lo) / self.lo) / math.log(self.hi / self.lo)
        else:
            s = (v - self.lo) / (self.hi - self.lo)
        s = s.clamp(1e-4, 1 - 1e-4)
        return torch.log(s) - torch.log1p(-s)

    def mid(self) -> float:
        return math.sqrt(self.lo * self.hi) if self.log else (self.lo + self.hi) / 2


class SignalModel(nn.Module):
    """Base: ``forward(m0, maps)`` with ``maps`` a dict of bounded parameter maps, → ``(K, H, W)``."""

    name = "base"
    params: tuple[Param, ...] = ()
    axis_name = "contrast"  # what the contrasts are, for plots ("TE", "TI", "flip angle")
    axis_unit = ""
    axis_key = "contrast"  # the key of the contrast values in files and describe()
    magnitude = False  # the model's output is a magnitude (image-domain magnitude IR), M0 is then real ≥ 0

    @property
    def contrasts(self) -> int:
        return len(self.axis)

    @property
    def axis(self) -> list[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def bounded(self, raw: Tensor) -> dict[str, Tensor]:
        """Raw maps ``(P, H, W)`` (one per parameter) → {name: bounded map}."""
        return {p.name: p.bounded(raw[i]) for i, p in enumerate(self.params)}

    def raw(self, maps: dict[str, Tensor]) -> Tensor:
        return torch.stack([p.raw(maps[p.name]) for p in self.params])

    def describe(self) -> dict:
        return {"model": self.name, self.axis_key: list(self.axis), **self.extra()}

    def extra(self) -> dict:
        return {}


def check_times(values, what: str) -> Tensor:
    """``values`` as a float tensor, or InputError unless they are ≥ 2 distinct positive finite numbers."""
    v = torch.as_tensor([float(t) for t in values], dtype=torch.float32)
    if v.ndim != 1 or v.numel() < 2:
        raise InputError(f"{what}: need at least 2 values (ms), got {list(values)}")
    if not torch.isfinite(v).all() or (v <= 0).any():
        raise InputError(f"{what} must be positive and finite (ms), got {[float(t) for t in values]}")
    if len(set(v.tolist())) != v.numel():
        raise InputError(f"{what} must be distinct, got {[float(t) for t in values]}")
    return v


class T2Decay(SignalModel):
    """Multi-echo spin echo: ``S_k = M0 exp(−TE_k/T2)`` (TE in ms; T2 bounded to 1…3000 ms).

    >>> import torch
    >>> m = T2Decay([10, 20, 40])
    >>> s = m(torch.ones(1, 1, dtype=torch.complex64), {"T2": torch.full((1, 1), 20.0)})
    >>> [round(v, 4) for v in s.abs().flatten().tolist()]
    [0.6065, 0.3679, 0.1353]
    """

    name, axis_name, axis_unit, axis_key = "t2", "TE", "ms", "te"
    params = (Param("T2", "ms", 1.0, 3000.0),)

    def __init__(self, te):
        super().__init__()
        self.register_buffer("te", check_times(te, "echo times (TE)"))

    @property
    def axis(self) -> list[float]:
        return self.te.tolist()

    def forward(self, m0: Tensor, maps: dict[str, Tensor]) -> Tensor:
        decay = torch.exp(-self.te[:, None, None] / maps["T2"])
        return m0 * decay


class InversionRecovery(SignalModel):
    """Inversion recovery: ``S_k = M0 (1 − 2δ exp(−TI_k/T1))``; T1 in 10…6000 ms, δ in 0.5…1.1.

    ``magnitude=True`` returns ``|S_k|`` (magnitude images, where the sign of the early inversion times is
    lost; M0 is then the real magnitude).

    >>> import torch
    >>> m = InversionRecovery([100, 1000])
    >>> s = m(torch.ones(1, 1, dtype=torch.complex64), {"T1": torch.full((1, 1), 1000.0), "eff": torch.ones(1, 1)})
    >>> [round(v, 4) for v in s.real.flatten().tolist()]
    [-0.8097, 0.2642]
    """

    name, axis_name, axis_unit, axis_key = "ir", "TI", "ms", "ti"
    params = (Param("T1", "ms", 10.0, 6000.0), Param("eff", "", 0.5, 1.1, log=False))

    def __init__(self, ti, magnitude: bool = False):
        super().__init__()
        self.register_buffer("ti", check_times(ti, "inversion times (TI)"))
        self.magnitude = bool(magnitude)

    @property
    def axis(self) -> list[float]:
        return self.ti.tolist()

    def extra(self) -> dict:
        return {"magnitude": self.magnitude}

    def forward(self, m0: Tensor, maps: dict[str, Tensor]) -> Tensor:
        s = m0 * (1 - 2 * maps["eff"] * torch.exp(-self.ti[:, None, None] / maps["T1"]))
        return s.abs() if self.magnitude else s


class VariableFlipAngle(SignalModel):
    """Spoiled gradient echo at flip angles ``fa`` (degrees) and ``tr`` (ms); T1 in 10…6000 ms; ``b1`` the
    relative flip-angle map (1 = nominal), a measured input, not fitted.

    >>> import torch
    >>> m = VariableFlipAngle([3, 15], tr=15.0)
    >>> s = m(torch.ones(1, 1, dtype=torch.complex64), {"T1": torch.full((1, 1), 1000.0)})
    >>> [round(v, 4) for v in s.real.flatten().tolist()]
    [0.048, 0.0795]
    """

    name, axis_name, axis_unit, axis_key = "vfa", "flip angle", "°", "fa"
    params = (Param("T1", "ms", 10.0, 6000.0),)

    def __init__(self, fa, tr: float, b1: Tensor | None = None):
        super().__init__()
        fa = check_times(fa, "flip angles")
        if (fa >= 180).any():
            raise InputError(f"flip angles must be in (0, 180) degrees, got {fa.tolist()}")
        if not (math.isfinite(tr) and tr > 0):
            raise InputError(f"the repetition time TR must be positive (ms), got {tr}")
        self.register_buffer("fa", fa)
        self.tr = float(tr)
        if b1 is not None:
            b1 = torch.as_tensor(b1, dtype=torch.float32)
            if b1.ndim != 2 or not torch.isfinite(b1).all() or (b1 <= 0).any():
                raise InputError(f"the B1 map must be a positive finite (H, W) array, got shape {tuple(b1.shape)}")
        self.register_buffer("b1", b1)

    @property
    def axis(self) -> list[float]:
        return self.fa.tolist()

    def extra(self) -> dict:
        return {"tr": self.tr}

    def forward(self, m0: Tensor, maps: dict[str, Tensor]) -> Tensor:
        a = torch.deg2rad(self.fa)[:, None, None]
        if self.b1 is not None:
            a = a * self.b1
        e1 = torch.exp(-self.tr / maps["T1"])
        return m0 * torch.sin(a) * (1 - e1) / (1 - torch.cos(a) * e1)


MODELS = ("t2", "ir", "vfa")


def build_model(name: str, axis, *, tr: float | None = None, b1: Tensor | None = None,
                magnitude: bool = False) -> SignalModel:
    """The model ``name`` ('t2', 'ir', 'vfa') for the contrast values ``axis`` (TE/TI in ms, or flip angles).

    >>> build_model("t2", [10, 20, 30]).contrasts
    3
    """
    if name == "t2":
        return T2Decay(axis)
    if name == "ir":
        return InversionRecovery(axis, magnitude=magnitude)
    if name == "vfa":
        if tr is None:
            raise InputError("the VFA model needs the repetition time TR (ms)")
        return VariableFlipAngle(axis, tr, b1)
    raise InputError(f"unknown signal model {name!r}; choose one of {', '.join(MODELS)}")
