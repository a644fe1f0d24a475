"""Property-based tests (hypothesis) over shapes and dtypes: every operator's adjoint is exact,
``⟨A x, y⟩ = ⟨x, Aᴴ y⟩``, and frame selection commutes with the operator."""

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepprior.mri import CartesianSENSE, ChannelsToComplex, birdcage_maps, cartesian_mask
from deepprior.operators import Blur, Downsample, Identity, Mask
from deepprior.operators.image import gaussian_kernel

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REAL = st.sampled_from([torch.float32, torch.float64])
CPLX = st.sampled_from([torch.complex64, torch.complex128])


def _rand(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_complex:
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        return torch.complex(torch.randn(shape, generator=g, dtype=real), torch.randn(shape, generator=g, dtype=real))
    return torch.randn(shape, generator=g, dtype=dtype)


def _gap(op, x, seed):
    ax = op(x)
    y = _rand(ax.shape, ax.dtype, seed + 1)
    lhs = torch.vdot(ax.flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), op.adjoint(y, tuple(x.shape)).flatten())
    return (abs(lhs - rhs) / max(abs(lhs), 1e-12)).item()


def _tol(dtype):
    return 1e-4 if dtype in (torch.float32, torch.complex64) else 1e-10


@SETTINGS
@given(b=st.integers(1, 2), c=st.integers(1, 4), h=st.integers(1, 24), w=st.integers(1, 24), dtype=REAL,
       seed=st.integers(0, 10_000))
def test_mask_and_identity_adjoint(b, c, h, w, dtype, seed):
    x = _rand((b, c, h, w), dtype, seed)
    m = (torch.rand(h, w, generator=torch.Generator().manual_seed(seed)) > 0.5).float()
    assert _gap(Mask(m).to(dtype), x, seed) < _tol(dtype)
    assert _gap(Identity(), x, seed) < _tol(dtype)


@SETTINGS
@given(factor=st.integers(1, 4), kernel=st.sampled_from(Downsample.KERNELS), hb=st.integers(1, 6),
       wb=st.integers(1, 6), c=st.integers(1, 3), dtype=REAL, seed=st.integers(0, 10_000))
def test_downsample_adjoint(factor, kernel, hb, wb, c, dtype, seed):
    from deepprior.errors import InputError

    x = _rand((1, c, hb * factor, wb * factor), dtype, seed)
    op = Downsample(factor, kernel).to(dtype)
    try:
        gap = _gap(op, x, seed)
    except InputError as e:  # an image smaller than the kernel: a typed, explained refusal
        small = min(hb, wb) < 2 if kernel == "bicubic" else min(hb, wb) * factor + 2 * op.pad[0] < op.kernel.shape[-1]
        assert "too small" in str(e) and small
        return
    assert gap < _tol(dtype) * 10


@SETTINGS
@given(size=st.integers(1, 4).map(lambda k: 2 * k + 1), sigma=st.floats(0.3, 3.0),
       boundary=st.sampled_from(Blur.BOUNDARIES), h=st.integers(9, 20), w=st.integers(9, 20), dtype=REAL,
       seed=st.integers(0, 10_000))
def test_blur_adjoint(size, sigma, boundary, h, w, dtype, seed):
    x = _rand((1, 2, h, w), dtype, seed)
    assert _gap(Blur(gaussian_kernel(sigma, size), boundary).to(dtype), x, seed) < _tol(dtype) * 10


@SETTINGS
@given(t=st.integers(1, 4), coils=st.integers(1, 4), h=st.integers(4, 20), w=st.integers(4, 20), dtype=CPLX,
       seed=st.integers(0, 10_000))
def test_sense_adjoint_and_frame_select(t, coils, h, w, dtype, seed):
    mask = cartesian_mask(t, h, w, accel=2, center=min(2, w), pattern="kt-random", seed=seed)
    maps = birdcage_maps(coils, h, w, dtype=dtype) if coils > 1 else None
    op = CartesianSENSE(mask, maps)
    op.maps = None if maps is None else maps.to(dtype)
    x = _rand((t, h, w), dtype, seed)
    assert _gap(op, x, seed) < _tol(dtype) * 10
    idx = torch.arange(t)[::2]
    assert torch.allclose(op.select(idx)(x[idx]), op(x)[idx])


@SETTINGS
@given(b=st.integers(1, 3), k=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12), dtype=REAL,
       seed=st.integers(0, 10_000))
def test_channels_to_complex_is_a_real_isometry(b, k, h, w, dtype, seed):
    x = _rand((b, 2 * k, h, w), dtype, seed)
    op = ChannelsToComplex(frames=b * k)
    z = op(x)
    assert z.shape == (b * k, h, w)
    assert torch.allclose(torch.linalg.vector_norm(z), torch.linalg.vector_norm(x))
    assert torch.equal(op.adjoint(z, tuple(x.shape)), x)
