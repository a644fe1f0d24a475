import math

import numpy as np

import pytest
import torch

from deepprior.errors import InputError
from deepprior.mri import (CartesianSENSE, ChannelsToComplex, MRIData, PATTERNS, birdcage_maps, cartesian_mask, cg_sense,
                           estimate_maps, fft2c, golden_angle_radial, kt_tv, low_rank_plus_sparse, simulate, zero_filled)


def _cplx(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=g, dtype=torch.float64),
                         torch.randn(shape, generator=g, dtype=torch.float64))


def _gap(op, x):
    ax = op(x)
    y = _cplx(ax.shape, 9)
    lhs = torch.vdot(ax.flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), op.adjoint(y, tuple(x.shape)).flatten())
    return abs(lhs - rhs).item() / abs(lhs).item()


@pytest.mark.parametrize("coils", [1, 4])
@pytest.mark.parametrize("frames", [1, 5])
def test_sense_adjoint(coils, frames):
    mask = cartesian_mask(frames, 16, 12, accel=3, center=4, pattern="kt-random", seed=0)
    maps = birdcage_maps(coils, 16, 12, dtype=torch.complex128) if coils > 1 else None
    op = CartesianSENSE(mask, maps)
    op.mask = op.mask.double()
    assert _gap(op, _cplx((frames, 16, 12), 1)) < 1e-10
    if frames == 1:
        assert _gap(op, _cplx((16, 12), 2)) < 1e-10  # a static slice without a frame axis


def test_channels_to_complex_adjoint_is_real_adjoint():
    op = ChannelsToComplex(frames=3)
    x = torch.randn(2, 6, 5, 4, dtype=torch.float64)
    z = op(x)
    assert z.shape == (6, 5, 4)
    w = _cplx(z.shape, 3)
    lhs = torch.vdot(z.flatten(), w.flatten()).real  # real inner product for an R-linear map
    rhs = (x * op.adjoint(w, tuple(x.shape))).sum()
    assert abs(lhs - rhs) < 1e-10


def test_fft_is_unitary_and_centred():
    x = torch.zeros(8, 8, dtype=torch.complex64)
    x[...] = 1
    k = fft2c(x)
    assert abs(k[4, 4].item() - 8) < 1e-5 and k.abs().sum() - 8 < 1e-4  # DC at the centre, orthonormal


def test_birdcage_maps_normalised_and_smooth():
    s = birdcage_maps(8, 32, 32)
    assert torch.allclose((s.abs() ** 2).sum(0), torch.ones(32, 32), atol=1e-5)
    # smooth: > 90 % of the maps' energy in the central 8×8 of k-space (6 % of it; white noise: 6 %)
    k = fft2c(s)
    low = (k[:, 12:20, 12:20].abs() ** 2).sum() / (k.abs() ** 2).sum()
    assert low > 0.9, low


def test_estimated_maps_recover_simulated_ones():
    img = torch.zeros(48, 48, dtype=torch.complex64)
    img[8:40, 10:38] = 1.0
    true = birdcage_maps(6, 48, 48)
    k = fft2c(img * true)
    est = estimate_maps(k, center=24)
    inside = img.abs() > 0
    # maps are defined up to a common phase: compare after removing it at one pixel
    ph = (est[:, 24, 24] / true[:, 24, 24]).angle().mean()
    err = (est * torch.exp(-1j * ph) - true)[:, inside].abs().mean()
    assert err < 0.1
    assert torch.allclose((est.abs() ** 2).sum(0)[inside], torch.ones(int(inside.sum())), atol=1e-4)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_sampling_patterns(pattern):
    m = cartesian_mask(6, 32, 32, accel=4, center=6, pattern=pattern, seed=1)
    assert m.shape == (6, 32, 32) and set(m.unique().tolist()) <= {0.0, 1.0}
    r = m.numel() / m.sum().item()
    assert 2 < r < 8, r  # close to the requested acceleration
    if pattern == "poisson2d":
        assert m[:, 13:19, 13:19].min() == 1  # a fully sampled centre block
    else:
        assert m[:, :, 13:19].min() == 1 or pattern == "radial-cartesian"  # fully sampled centre lines
    assert torch.equal(m, cartesian_mask(6, 32, 32, accel=4, center=6, pattern=pattern, seed=1))
    if pattern in ("kt-random", "kt-shifted", "vista", "poisson", "poisson2d"):
        assert not torch.equal(m[0], m[1])  # k-t patterns differ between frames


