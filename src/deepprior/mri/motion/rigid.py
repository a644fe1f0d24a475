"""In-plane rigid transforms of complex images, exact and differentiable: translation as a Fourier phase
ramp, rotation as Paeth's three-pass shear with each shear a 1-D Fourier phase ramp per row or column
(Unser, Thévenaz & Yaroslavsky, IEEE TIP 1995).

Why shears and not bilinear/bicubic resampling: every pass multiplies a 1-D spectrum by unit-modulus
phases, so the transform is unitary on the periodic grid — its adjoint is its inverse, written here
exactly (no interpolation kernel to transpose), it neither blurs nor loses energy, and it is exact for
band-limited objects, which is what a Cartesian k-space acquisition measures. The price is periodicity:
content pushed past an edge wraps round, so the object needs a margin of background (MRI's field of
view has one). Angles are limited to ±45°, where the three shears stay short.

Motion parameters ``(S, 3)`` per shot: ``(dx, dy)`` in pixels along the columns (W) and rows (H), and the
rotation in degrees (counter-clockwise on screen, row 0 at the top), about the FFT centre
``(H // 2, W // 2)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...errors import InputError

MAX_DEGREES = 45.0


def _freqs(n: int, device) -> Tensor:
    return torch.fft.fftfreq(n, device=device) * n  # integer frequencies, FFT order


def _shear(x: Tensor, a: Tensor, axis: int, sign: float) -> Tensor:
    """Shift every line of ``x`` (S, H, W) along ``axis`` (-1: rows move along W; -2: columns move along H) by
    ``sign · a_s · (position − centre)`` pixels, position being the coordinate along the *other* axis."""
    h, w = x.shape[-2:]
    n, m = (w, h) if axis == -1 else (h, w)
    pos = torch.arange(m, device=x.device, dtype=torch.float32) - m // 2
    shift = sign * a[:, None] * pos  # (S, m): the shift of each line
    k = _freqs(n, x.device)
    ramp = torch.exp(torch.complex(torch.zeros((), device=x.device), -2 * math.pi / n * shift[..., None] * k))
    if axis == -2:
        ramp = ramp.transpose(-1, -2)  # (S, H-freq, W)
    return torch.fft.ifft(torch.fft.fft(x, dim=axis) * ramp, dim=axis)


def _translate(x: Tensor, dx: Tensor, dy: Tensor, sign: float) -> Tensor:
    h, w = x.shape[-2:]
    ky, kx = _freqs(h, x.device), _freqs(w, x.device)
    phase = -2 * math.pi * sign * (dy[:, None, None] * ky[:, None] / h + dx[:, None, None] * kx / w)
    ramp = torch.exp(torch.complex(torch.zeros_like(phase), phase))
    return torch.fft.ifft2(torch.fft.fft2(x) * ramp)


def _shear_factors(motion: Tensor) -> tuple[Tensor, Tensor]:
    theta = torch.deg2rad(motion[:, 2])
    return torch.tan(theta / 2), torch.sin(theta)  # content map [[c, s], [-s, c]] on (col, row) = CCW on screen


def check_motion(motion: Tensor, shots: int | None = None) -> Tensor:
    """``motion`` as a float32 ``(S, 3)`` tensor, refused with an :class:`InputError` if it is not one (or not
    ``shots`` rows), not finite, or rotates by more than 45°."""
    m = torch.as_tensor(motion)
    if m.ndim != 2 or m.shape[1] != 3:
        raise InputError(f"motion must be (shots, 3) = (dx px, dy px, rotation °) per shot, got shape {tuple(m.shape)}")
    if shots is not None and m.shape[0] != shots:
        raise InputError(f"motion has {m.shape[0]} shots but the data have {shots}")
    if m.is_complex() or not torch.isfinite(m).all():
        raise InputError("motion must be real and finite")
    if m[:, 2].abs().max() > MAX_DEGREES:
        raise InputError(f"rotations beyond ±{MAX_DEGREES:g}° are not supported (got {float(m[:, 2].abs().max()):.1f}°)")
    return m.float()


def rigid(x: Tensor, motion: Tensor) -> Tensor:
    """Each shot's view of the image: ``x`` ``(H, W)`` (or ``(1, H, W)``) rotated, then translated, by each row
    of ``motion`` ``(S, 3)`` → ``(S, H, W)``. Differentiable in ``x`` and in ``motion``.

    >>> import torch
    >>> x = torch.zeros(16, 16, dtype=torch.complex64); x[8, 9] = 1
    >>> y = rigid(x, torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 90.0]]))
    >>> [divmod(int(v.abs().argmax()), 16) for v in y]  # 2 px right; a quarter turn (row 0 is the top)
    [(8, 11), (7, 8)]
    """
    if x.ndim == 3:
        x = x[0]
    s = motion.shape[0]
    a, b = _shear_factors(motion)
    z = x.to(torch.complex64).expand(s, *x.shape)
    z = _shear(z, a, -1, 1.0)
    z = _shear(z, b, -2, -1.0)
    z = _shear(z, a, -1, 1.0)
    return _translate(z, motion[:, 0], motion[:, 1], 1.0)


def rigid_adjoint(z: Tensor, motion: Tensor) -> Tensor:
    """The exact adjoint of :func:`rigid` (also its inverse, shot by shot), summed over the shots:
    ``Σ_s T_sᴴ z_s`` for ``z`` ``(S, H, W)`` → ``(H, W)``.

    >>> import torch
    >>> m = torch.tensor([[1.5, -0.5, 7.0]])
    >>> x = torch.randn(12, 12, dtype=torch.complex64)
    >>> bool(torch.allclose(rigid_adjoint(rigid(x, m), m), x, atol=1e-5))
    True
    """
    a, b = _shear_factors(motion)
    z = _translate(z, motion[:, 0], motion[:, 1], -1.0)
    z = _shear(z, a, -1, -1.0)
    z = _shear(z, b, -2, 1.0)
    z = _shear(z, a, -1, -1.0)
    return z.sum(0)
