"""Classical reconstructions through the same operator objects: zero-filled, CG-SENSE, k-t TV, L+S."""

from __future__ import annotations

import torch
from torch import Tensor

from ..operators.base import LinearOperator
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


# L+S thresholds (relative, see low_rank_plus_sparse), tuned on OCMR k-t R = 4 with the k-t TV weights
# (bench/classical_tuned.py) and reused everywhere else.
LPS_LAMBDA_L = 0.001
LPS_LAMBDA_S = 0.0003


def low_rank_plus_sparse(op: LinearOperator, y: Tensor, *, lambda_l: float = LPS_LAMBDA_L, lambda_s: float = LPS_LAMBDA_S,
                         iters: int = 500, tol: float = 1e-4) -> tuple[Tensor, Tensor]:
    """L+S (Otazo, Candès, Sodickson, MRM 2015) for dynamic data ``x = L + S`` ``(T, H, W)``.

    L is low rank in the Casorati matrix (space × time), S sparse in the temporal Fourier domain.
    Thresholds are relative: ``lambda_l`` × the largest singular value and ``lambda_s`` × the largest
    temporal-Fourier magnitude of the zero-filled image. Iterates singular-value thresholding,
    soft thresholding and a gradient step on the data term with step 1/‖A‖² (:func:`lipschitz`: exact
    for Cartesian SENSE whatever the maps' scale, power iteration otherwise). Returns (L, S).
    """
    aty = m = op.adjoint(y)
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
        m = x - step * (op.gram(x) - aty)  # Aᴴ(Ax − y); radial: the Toeplitz gram, no NUFFT per iteration
        if torch.linalg.vector_norm(m - m_prev) <= tol * torch.linalg.vector_norm(m_prev):
            break
    return l_mat, s