def test_golden_angle_trajectory():
    tr = golden_angle_radial(2, 3, 8)
    assert tr.shape == (2, 48, 2) and tr.abs().max() <= math.pi
    a0 = torch.atan2(tr[0, 15, 0], tr[0, 15, 1])  # spoke 0, a sample right of centre
    a1 = torch.atan2(tr[0, 31, 0], tr[0, 31, 1])  # spoke 1
    assert abs(math.degrees((a1 - a0).item()) % 180 - 111.246 % 180) < 1e-3


def test_simulation_and_baselines_order():
    """On a smooth dynamic phantom at 4×: zero-filled < CG-SENSE and L+S ≫ zero-filled."""
    t, h, w = 8, 32, 32
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    frames = []
    for i in range(t):
        r = 0.35 + 0.1 * math.sin(2 * math.pi * i / t)
        frames.append(0.3 * ((xx**2 + yy**2) < 0.8) + 0.7 * ((xx**2 + yy**2) < r**2))
    series = torch.stack(frames)
    d = simulate(series, coils=4, pattern="kt-random", accel=4, center=4, snr_db=50, seed=0)
    op = d.operator

    def psnr(x):
        return 10 * math.log10(1 / ((x.abs() - d.gt.abs()) ** 2).mean().item())

    zf, cgs = psnr(zero_filled(op, d.kspace)), psnr(cg_sense(op, d.kspace, iters=10))
    ls = psnr(sum(low_rank_plus_sparse(op, d.kspace, iters=30)))
    kt = psnr(kt_tv(op, d.kspace, iters=50, weight=0.001, temporal=0.003))
    assert cgs > zf and ls > zf + 3 and kt > zf + 8, (zf, cgs, ls, kt)


def test_mridata_validation():
    k = torch.zeros(2, 3, 8, 8, dtype=torch.complex64)
    with pytest.raises(InputError, match="coil maps"):
        MRIData(k, torch.ones(2, 8, 8), birdcage_maps(3, 8, 6))
    with pytest.raises(InputError, match="needs coil maps"):
        MRIData(k, torch.ones(2, 8, 8))
    bad = k.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        MRIData(bad, torch.ones(2, 8, 8), birdcage_maps(3, 8, 8))
    with pytest.raises(InputError, match="mask shape"):
        MRIData(k, torch.ones(3, 8, 8), birdcage_maps(3, 8, 8))


@pytest.mark.parametrize("backend", ["finufft", "torchkbnufft"])
def test_radial_adjoint_ndft_and_autograd(backend):
    from deepprior.mri.nufft import RadialSENSE

    n = 12
    tr = golden_angle_radial(2, 3, n)
    maps = birdcage_maps(3, n, n, dtype=torch.complex128)
    op = RadialSENSE(tr, maps, backend=backend, eps=1e-10)
    x = _cplx((2, n, n), 4)
    assert _gap(op, x) < 1e-5
    # Against a direct (slow) NDFT on the tiny grid: y = Σ_r S x(r) e^{-i k·r} / √(HW)
    r = torch.arange(n, dtype=torch.float64) - n // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    phase = torch.exp(-1j * (tr.double()[..., 0, None, None] * yy + tr.double()[..., 1, None, None] * xx))
    ndft = torch.einsum("tkhw,tchw->tck", phase, x[:, None] * maps) / n
    tol = 1e-6 if backend == "finufft" else 5e-3  # torchkbnufft interpolates from a table
    assert (op(x) - ndft).abs().max() / ndft.abs().max() < tol
    xr = x.clone().requires_grad_(True)
    y = _cplx(ndft.shape, 5)
    (op(xr).conj() * y).real.sum().backward()
    assert torch.allclose(xr.grad, op.adjoint(y), atol=1e-8)


