"""The weighted radial data term of a network fit, evaluated in image space by the Toeplitz gram.

A network fitted to radial k-space (TDDIP; GIP's pretraining stages) needs ``‖√W (A x − y)‖²`` and its gradient ``2 Aᴴ W (A x − y)`` at
every step: a forward and an adjoint NUFFT per coil. Expanded,

    ‖√W (A x − y)‖² = Re⟨x, AᴴWA x⟩ − 2 Re⟨x, AᴴW y⟩ + ‖√W y‖²,

so with ``b = AᴴW y`` and ``‖√W y‖²`` computed once, a step needs only ``AᴴWA x`` — one convolution with the
trajectory's point-spread function on the twice-larger grid (:meth:`~deepprior.mri.nufft.Weighted.gram`), which also
gives the gradient ``2 (AᴴWA x − b)``. Same loss and gradient as the NUFFT pair (to the Toeplitz kernel's precision),
3.5× cheaper per frame here (8 coils, 13 spokes, 128²; a TDDIP step 1.2× faster in all, docs/benchmarks.md). The value is summed in float64: it is a difference of
terms ~1000× larger than itself once the fit is good.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError
from ..operators.base import LinearOperator, Operator


def _toeplitz(op) -> bool:
    """Whether ``op`` (a radial operator, or one weighting it) applies its gram by the Toeplitz embedding."""
    return bool(getattr(op, "toeplitz", False) or getattr(getattr(op, "op", None), "toeplitz", False))


class _Misfit(torch.autograd.Function):
    """``(Re⟨x, Gx − 2b⟩ + c) / n`` with the gradient ``2 (Gx − b) / n`` — one gram per evaluation."""

    @staticmethod
    def forward(ctx, x, op, b, c, n):
        g = op.gram(x)
        value = ((x.conj() * (g - 2 * b)).real.double().sum() + c.sum()) / n
        ctx.save_for_backward(g - b)
        ctx.n = n
        return value.to(x.real.dtype)

    @staticmethod
    def backward(ctx, grad):
        (r,) = ctx.saved_tensors
        return grad * (2 / ctx.n) * r, None, None, None, None


class GramMisfit(Operator):
    """The fit loop's data term ``mean |√W (A x − y)|²`` over the entries of ``y`` for a radial operator ``op`` whose
    ``gram`` is the Toeplitz one (a :class:`~deepprior.mri.nufft.RadialSENSE`, W = 1, or a density-weighted
    :class:`~deepprior.mri.nufft.Weighted` one) and its (weighted) data ``y`` ``(T, C, K)``, after ``inner`` (e.g.
    the network's channels → complex frames). Hand it to :func:`~deepprior.fit.fit` with :attr:`normal_data` as the
    measurement: the loop then calls :meth:`misfit` instead of comparing ``operator(x)`` with ``y``. ``forward`` is
    the normal operator ``AᴴWA`` (after ``inner``), whose data are ``normal_data = AᴴW y``.

    >>> import torch
    >>> from deepprior.mri.nufft import RadialSENSE, Weighted
    >>> from deepprior.mri.sampling import golden_angle_radial
    >>> op = Weighted(RadialSENSE(golden_angle_radial(2, 5, 16), shape=(16, 16)), torch.rand(2, 160))
    >>> x = torch.randn(2, 16, 16, dtype=torch.complex64)
    >>> y = op(torch.randn(2, 16, 16, dtype=torch.complex64))
    >>> m = GramMisfit(op, y)
    >>> direct = (op(x) - y).abs().square().mean()
    >>> bool(torch.isclose(m.misfit(x, m.normal_data), direct, rtol=1e-4))
    True
    """

    def __init__(self, op: LinearOperator, y: Tensor, inner: LinearOperator | None = None):
        super().__init__()
        if not _toeplitz(op):
            raise ConfigError("GramMisfit needs a radial operator (weighted or not) with the Toeplitz gram "
                              "(toeplitz=True)")
        self.op, self.inner = op, inner
        self.per_item = y[0].numel()  # entries of one frame's data, as the loop's mean counts them
        self.entries = y.numel()  # those of all frames: misfit(x) × entries is the sum of squares
        with torch.no_grad():
            self.register_buffer("normal_data", op.adjoint(y))
            self.register_buffer("norms", y.abs().square().flatten(1).double().sum(1))
            op.gram(torch.zeros_like(self.normal_data))  # the point-spread kernels of all frames, once

    def _complex(self, x: Tensor) -> Tensor:
        return x if self.inner is None else self.inner(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.op.gram(self._complex(x))

    def misfit(self, x: Tensor, normal_data: Tensor) -> Tensor:
        """The mean squared weighted residual of ``x`` against the data whose ``AᴴW y`` is ``normal_data``."""
        z = self._complex(x)
        if z.ndim == 2:
            z = z[None]
        return _Misfit.apply(z, self.op, normal_data, self.norms, self.per_item * z.shape[0])

    def select(self, index: Tensor) -> "GramMisfit":
        """The data term of the frames ``index`` (sharing their kernels)."""
        sub = GramMisfit.__new__(GramMisfit)
        Operator.__init__(sub)
        sub.op, sub.inner, sub.per_item = self.op.select(index), self.inner, self.per_item
        sub.entries = self.per_item * len(index)
        i = index.to(self.normal_data.device)
        sub.register_buffer("normal_data", self.normal_data[i])
        sub.register_buffer("norms", self.norms[i])
        return sub


def data_term(op: LinearOperator, y: Tensor, inner: LinearOperator, gram: bool = True) -> tuple[Operator, Tensor]:
    """The (operator, measurement) pair a network fit hands to :func:`~deepprior.fit.fit` for ``op`` and its data
    ``y`` after ``inner``: the :class:`GramMisfit` and its normal data where ``op`` is radial with the Toeplitz gram
    and ``gram`` is set, else ``op @ inner`` and ``y`` (Cartesian data: the FFT is already cheap).

    >>> import torch
    >>> from deepprior.mri.nufft import RadialSENSE
    >>> from deepprior.mri.operators import ChannelsToComplex
    >>> from deepprior.mri.sampling import golden_angle_radial
    >>> op = RadialSENSE(golden_angle_radial(2, 5, 16), shape=(16, 16))
    >>> y = op(torch.randn(2, 16, 16, dtype=torch.complex64))
    >>> [type(data_term(op, y, ChannelsToComplex(frames=2), gram=g)[0]).__name__ for g in (True, False)]
    ['GramMisfit', '_Composition']
    """
    if gram and _toeplitz(op):
        m = GramMisfit(op, y, inner=inner)
        return m, m.normal_data
    return op @ inner, y
