"""Parallel-imaging compressed sensing solved to convergence: ADMM with exact data steps, BART ``pics``-style.

    min_x ½‖A x − y‖² + Σ_i λ_i ‖G_i x‖₁

Each term is a sparsifying transform ``G_i`` with its soft threshold: spatial TV (isotropic over the two
in-plane differences), temporal TV, orthonormal wavelets per frame, or the temporal Fourier transform.
Scaled-form ADMM with splitting ``z_i = G_i x``:

1. ``(AᴴA + ρ Σ G_iᴴG_i) x = Aᴴy + ρ Σ G_iᴴ(z_i − u_i)`` by warm-started conjugate gradients;
2. ``z_i = soft(G_i x + u_i, λ_i/ρ)``;  3. ``u_i ← u_i + G_i x − z_i``;

until the primal and dual residuals fall below ``tol`` (Boyd et al. 2011, §3.3). As in BART, the data are
first scaled so that the zero-filled image's 99th-percentile magnitude is 1, so that λ does not depend on
the scanner's units, and the image is scaled back at the end. The Adam-on-pixels solvers this replaces
stopped 3–4 dB short of BART's ``pics`` on the same objective (issue #15).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..operators.base import LinearOperator
from ..regularizers import WaveletL1
from .recon import cg


class SpatialGrad(LinearOperator):
    """In-plane forward differences of complex frames ``(…, H, W)`` → ``(…, 2, H, W)`` (0 past the last
    row/column: Neumann boundary, as TV is usually defined)."""

    group = 2  # the two differences share one isotropic threshold

    def forward(self, x: Tensor) -> Tensor:
        dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
        dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
        return torch.stack([dx, dy], -3)

    def adjoint(self, g: Tensor, in_shape=None) -> Tensor:
        dx, dy = g[..., 0, :, :], g[..., 1, :, :]
        ax = F.pad(dx[..., :, :-1], (1, 0)) - F.pad(dx[..., :, :-1], (0, 1))
        ay = F.pad(dy[..., :-1, :], (0, 0, 1, 0)) - F.pad(dy[..., :-1, :], (0, 0, 0, 1))
        return ax + ay


class TemporalGrad(LinearOperator):
    """Differences between consecutive frames ``(T, H, W)`` → ``(T−1, H, W)``."""

    group = 0

    def forward(self, x: Tensor) -> Tensor:
        return x[1:] - x[:-1]

    def adjoint(self, g: Tensor, in_shape=None) -> Tensor:
        return F.pad(g, (0, 0, 0, 0, 1, 0)) - F.pad(g, (0, 0, 0, 0, 0, 1))


class TemporalFourier(LinearOperator):
    """Orthonormal FFT along time: the sparsifying transform of k-t methods (periodic motion)."""

    group = 0

    def forward(self, x: Tensor) -> Tensor:
        return torch.fft.fft(x, dim=0, norm="ortho")

    def adjoint(self, g: Tensor, in_shape=None) -> Tensor:
        return torch.fft.ifft(g, dim=0, norm="ortho")


class Wavelet(LinearOperator):
    """Orthonormal 2-D wavelet detail coefficients of every frame (real and imaginary parts alike), flattened;
    the coarse band is not penalised, so it is left out. Sizes must be divisible by 2^levels (then GᴴG is a
    projection and the adjoint, by autograd, is exact)."""

    group = 0

    def __init__(self, wavelet: str = "db4", levels: int = 3):
        super().__init__()
        self.w = WaveletL1(wavelet, levels)

    def forward(self, x: Tensor) -> Tensor:
        return torch.complex(self._real(x.real), self._real(x.imag))

    def adjoint(self, g: Tensor, in_shape=None) -> Tensor:
        def real_adj(v):
            z = torch.zeros(in_shape, dtype=torch.float32, device=v.device, requires_grad=True)
            with torch.enable_grad():
                (gz,) = torch.autograd.grad(self._real(z), z, v)
            return gz

        return torch.complex(real_adj(g.real), real_adj(g.imag))

    def _real(self, x: Tensor) -> Tensor:
        x = x.reshape(-1, *x.shape[-2:])
        return torch.cat([d.flatten(1) for d in self.w.transform(x[:, None])[:-1]], 1)


def soft(v: Tensor, thresh: float, group: int = 0) -> Tensor:
    """Complex soft threshold ``v · max(1 − t/|v|, 0)``; with ``group = g`` the magnitude is the 2-norm over
    axis ``-3`` (isotropic TV's pair of differences).

    >>> soft(torch.tensor([3.0 + 4.0j, 0.1]), 1.0).abs().tolist()
    [4.0, 0.0]
    """
    mag = v.abs() if not group else v.abs().square().sum(-3, keepdim=True).sqrt()
    return v * torch.clamp(1 - thresh / mag.clamp(min=1e-30), min=0)


TERMS = {"tv": SpatialGrad, "tv-t": TemporalGrad, "wavelet": Wavelet, "fourier-t": TemporalFourier}


@dataclass
class PICSResult:
    image: Tensor
    iters: int
    scale: float
    objective: list[float] = field(default_factory=list)
    primal: list[float] = field(default_factory=list)
    dual: list[float] = field(default_factory=list)
    rho: list[float] = field(default_factory=list)
    setup_seconds: float = 0.0  # before the first iteration: scaling, Aᴴy, the terms
    seconds: list[float] = field(default_factory=list)  # each ADMM iteration's


def objective(op: LinearOperator, y: Tensor, x: Tensor, terms) -> float:
    """``½‖Ax − y‖² + Σ λ_i ‖G_i x‖₁`` (isotropic groups as in the threshold)."""
    f = 0.5 * float((op(x) - y).abs().square().sum())
    for g, lam in terms:
        v = g(x)
        f += lam * float((v.abs() if not g.group else v.abs().square().sum(-3).sqrt()).sum())
    return f


def data_scale(op: LinearOperator, y: Tensor) -> float:
    """1 / the 99th-percentile magnitude of the zero-filled image: the factor that brings the data to unit
    image intensity, so that one λ serves any scanner's units (BART scales its data the same way)."""
    m = op.adjoint(y).abs().flatten()
    q = torch.quantile(m[:: max(1, m.numel() // 1_000_000)].float(), 0.99).item()
    return 1.0 / q if q > 0 else 1.0


def pics(op: LinearOperator, y: Tensor, regs: dict[str, float], *, iters: int = 100, rho: float = 0.5,
         cg_iters: int = 5, tol: float = 1e-4, x0: Tensor | None = None, scale: float | None = None,
         adapt: bool = True, track: bool = False, prior: tuple[Tensor, float] | None = None) -> PICSResult:
    """ADMM for ``min ½‖Ax − y‖² + Σ λ_i ‖G_i x‖₁`` with ``regs = {term: λ}`` (terms: ``tv`` spatial
    isotropic TV, ``tv-t`` temporal TV, ``wavelet`` db4 3 levels, ``fourier-t`` temporal Fourier), λ on data
    scaled to unit image intensity (:func:`data_scale`). ``prior = (x_p, μ)`` adds ``μ/2 ‖x − x_p‖²`` (x_p in the
    data's units): a quadratic pull towards another reconstruction, e.g. an untrained network's image, which then
    fills what the data and the sparsity terms leave open. Starts from ``x0`` (default the zero-filled image);
    stops after ``iters`` iterations or when the primal and dual residuals fall below ``tol`` relative to
    ‖Gx‖ and ‖ρGᴴu‖. ``track`` records the objective every iteration (one extra A per iteration).

    >>> import torch
    >>> from deepprior.mri import CartesianSENSE
    >>> A = CartesianSENSE(torch.ones(4, 8, 8))
    >>> x = torch.ones(4, 8, 8, dtype=torch.complex64)
    >>> r = pics(A, A(x) + 0.01 * torch.randn(4, 1, 8, 8), {"tv": 0.01, "tv-t": 0.01})
    >>> bool((r.image - x).abs().max() < 0.01)  # a constant series is TV's fixed point
    True
    """
    unknown = sorted(set(regs) - set(TERMS))
    if unknown:
        raise ConfigError(f"unknown regularizer(s) {', '.join(unknown)}; choose from {', '.join(TERMS)}")
    if rho <= 0 or iters < 1 or cg_iters < 1 or any(v < 0 for v in regs.values()):
        raise ConfigError(f"pics needs rho > 0, positive counts and λ >= 0, got rho={rho}, iters={iters}, "
                          f"cg_iters={cg_iters}, {regs}")
    t0 = time.perf_counter()
    s = data_scale(op, y) if scale is None else scale
    ys = y * s
    aty = op.adjoint(ys)
    x = aty.clone() if x0 is None else x0 * s
    mu = 0.0
    if prior is not None:
        xp, mu = prior
        if mu < 0 or tuple(xp.shape) != tuple(aty.shape):
            raise ConfigError(f"prior needs an image of shape {tuple(aty.shape)} and a weight >= 0, got "
                              f"{tuple(xp.shape)} and {mu}")
        aty = aty + mu * s * xp.to(aty)
    gram = op.gram if not mu else (lambda v: op.gram(v) + mu * v)
    if (regs.get("tv-t") or regs.get("fourier-t")) and (x.ndim != 3 or x.shape[0] < 2):
        raise ConfigError("temporal regularizers (tv-t, fourier-t) need a series of at least 2 frames")
    dev = x.device
    terms = [(TERMS[k]().to(dev), lam) for k, lam in regs.items() if lam > 0]
    if not terms:  # no prior: least squares, i.e. CG-SENSE run to convergence
        t1 = time.perf_counter()
        x = cg(gram, aty, x0=x, iters=iters * cg_iters, tol=tol)
        return PICSResult(x / s, 1, s, setup_seconds=t1 - t0, seconds=[time.perf_counter() - t1])
    shape = tuple(x.shape)
    z = [g(x) for g, _ in terms]
    u = [torch.zeros_like(v) for v in z]
    def normal(v):
        return gram(v) + rho * sum(g.adjoint(g(v), shape) for g, _ in terms)

    res = PICSResult(x, 0, s, setup_seconds=time.perf_counter() - t0)
    res.rho = [rho]
    for k in range(iters):
        t1 = time.perf_counter()
        b = aty + rho * sum(g.adjoint(zi - ui, shape) for (g, _), zi, ui in zip(terms, z, u))
        x = cg(normal, b, x0=x, iters=cg_iters, tol=0.0)
        r_norm = s_norm = gx_norm = u_norm = 0.0
        for i, (g, lam) in enumerate(terms):
            gx = g(x)
            z_old = z[i]
            z[i] = soft(gx + u[i], lam / rho, g.group)
            u[i] = u[i] + gx - z[i]
            r_norm += float((gx - z[i]).abs().square().sum())
            s_norm += float(g.adjoint(z[i] - z_old, shape).abs().square().sum()) * rho**2
            gx_norm += float(gx.abs().square().sum())
            u_norm += float(g.adjoint(u[i], shape).abs().square().sum()) * rho**2
        res.primal.append(math.sqrt(r_norm / max(gx_norm, 1e-30)))
        res.dual.append(math.sqrt(s_norm / max(u_norm, 1e-30)))
        if track:
            f = objective(op, ys, x, terms)
            res.objective.append(f if not mu else f + 0.5 * mu * float((x - s * xp.to(x)).abs().square().sum()))
        res.iters = k + 1
        res.rho.append(rho)
        res.seconds.append(time.perf_counter() - t1)
        if k > 0 and res.primal[-1] < tol and res.dual[-1] < tol:
            break
        # Residual balancing (Wohlberg 2017, normalised residuals): the best ρ depends on λ, on the
        # sampling and on the terms (measured: 0.05 → 42.4 dB, 2 → 37.4 dB on OCMR k-t 8×), so adapt it.
        if adapt and k % 5 == 4:
            f = 2.0 if res.primal[-1] > 5 * res.dual[-1] else 0.5 if res.dual[-1] > 5 * res.primal[-1] else 1.0
            if f != 1.0:
                rho *= f
                u = [ui / f for ui in u]
    res.image = x / s
    return res


# λ of k-t TV (spatial, temporal) on data scaled to unit image intensity, tuned on OCMR k-t R = 4 (8 coils, SNR
# 40 dB) and reused everywhere else (bench/classical_tuned.py, docs/mri.md); the CLI and reconstruct() use them too.
KT_TV_WEIGHT = 3e-5
KT_TV_TEMPORAL = 3e-4
# λ of the temporal Fourier L1 added to k-t TV (``tv``'s ``fourier``; k-t SPARSE's sparsity along time, strong on a
# periodic cine), tuned on the same OCMR k-t R = 4 with the two TV weights fixed: 47.63 / 47.98 / 48.23 / 48.05 /
# 46.86 dB at 0 / 3·10⁻⁵ / 10⁻⁴ / 3·10⁻⁴ / 10⁻³ (docs/mri.md, "k-t TV with a temporal Fourier term"). Off by default
# in ``tv`` (BART ``pics -R T``'s objective); on in TDDIP's final step (presets.py).
KT_FOURIER = 1e-4
# A single frame has no temporal term to lean on: its spatial λ, tuned on OCMR frame 13 at vd R = 6 (not a
# setting of the static comparisons, which use frame 0 at R = 4 and 8).
TV_STATIC_WEIGHT = 1e-4


def kt_tv_terms(weight: float = KT_TV_WEIGHT, temporal: float = KT_TV_TEMPORAL, fourier: float = 0.0) -> dict[str, float]:
    """The ``regs`` of :func:`pics` for k-t TV (a new dict each call), the tuned weights by default; ``fourier`` > 0
    adds the temporal Fourier L1 (k-t SPARSE's term, :data:`KT_FOURIER` tuned beside them).

    >>> kt_tv_terms() == {"tv": KT_TV_WEIGHT, "tv-t": KT_TV_TEMPORAL}, sorted(kt_tv_terms(fourier=KT_FOURIER))
    (True, ['fourier-t', 'tv', 'tv-t'])
    """
    return {"tv": weight, "tv-t": temporal, **({"fourier-t": fourier} if fourier > 0 else {})}


def kt_tv(op: LinearOperator, y: Tensor, *, weight: float = KT_TV_WEIGHT, temporal: float = KT_TV_TEMPORAL,
          iters: int = 100, **admm) -> Tensor:
    """k-t TV compressed sensing ``min ½‖Ax − y‖² + λ_xy TV_xy(x) + λ_t TV_t(x)`` solved by ADMM with exact
    data steps (:func:`deepprior.mri.pics.pics`, BART ``pics -R T``'s objective); ``weight`` = λ_xy (isotropic,
    per frame), ``temporal`` = λ_t (ignored for a single frame), both on data scaled to unit intensity."""
    x0 = op.adjoint(y)
    frames = x0.shape[0] if x0.ndim == 3 else 1
    regs = kt_tv_terms(weight, temporal if frames > 1 else 0.0)
    return pics(op, y, regs, iters=iters, **admm).image


# λ of L1-wavelet on data scaled to unit image intensity (BART's scale; docs/real_data.md tunes it per data set).
WAVELET_WEIGHT = 3e-4  # the best of {3e-4, 1e-3, 3e-3, 1e-2} on OCMR frame 13 at vd R = 6


def l1_wavelet(op: LinearOperator, y: Tensor, *, weight: float = WAVELET_WEIGHT, iters: int = 100, **admm) -> Tensor:
    """PICS compressed sensing ``min ½‖Ax − y‖² + λ ‖Ψx‖₁`` (Ψ: db4 wavelets, 3 levels, per frame) by ADMM
    with exact data steps — BART's ``pics -l1`` objective."""
    return pics(op, y, {"wavelet": weight}, iters=iters, **admm).image