@pytest.mark.parametrize("backend", ["finufft", "torchkbnufft"])
def test_radial_toeplitz_gram_matches_the_nufft_pair(backend):
    """AᴴA and AᴴWA by the point-spread convolution on the double grid equal the adjoint NUFFT of the forward one,
    for all frames, a selection of frames (its kernel is the parent's, sliced) and a 2-D image."""
    from deepprior.mri.nufft import RadialSENSE, Weighted, pipe_dcf

    n = 14
    tr = golden_angle_radial(3, 4, n)
    maps = birdcage_maps(3, n, n)
    op, ref = RadialSENSE(tr, maps, backend=backend), RadialSENSE(tr, maps, backend=backend, toeplitz=False)
    x = _cplx((3, n, n), 6).to(torch.complex64)
    w = pipe_dcf(tr, (n, n)) * torch.rand(3, tr.shape[1], generator=torch.Generator().manual_seed(0))
    tol = 1e-5 if backend == "finufft" else 2e-3  # torchkbnufft interpolates from a table
    for a, b in ((op, ref), (Weighted(op, w), Weighted(ref, w))):
        want = b.gram(x)
        assert (a.gram(x) - want).norm() / want.norm() < tol
        i = torch.tensor([2, 0])
        sub = a.select(i)
        assert sub._kernel is not None  # sliced from the parent's, not recomputed
        assert (sub.gram(x[i]) - b.select(i).gram(x[i])).norm() / want.norm() < tol
    one = op.select(torch.tensor([1]))
    want = ref.select(torch.tensor([1])).gram(x[1:2])[0]
    assert one.gram(x[1]).shape == (n, n)
    assert (one.gram(x[1]) - want).norm() / want.norm() < tol


def test_pipe_dcf_flattens_the_psf():
    """With Pipe weights, Aᴴ W A of a constant image is flatter than without any weights."""
    from deepprior.mri.nufft import RadialSENSE, pipe_dcf

    tr = golden_angle_radial(1, 64, 32)
    w = pipe_dcf(tr, (32, 32))
    op = RadialSENSE(tr, shape=(32, 32))
    ones = torch.ones(1, 32, 32, dtype=torch.complex64)
    plain = op.adjoint(op(ones)).abs()[0, 8:24, 8:24]
    comp = op.adjoint(w[:, None] * op(ones)).abs()[0, 8:24, 8:24]
    assert comp.std() / comp.mean() < plain.std() / plain.mean()
    assert abs(comp.mean().item() - 1) < 0.1


