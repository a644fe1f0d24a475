"""Classical reconstructions through the same operator objects: zero-filled, CG-SENSE, k-t TV, L+S."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..fit import FitConfig, fit
from ..operators.base import LinearOperator
from ..params import Pixels
from ..regularizers import TV, WaveletL1
from .operators import CartesianSENSE


def zero_filled(op: LinearOperator, y: Tensor) -> Tensor:
    """``Aᴴ y``: the zero-filled (coil-combined) reconstruction."""
    return op.adjoint(y)


def cg(normal, b: Tensor, x0: Tensor | None = None, iters: int = 30, tol: float = 1e-6) -> Tensor:
    """Conjugate gradients for a Hermitian positive (semi)definite ``normal(x)``, any tensor shape.

    >>> import torch
    >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.complex128)
    >>> x = cg(lambda v: A @ v, torch.tensor([1.0, 2.0], dtype=torch.complex128))
    >>> [round(v, 4) for v in x.real.tolist()]
    [0.0909, 0.6364]
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - normal(x)
    p = r.clone()
    rs = torch.vdot(r.flatten(), r.flatten()).real
    b_norm = torch.linalg.vector_norm(b)
    for _ in range(iters):
        if torch.sqrt(rs) <= tol * b_norm:
            break
        ap = normal(p)
        alpha = rs / torch.vdot(p.flatten(), ap.flatten()).real
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = torch.vdot(r.flatten(), r.flatten()).real
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


