import math

import numpy as np
import pytest
import torch

from deepprior.errors import ConfigError, InputError
from deepprior.operators import Blur, Downsample, Identity, Mask, gaussian_kernel, lanczos_kernel


def _adjoint_gap(op, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    op = op.double()
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    ax = op(x)
    y = torch.randn(ax.shape, generator=g, dtype=torch.float64)
    lhs = (ax * y).sum()
    rhs = (x * op.adjoint(y, tuple(x.shape))).sum()
    return abs(float(lhs - rhs)) / abs(float(lhs))


@pytest.mark.parametrize("kernel", Downsample.KERNELS)
@pytest.mark.parametrize("factor", [2, 3, 4, 8])
def test_downsample_adjoint(kernel, factor):
    assert _adjoint_gap(Downsample(factor, kernel), (1, 3, 8 * factor, 5 * factor)) < 1e-5


@pytest.mark.parametrize("boundary", Blur.BOUNDARIES)
@pytest.mark.parametrize("kshape", [(5, 5), (4, 7), (1, 3)])
def test_blur_adjoint(boundary, kshape):
    k = torch.rand(kshape, generator=torch.Generator().manual_seed(1)) + 0.01
    assert _adjoint_gap(Blur(k, boundary), (2, 3, 17, 23)) < 1e-5


def test_mask_identity_and_composition_adjoint():
    m = torch.rand(19, 21, generator=torch.Generator().manual_seed(2)) > 0.4
    assert _adjoint_gap(Mask(m), (1, 3, 19, 21)) < 1e-5
    assert _adjoint_gap(Identity(), (1, 2, 5, 7)) < 1e-5
    # Composition: mask after blur, adjoint = blurᴴ maskᴴ.
    comp = Mask(m) @ Blur(gaussian_kernel(1.5))
    assert _adjoint_gap(comp, (1, 3, 19, 21)) < 1e-5
    comp2 = Downsample(2) @ Blur(gaussian_kernel(1.0))
    assert _adjoint_gap(comp2, (1, 1, 20, 22)) < 1e-5


def test_lanczos_kernel_values():
    """The reference kernel: sinc(d)·sinc(d/2) at d = (i - w/2)/factor, w = 4·factor + 1, phase ½."""
    for factor in (2, 4, 8):
        k = lanczos_kernel(factor)
        assert k.shape == (4 * factor, 4 * factor)
        assert math.isclose(k.sum(), 1.0, abs_tol=1e-12)
        np.testing.assert_allclose(k, k.T)
        np.testing.assert_allclose(k, k[::-1, ::-1])
        # Direct evaluation of the Lanczos-2 window formula, written out independently.
        w = 4 * factor + 1
        vals = []
        for i in range(1, w):
            d = abs(i + 0.5 - (w + 1) / 2) / factor
            vals.append(1.0 if d == 0 else 2 * math.sin(math.pi * d) * math.sin(math.pi * d / 2) / (math.pi**2 * d * d))
        one_d = np.array(vals)
        expect = np.outer(one_d, one_d)
        np.testing.assert_allclose(k, expect / expect.sum(), rtol=1e-12)
    # Known values for factor 4: taps at ±1.875 are negative lobes, the centre taps the largest.
    k4 = lanczos_kernel(4)
    row = k4.sum(axis=0)
    assert row[0] < 0 and row[7] == row.max()
    np.testing.assert_allclose(row[:8], row[8:][::-1])
    # Hand-computed: the 1-D taps sinc(d)·sinc(d/2) at d = 0.125…1.875 sum to 2.01961 per side,
    # so the centre tap is 0.96825/4.03922 = 0.23971 and the outer one -0.00430/4.03922.
    assert math.isclose(float(row[7]), 0.23971, rel_tol=1e-3)
    assert math.isclose(float(row[0]), -0.001065, rel_tol=1e-2)
    assert math.isclose(float(k4[7, 7]), 0.23971**2, rel_tol=2e-3)


def test_downsample_shapes_and_constants():
    x = torch.full((1, 3, 32, 48), 0.7)
    for kern in Downsample.KERNELS:
        y = Downsample(4, kern)(x)
        assert y.shape == (1, 3, 8, 12)
        assert torch.allclose(y, torch.full_like(y, 0.7), atol=1e-5)  # kernels sum to 1
    with pytest.raises(InputError, match="not divisible"):
        Downsample(3)(torch.rand(1, 1, 10, 9))
    with pytest.raises(ConfigError):
        Downsample(2, "nope")


def test_blur_is_a_convolution():
    k = torch.zeros(3, 3)
    k[0, 1] = 1.0  # tap at offset m = -1 row: a convolution y[i] = Σ k[m] x[i - m] reads x[i + 1]
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    y = Blur(k, "circular")(x)
    assert torch.equal(y[0, 0, :-1], x[0, 0, 1:])  # a correlation would read x[i - 1] instead
    with pytest.raises(InputError):
        Blur(-torch.ones(3, 3))
    with pytest.raises(InputError):
        Mask(torch.tensor([[0.5, 1.0]]))