def test_mri_cli_simulate_recon_and_errors(tmp_path, capsys):
    import numpy as np

    from deepprior.cli import main

    yy, xx = np.mgrid[-1:1:24j, -1:1:24j]
    series = np.stack([(xx**2 + yy**2 < 0.5 + 0.1 * np.sin(t)).astype(float) for t in range(4)], axis=-1)  # (H, W, T)
    import scipy.io as sio

    sio.savemat(tmp_path / "s.mat", {"img": series})
    k = tmp_path / "k.h5"
    assert main(["mri", "simulate", str(tmp_path / "s.mat"), "-o", str(k), "--coils", "4", "--accel", "3",
                 "--center", "4"]) == 0
    out = tmp_path / "r.nii.gz"
    assert main(["mri", "recon", str(k), "--method", "cgsense", "-o", str(out), "--gif", str(tmp_path / "c.gif"),
                 "--montage", str(tmp_path / "m.png")]) == 0
    assert out.exists() and (tmp_path / "c.gif").exists() and (tmp_path / "m.png").exists()
    assert "PSNR" in capsys.readouterr().out
    import nibabel as nib

    assert nib.load(out).shape == (24, 24, 4)
    kr = tmp_path / "kr.h5"
    assert main(["mri", "simulate", str(tmp_path / "s.mat"), "-o", str(kr), "--pattern", "radial", "--spokes", "5",
                 "--coils", "2"]) == 0
    assert main(["mri", "recon", str(kr), "--method", "zerofill", "-o", str(tmp_path / "z.npy")]) == 0
    assert np.load(tmp_path / "z.npy").shape == (4, 24, 24)
    capsys.readouterr()
    # bad inputs: one line, exit 2
    np.save(tmp_path / "bad.npy", np.full((3, 8, 8), np.nan))
    sio.savemat(tmp_path / "two.mat", {"a": np.ones((4, 4, 2)), "b": np.ones((4, 4, 2))})
    import h5py

    with h5py.File(tmp_path / "nok.h5", "w") as f:
        f["other"] = np.ones(3)
    with h5py.File(tmp_path / "shape.h5", "w") as f:
        f["kspace"] = np.ones((2, 2, 8, 8), np.complex64)
        f["mask"] = np.ones((3, 8, 8), np.float32)
        f["maps"] = np.ones((2, 8, 8), np.complex64)
        f.attrs["format"] = "deepprior-mri-1"
    cases = [
        (["mri", "simulate", str(tmp_path / "bad.npy"), "-o", str(tmp_path / "x.h5")], "NaN"),
        (["mri", "simulate", str(tmp_path / "two.mat"), "-o", str(tmp_path / "x.h5")], "--key"),
        (["mri", "recon", str(tmp_path / "nok.h5"), "-o", str(tmp_path / "x.h5")], "no 'kspace'"),
        (["mri", "recon", str(tmp_path / "shape.h5"), "-o", str(tmp_path / "x.h5")], "mask shape"),
        (["mri", "recon", str(k), "-o", str(tmp_path / "x.h5"), "--gt", str(tmp_path / "two.mat"), "--key", "a"], "--gt"),
        (["mri", "recon", str(k), "-o", str(out)], "exists"),
    ]
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x.h5").exists()


def test_static_dip_mri_fits_every_frame_at_the_reference_scale():
    """Frames fitted together (one batched run): every frame's own loss falls, the image lands on the
    reference's scale (the k-space scaling is undone), and a frame's result does not depend on the others."""
    from deepprior.mri.dip import dip_static

    img = torch.zeros(2, 24, 24)
    img[0, 6:18, 5:19] = 1.0
    img[1, 4:16, 8:20] = 0.8
    d = simulate(img, coils=2, pattern="vd", accel=2, center=6, seed=0)
    preset = {"net": {"name": "conv_decoder", "channels": 8, "layers": 3, "need_sigmoid": False},
              "code": {"kind": "noise", "scale": 0.1}, "reg_noise_std": 0.0,
              "fit": {"iters": 60, "lr": 0.01, "ema": None, "backtrack": False}}
    x, info = dip_static(d, preset=preset, device="cpu")
    assert x.shape == (2, 24, 24) and x.is_complex()
    first, last = info["frame_loss"][0], info["frame_loss"][-1]
    assert len(info["frame_loss"]) == 60 and all(b < 0.5 * a for a, b in zip(first, last))
    for t in range(2):  # scale: ‖x_t‖ within 25 % of ‖gt_t‖
        ratio = float(x[t].abs().norm() / d.gt[t].abs().norm())
        assert 0.75 < ratio < 1.25, (t, ratio)
    # independence, over few steps: the batched and the single network differ in float rounding (1e-6), and
    # this tiny ReLU/BatchNorm fit amplifies that chaotically after a few Adam steps; coupled frames would
    # differ at once by orders of magnitude more
    preset["fit"]["iters"] = 3
    x2, i2 = dip_static(d, preset=preset, device="cpu")
    x1, i1 = dip_static(d.frame(1), preset=preset, device="cpu")
    torch.testing.assert_close(i1["network_image"][0], i2["network_image"][1], rtol=1e-4, atol=1e-5)
    # the data-consistency weight is chosen per frame on that frame's own held-out samples; its CG solve (which
    # stops at a tolerance) turns the 1e-6 rounding into ~1e-4
    assert i1["dc"] == i2["dc"][1:]
    torch.testing.assert_close(x1[0], x2[1], rtol=0, atol=2e-3)