def op_norm(op: LinearOperator, x_shape, iters: int = 20, seed: int = 0) -> float:
    """Largest singular value of ``op`` by power iteration on ``AᴴA`` (for gradient step sizes)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.complex(torch.randn(x_shape, generator=g), torch.randn(x_shape, generator=g))
    buf = next(op.buffers(), None)  # the operator's own device (trajectory, mask or maps)
    x = x.to(buf.device if buf is not None else x.device)
    s = 0.0
    for _ in range(iters):
        x = x / torch.linalg.vector_norm(x)
        x = op.gram(x)
        s = torch.linalg.vector_norm(x).item()
    return s**0.5


def lipschitz(op: LinearOperator, x_shape) -> float:
    """‖A‖², the Lipschitz constant of the data term's gradient (for gradient step sizes).

    Cartesian SENSE: ``max_r Σ_c |S_c(r)|²`` × the largest mask value — the exact norm of a fully sampled
    frame and a bound otherwise; it is 1 for maps normalised to Σ|S|² = 1, and right for maps a user
    brings at any scale. Other operators: power iteration (:func:`op_norm`).

    >>> import torch
    >>> lipschitz(CartesianSENSE(torch.ones(8, 8), 2 * torch.ones(1, 8, 8)), (8, 8))
    4.0
    """
    if isinstance(op, CartesianSENSE):
        s = 1.0 if op.maps is None else float(op.maps.abs().square().sum(0).max())
        return s * float(op.mask.abs().max())
    return op_norm(op, x_shape) ** 2


def cg_sense(op: LinearOperator, y: Tensor, *, iters: int = 15, lam: float = 0.0) -> Tensor:
    """CG-SENSE: solve ``(AᴴA + λI) x = Aᴴ y`` from zero (early-stopped CG regularises)."""
    b = op.adjoint(y)
    return cg(lambda v: op.gram(v) + lam * v, b, iters=iters)


def _svt(m: Tensor, thresh: float) -> Tensor:
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    return (u * torch.clamp(s - thresh, min=0).to(u.dtype)) @ vh


def _soft(x: Tensor, thresh: float) -> Tensor:
    mag = x.abs()
    return x * torch.clamp(mag - thresh, min=0) / torch.where(mag > 0, mag, torch.ones_like(mag))


def low_rank_plus_sparse(op: LinearOperator, y: Tensor, *, lambda_l: float = 0.01, lambda_s: float = 0.01,
                         iters: int = 50, tol: float = 1e-4) -> tuple[Tensor, Tensor]:
    """L+S (Otazo, Candès, Sodickson, MRM 2015) for dynamic data ``x = L + S`` ``(T, H, W)``.

    L is low rank in the Casorati matrix (space × time), S sparse in the temporal Fourier domain.
    Thresholds are relative: ``lambda_l`` × the largest singular value and ``lambda_s`` × the largest
    temporal-Fourier magnitude of the zero-filled image. Iterates singular-value thresholding,
    soft thresholding and a gradient step on the data term with step 1/‖A‖² (:func:`lipschitz`: exact
    for Cartesian SENSE whatever the maps' scale, power iteration otherwise). Returns (L, S).
    """
    m = op.adjoint(y)
    t, h, w = m.shape
    step = 1.0 / lipschitz(op, m.shape)
    m = m * step
    s = torch.zeros_like(m)
    casorati = lambda v: v.reshape(t, h * w).T  # noqa: E731
    sigma_max = torch.linalg.matrix_norm(casorati(m), ord=2).item()
    f_max = torch.fft.fft(m, dim=0, norm="ortho").abs().max().item()
    l_mat = m
    for _ in range(iters):
        m_prev = m
        l_mat = _svt(casorati(m - s), lambda_l * sigma_max).T.reshape(t, h, w)
        s = torch.fft.ifft(_soft(torch.fft.fft(m - l_mat, dim=0, norm="ortho"), lambda_s * f_max), dim=0, norm="ortho")
        x = l_mat + s
        m = x - step * op.adjoint(op(x) - y)
        if torch.linalg.vector_norm(m - m_prev) <= tol * torch.linalg.vector_norm(m_prev):
            break
    return l_mat, s


class KtTV(nn.Module):
    """Spatial TV of every frame plus ``temporal`` × the mean absolute temporal difference."""

    def __init__(self, temporal: float = 1.0):
        super().__init__()
        self.tv = TV("iso")
        self.temporal = temporal

    def forward(self, x: Tensor) -> Tensor:
        spatial = self.tv(x.unsqueeze(0) if x.ndim == 3 else x)
        tt = (x[1:] - x[:-1]).abs().mean() if x.shape[0] > 1 else x.new_zeros(()).real
        return spatial + self.temporal * tt




# λ of k-t TV, tuned on OCMR k-t R = 8 (docs/mri.md); the CLI and reconstruct() use it too.
KT_TV_WEIGHT = 0.001


def kt_tv(op: LinearOperator, y: Tensor, *, weight: float = KT_TV_WEIGHT, temporal: float = 2.0, iters: int = 300,
          lr: float = 0.01, callbacks=()) -> Tensor:
    """k-t TV compressed sensing ``min ‖Ax − y‖² + λ (TV_xy(x) + μ TV_t(x))`` through the shared fit loop
    (complex pixels as parameters, Adam), started from the zero-filled image."""
    x0 = op.adjoint(y)
    # The fit loop's data term is a mean over all k-space entries; scale λ to match a sum-normalised objective.
    scale = y.numel() / x0.numel()
    cfg = FitConfig(iters=iters, lr=lr, ema=None, backtrack=False, reg_weight=weight / scale)
    r = fit(Pixels(x0), op, y, cfg, regularizer=KtTV(temporal) if weight > 0 else None, callbacks=callbacks)
    return r.image


class ComplexWaveletL1(nn.Module):
    """L1 of the orthonormal wavelet detail coefficients of the real and imaginary parts of every frame."""

    def __init__(self, wavelet: str = "db4", levels: int = 3):
        super().__init__()
        self.w = WaveletL1(wavelet, levels)

    def forward(self, x: Tensor) -> Tensor:
        x = x.unsqueeze(0) if x.ndim == 2 else x
        return self.w(torch.stack([x.real, x.imag], 1))


# λ of L1-wavelet: the same scale as k-t TV's (docs/real_data.md tunes both per data set).
WAVELET_WEIGHT = 0.001


def l1_wavelet(op: LinearOperator, y: Tensor, *, weight: float = WAVELET_WEIGHT, iters: int = 300, lr: float = 0.01,
               callbacks=()) -> Tensor:
    """PICS-style compressed sensing ``min ‖Ax − y‖² + λ ‖Ψx‖₁`` (Ψ: db4 wavelets, 3 levels, per frame) through the
    shared fit loop (complex pixels, Adam), started from the zero-filled image — BART's ``pics -l1``
    objective, solved by a different algorithm."""
    x0 = op.adjoint(y)
    scale = y.numel() / x0.numel()
    cfg = FitConfig(iters=iters, lr=lr, ema=None, backtrack=False, reg_weight=weight / scale)
    return fit(Pixels(x0), op, y, cfg, regularizer=ComplexWaveletL1() if weight > 0 else None,
               callbacks=callbacks).image
