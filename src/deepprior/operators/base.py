"""Forward models A as ``torch.nn.Module``s.

An :class:`Operator` maps an image ``x`` (``(B, C, H, W)``) to a measurement ``A x``. A
:class:`LinearOperator` also has an exact adjoint ``Aᴴ`` (``op.adjoint(y)`` or ``op.H(y)``),
composes with ``@`` and has ``gram(x) = Aᴴ A x`` — what CG solvers, data-consistency steps
and adjointness tests need. Where an explicit adjoint is not written, the default one is the
vector-Jacobian product of ``forward``: for a linear map that *is* the adjoint, exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Operator(nn.Module):
    """A (possibly non-linear) forward model ``y = A(x)``."""

    linear: bool = False

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of ``A x`` for an input of ``in_shape`` (computed on the meta device)."""
        return tuple(self.forward(torch.empty(in_shape, device="meta")).shape)


class LinearOperator(Operator):
    """A linear forward model with an exact adjoint.

    Examples
    --------
    >>> import torch
    >>> from deepprior.operators import Mask
    >>> A = Mask(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    >>> x = torch.ones(1, 1, 2, 2)
    >>> (A.H @ A)(x).sum().item()
    3.0
    """

    linear = True

    def adjoint(self, y: Tensor, in_shape: tuple[int, ...] | None = None) -> Tensor:
        """``Aᴴ y``. The default differentiates ``forward``; ``in_shape`` is the shape of x."""
        if in_shape is None:
            in_shape = self.input_shape(tuple(y.shape))
        x0 = torch.zeros(in_shape, dtype=y.dtype, device=y.device)
        _, vjp = torch.func.vjp(self.forward, x0)
        # PyTorch's backward of a linear map applies its conjugate transpose, complex included.
        return vjp(y)[0]

    def input_shape(self, out_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of x for a measurement of ``out_shape``; operators that change size override it."""
        return out_shape

    def select(self, index: Tensor) -> LinearOperator:
        """The operator restricted to the items (frames) ``index`` of a multi-frame problem, for
        mini-batches of frames; operators without a frame axis cannot be split."""
        from ..errors import ConfigError

        raise ConfigError(f"{type(self).__name__} has no frame axis to split into mini-batches; drop batch")

    def gram(self, x: Tensor) -> Tensor:
        """``Aᴴ A x``."""
        return self.adjoint(self.forward(x), tuple(x.shape))

    @property
    def H(self) -> LinearOperator:  # noqa: N802 - the conventional name
        return _Adjoint(self)

    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        return _Composition(self, other)


class _Adjoint(LinearOperator):
    def __init__(self, op: LinearOperator):
        super().__init__()
        self.op = op

    def forward(self, y: Tensor) -> Tensor:
        return self.op.adjoint(y)

    def adjoint(self, x: Tensor, in_shape: tuple[int, ...] | None = None) -> Tensor:
        return self.op.forward(x)


class _Composition(LinearOperator):
    def __init__(self, outer: LinearOperator, inner: LinearOperator):
        super().__init__()
        self.outer, self.inner = outer, inner

    def forward(self, x: Tensor) -> Tensor:
        return self.outer(self.inner(x))

    def select(self, index: Tensor) -> LinearOperator:
        return _Composition(self.outer.select(index), self.inner.select(index))

    def adjoint(self, y: Tensor, in_shape: tuple[int, ...] | None = None) -> Tensor:
        mid_shape = None
        if in_shape is not None:
            mid_shape = self.inner.output_shape(in_shape)
        return self.inner.adjoint(self.outer.adjoint(y, mid_shape), in_shape)


class Identity(LinearOperator):
    """``A = I``: denoising, JPEG artifact removal (data term on the decoded image), flash/no-flash."""

    def forward(self, x: Tensor) -> Tensor:
        return x

    def adjoint(self, y: Tensor, in_shape: tuple[int, ...] | None = None) -> Tensor:
        return y


class PerImage(Operator):
    """Operator ``i`` applied to image ``i`` of an ``(N, C, H, W)`` stack (N independent problems).

    >>> import torch
    >>> from deepprior.operators import Mask
    >>> A = PerImage([Identity(), Mask(torch.zeros(2, 2))])
    >>> A(torch.ones(2, 1, 2, 2)).sum(dim=(1, 2, 3)).tolist()
    [4.0, 0.0]
    """

    def __init__(self, ops):
        super().__init__()
        self.ops = nn.ModuleList(ops)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([op(x[i:i + 1]) for i, op in enumerate(self.ops)])