ISMRMRD_XML = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
<experimentalConditions><H1resonanceFrequency_Hz>63500000</H1resonanceFrequency_Hz></experimentalConditions>
<encoding>
<encodedSpace><matrixSize><x>{nx}</x><y>{ny}</y><z>1</z></matrixSize>
<fieldOfView_mm><x>300</x><y>150</y><z>6</z></fieldOfView_mm></encodedSpace>
<reconSpace><matrixSize><x>{rx}</x><y>{ny}</y><z>1</z></matrixSize>
<fieldOfView_mm><x>150</x><y>150</y><z>6</z></fieldOfView_mm></reconSpace>
<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>{nym}</maximum><center>{nyc}</center>
</kspace_encoding_step_1></encodingLimits>
<trajectory>cartesian</trajectory>
</encoding>
</ismrmrdHeader>"""


def test_ismrmrd_reader_roundtrip(tmp_path):
    """Write simulated 2×-readout-oversampled k-space as ISMRMRD acquisitions; the reader puts every line
    back, removes the oversampling and gives data whose CG-SENSE recon matches the truth."""
    import ismrmrd

    from deepprior.mri.io import load_data
    from deepprior.mri.metrics import mri_metrics

    t, c, rx, ny = 2, 3, 16, 16
    nx = 2 * rx
    img = torch.zeros(t, nx, ny, dtype=torch.complex64)
    img[:, 12:20, 4:12] = 1.0
    img[1, 12:20, 4:12] = 0.5
    maps = birdcage_maps(c, nx, ny)
    full = fft2c(img[:, None] * maps)  # (T, C, nx, ny)
    p = tmp_path / "raw.h5"
    d = ismrmrd.Dataset(str(p), "dataset", create_if_needed=True)
    d.write_xml_header(ISMRMRD_XML.format(nx=nx, ny=ny, rx=rx, nym=ny - 1, nyc=ny // 2))
    rng = np.random.default_rng(0)
    for _ in range(16):  # unit-variance white noise scans: whitening must leave the data (nearly) as they are
        n = (rng.standard_normal((c, nx)) + 1j * rng.standard_normal((c, nx))) / np.sqrt(2)
        noise = ismrmrd.Acquisition.from_array(n.astype(np.complex64))
        noise.setFlag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
        d.append_acquisition(noise)
    for ph in range(t):
        for ky in range(ny):
            a = ismrmrd.Acquisition.from_array(full[ph, :, :, ky].numpy())
            a.idx.kspace_encode_step_1 = ky
            a.idx.phase = ph
            d.append_acquisition(a)
    d.close()
    data = load_data(p)
    assert data.kspace.shape == (t, c, rx, ny) and data.mask.min() == 1 and data.meta["whitened"]
    x = cg_sense(data.operator, data.kspace, iters=30)
    ref = img[:, 8:24, :]  # the central FOV along the readout
    m = mri_metrics(x * data.meta["scale"], ref)
    assert m["nrmse"] < 0.15, m


def test_dicom_and_formats(tmp_path):
    import pydicom

    from deepprior.mri.io import save_recon

    x = torch.rand(3, 8, 10) * torch.exp(1j * torch.rand(3, 8, 10))
    save_recon(tmp_path / "r.dcm", x)
    ds = pydicom.dcmread(tmp_path / "r.dcm")
    arr = ds.pixel_array * float(ds.RescaleSlope)
    assert arr.shape == (3, 8, 10) and np.abs(arr - x.abs().numpy()).max() < 1e-3
    save_recon(tmp_path / "r.npy", x)
    assert np.allclose(np.load(tmp_path / "r.npy"), x.numpy())
    with pytest.raises(InputError, match="unsupported output"):
        save_recon(tmp_path / "r.xyz", x)


@pytest.mark.parametrize("shape", [(3, 8, 6), (2, 6, 10), (4, 4), (5, 7), (2, 130, 64), (3, 6, 7)])
def test_centred_fft_equals_the_shift_definition(shape):
    # Even sizes use a ±1 checkerboard instead of rolls; both must equal fftshift ∘ F ∘ ifftshift.
    from deepprior.mri.fft import fft2c, ifft2c

    x = torch.randn(*shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    sh = lambda f, v: torch.fft.fftshift(f(torch.fft.ifftshift(v, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))  # noqa: E731
    assert torch.allclose(fft2c(x), sh(torch.fft.fft2, x), atol=1e-5)
    assert torch.allclose(ifft2c(x), sh(torch.fft.ifft2, x), atol=1e-5)


def test_ismrmrd_counters_are_kept_apart_never_overwritten(tmp_path):
    import ismrmrd

    from deepprior.errors import InputError
    from deepprior.mri.io import load_data

    c, n = 2, 16
    maps = birdcage_maps(c, n, n)

    def write(name, counter):
        p = tmp_path / name
        d = ismrmrd.Dataset(str(p), "dataset", create_if_needed=True)
        d.write_xml_header(ISMRMRD_XML.format(nx=n, ny=n, rx=n, nym=n - 1, nyc=n // 2))
        for v, level in ((0, 1.0), (1, 0.5)):
            full = fft2c(torch.full((1, n, n), level, dtype=torch.complex64)[:, None] * maps)
            for ky in range(n):
                a = ismrmrd.Acquisition.from_array(full[0, :, :, ky].numpy())
                a.idx.kspace_encode_step_1 = ky
                setattr(a.idx, counter, v)
                d.append_acquisition(a)
        d.close()
        return p

    with pytest.raises(InputError, match="average"):
        load_data(write("avg.h5", "average"))
    p = write("sli.h5", "slice")
    with pytest.raises(InputError, match="2 slices"):
        load_data(p)
    s0, s1 = load_data(p, slice_index=0), load_data(p, slice_index=1)
    assert s0.kspace.shape == (1, c, n, n) and s0.mask.min() == 1
    # each slice is scaled on its own (max |k| = 1), so compare their raw scales: slice 1 is half as bright
    assert s1.meta["scale"] == pytest.approx(0.5 * s0.meta["scale"], rel=1e-4)
    # `mri recon` takes every slice by default, read once, on one intensity scale for the volume
    from deepprior.cli import main

    out = tmp_path / "vol.npy"
    assert main(["mri", "recon", str(p), "--method", "zerofill", "-o", str(out), "-q"]) == 0
    vol = np.abs(np.load(out))
    assert vol.shape == (2, n, n)
    assert vol[1].mean() == pytest.approx(0.5 * vol[0].mean(), rel=1e-3)


def test_mri_recon_says_first_what_runs_where_and_for_how_long(tmp_path, capsys):
    import re

    import numpy as np

    from deepprior.cli import main

    np.save(tmp_path / "s.npy", np.random.default_rng(0).random((3, 16, 16)).astype(np.float32))
    k = tmp_path / "k.h5"
    assert main(["mri", "simulate", str(tmp_path / "s.npy"), "-o", str(k), "--coils", "2", "--accel", "2",
                 "--center", "4"]) == 0
    capsys.readouterr()
    assert main(["mri", "recon", str(k), "--method", "tddip", "--iters", "24", "-o", str(tmp_path / "t.npy"),
                 "--device", "cpu"]) == 0
    first = capsys.readouterr().err.strip().splitlines()[0]
    assert re.fullmatch(r"mri tddip: preset tddip-cpu on cpu( in bfloat16)?, up to 8 sweeps of 3 frames, stops by "
                        r"itself: at most .+ \([\d.]+ s/sweep\)", first), first
    assert main(["mri", "recon", str(k), "--method", "tv", "-o", str(tmp_path / "v.npy"), "--device", "cpu"]) == 0
    assert capsys.readouterr().err.startswith("mri tv: ADMM on cpu, up to 100 iterations: about ")
    # --quiet: no line, and the direct methods take no time worth announcing
    assert main(["mri", "recon", str(k), "--method", "tv", "-o", str(tmp_path / "q.npy"), "-q"]) == 0
    assert main(["mri", "recon", str(k), "--method", "zerofill", "-o", str(tmp_path / "z.npy")]) == 0
    assert capsys.readouterr().err == ""
