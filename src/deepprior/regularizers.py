"""Hand-written image priors R(x) for the classical baselines ``argmin_x E(x) + λ R(x)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ConfigError


class TV(nn.Module):
    """Total variation, mean over pixels.

    ``kind='iso'``: ``mean √(|∂x|² + |∂y|² + ε²)`` (ε keeps it differentiable at 0);
    ``'aniso'``: ``mean |∂x| + |∂y|``. Forward differences, the last row/column replicated.

    >>> TV()(torch.ones(1, 1, 8, 8)).item() < 1e-3
    True
    """

    def __init__(self, kind: str = "iso", eps: float = 1e-4):
        super().__init__()
        if kind not in ("iso", "aniso"):
            raise ConfigError(f"TV kind must be iso or aniso, got {kind!r}")
        self.kind, self.eps = kind, eps

    def forward(self, x: Tensor) -> Tensor:
        dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1, 0, 0))
        dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
        if x.is_complex():
            dx, dy = torch.view_as_real(dx), torch.view_as_real(dy)
            sq = (dx.square() + dy.square()).sum(-1)
            return (sq + self.eps**2).sqrt().mean() if self.kind == "iso" else (dx.abs() + dy.abs()).sum(-1).mean()
        if self.kind == "iso":
            return (dx.square() + dy.square() + self.eps**2).sqrt().mean()
        return (dx.abs() + dy.abs()).mean()


class WaveletL1(nn.Module):
    """L1 norm of orthonormal 2-D wavelet detail coefficients (periodic boundary), mean over pixels.

    Filters come from PyWavelets (``wavelet`` is any orthogonal PyWavelets name: ``haar``,
    ``db2``, ``db4``, ``sym4``…); the transform itself is strided convolution in PyTorch, so it
    runs on the GPU and is differentiable. The coarse approximation band is not penalised.

    >>> w = WaveletL1("haar", levels=2)
    >>> coeffs = w.transform(torch.rand(1, 1, 16, 16))
    >>> [tuple(c.shape) for c in coeffs]
    [(1, 1, 3, 8, 8), (1, 1, 3, 4, 4), (1, 1, 4, 4)]
    """

    def __init__(self, wavelet: str = "db4", levels: int = 3):
        super().__init__()
        import pywt

        try:
            wv = pywt.Wavelet(wavelet)
        except ValueError:
            raise ConfigError(f"unknown wavelet {wavelet!r}; use an orthogonal PyWavelets name such as haar or db4") from None
        if not wv.orthogonal:
            raise ConfigError(f"wavelet {wavelet!r} is not orthogonal; use e.g. haar, db4 or sym4")
        lo = torch.tensor(wv.dec_lo[::-1], dtype=torch.float64)
        hi = torch.tensor(wv.dec_hi[::-1], dtype=torch.float64)
        bank = torch.stack([torch.outer(a, b) for a, b in ((lo, lo), (lo, hi), (hi, lo), (hi, hi))])
        self.register_buffer("bank", bank[:, None].float())
        self.levels = levels

    def _analysis(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        k = self.bank.shape[-1]
        xp = F.pad(x.reshape(b * c, 1, h, w), (0, k - 2, 0, k - 2), mode="circular") if k > 2 else x.reshape(b * c, 1, h, w)
        y = F.conv2d(xp, self.bank.to(x.dtype), stride=2)
        return y.reshape(b, c, 4, *y.shape[-2:])

    def transform(self, x: Tensor) -> list[Tensor]:
        """Detail bands per level ``(B, C, 3, h, w)`` then the approximation ``(B, C, h, w)``."""
        out = []
        a = x
        for _ in range(self.levels):
            if a.shape[-1] % 2 or a.shape[-2] % 2 or min(a.shape[-2:]) < 2:
                a = F.pad(a, (0, a.shape[-1] % 2, 0, a.shape[-2] % 2), mode="replicate")
            y = self._analysis(a)
            out.append(y[:, :, 1:])
            a = y[:, :, 0]
        out.append(a)
        return out

    def forward(self, x: Tensor) -> Tensor:
        details = self.transform(x)[:-1]
        return sum(d.abs().sum() for d in details) / x.numel()


REGULARIZERS = {"tv": lambda: TV("iso"), "tv-aniso": lambda: TV("aniso"), "wavelet": lambda: WaveletL1("db4", 3)}


def build_regularizer(name: str) -> nn.Module:
    try:
        return REGULARIZERS[name]()
    except KeyError:
        raise ConfigError(f"unknown regularizer {name!r}; choose one of {', '.join(REGULARIZERS)}") from None
