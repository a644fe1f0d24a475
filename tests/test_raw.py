"""Measured k-space (issue #14, first part): readers on the shipped raw files, ESPIRiT maps, whitening,
coil compression, and `mri recon` on the raw files with no option but the method."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepprior.cli import main
from deepprior.mri.calib import calibration_region, compression_matrix, espirit_maps, whiten, whitening_matrix
from deepprior.mri.raw import prepare, read_raw, write_cfl


@pytest.fixture
def raw_dir(shared_data):
    return shared_data / "mri" / "raw"


def test_twix_reader(raw_dir):
    r = read_raw(raw_dir / "siemens_gre_2ch_phantom.dat")
    assert tuple(r.kspace.shape) == (1, 2, 160, 160) and r.kspace.dtype == torch.complex64
    energy = r.kspace[0].abs().square().sum(0)
    assert tuple(int(i) for i in np.unravel_index(int(energy.argmax()), energy.shape)) == (80, 80)  # centred DC
    assert bool((r.kspace != 0).all())  # fully sampled
    assert r.meta["voxel_mm"] == pytest.approx([1.25, 1.25, 4.0])


def test_npy_and_bart_readers_agree(raw_dir, tmp_path):
    k = np.load(raw_dir / "brain_8coil_poisson8x_ksp.npy")
    write_cfl(tmp_path / "brain", k.transpose(1, 2, 0)[:, :, None])  # BART: (H, W, 1, coils)
    a, b = read_raw(raw_dir / "brain_8coil_poisson8x_ksp.npy"), read_raw(tmp_path / "brain.hdr")
    assert torch.equal(a.kspace, b.kspace) and tuple(a.kspace.shape) == (1, 8, 230, 180)
    d = prepare(a)
    assert d.meta["acquired_fraction"] == pytest.approx(0.1243, abs=1e-3) and d.mask.shape == (1, 230, 180)


def test_espirit_maps_on_the_real_brain_are_normalised_and_smooth(raw_dir):
    k = read_raw(raw_dir / "brain_8coil_poisson8x_ksp.npy").kspace[0]
    assert calibration_region(k.abs().sum(0) > 0) == (slice(103, 127), slice(78, 102))
    s = espirit_maps(k)
    energy = s.abs().square().sum(0)
    support = energy > 0
    assert 0.5 < support.float().mean() < 0.95  # the head, not the background
    assert torch.allclose(energy[support], torch.ones(()), atol=1e-4)
    inner = support[1:-1, 1:-1] & support[2:, 1:-1] & support[:-2, 1:-1]
    step = (s[:, 2:, 1:-1] - s[:, 1:-1, 1:-1]).abs().square().sum(0).sqrt()
    assert float(step[inner].median()) < 0.05  # neighbouring pixels' maps differ by a few percent


def test_whitening_makes_correlated_noise_white():
    g = torch.Generator().manual_seed(0)
    mix = torch.tensor([[1.0, 0, 0], [0.7, 0.5, 0], [0.2, 0.4, 0.9]], dtype=torch.complex64)
    noise = mix @ torch.complex(torch.randn(3, 40000, generator=g), torch.randn(3, 40000, generator=g))
    data = mix @ torch.complex(torch.randn(3, 40000, generator=g), torch.randn(3, 40000, generator=g))
    w = whitening_matrix(noise)  # estimated on a noise scan, applied to other samples
    white = whiten(data, w, coil_dim=0)
    cov = white @ white.conj().T / white.shape[1]
    assert torch.allclose(cov, torch.eye(3, dtype=cov.dtype), atol=0.05)


def test_coil_compression_keeps_the_energy(raw_dir):
    k = read_raw(raw_dir / "brain_8coil_poisson8x_ksp.npy").kspace[0]
    m, kept = compression_matrix(k, 6, coil_dim=0)
    assert kept >= 0.99
    assert float(whiten(k, m, coil_dim=0).abs().square().sum() / k.abs().square().sum()) == pytest.approx(kept, rel=1e-4)


@pytest.mark.parametrize("name", ["siemens_gre_2ch_phantom.dat", "brain_8coil_poisson8x_ksp.npy"])
def test_mri_recon_runs_on_raw_files_with_only_the_method(raw_dir, tmp_path, capsys, name):
    out = tmp_path / "x.nii.gz"
    assert main(["mri", "recon", str(raw_dir / name), "--method", "cgsense", "-o", str(out)]) == 0
    import nibabel as nib

    x = np.asarray(nib.load(out).dataobj)
    assert x.shape[:2] in ((160, 160), (230, 180)) and np.isfinite(x).all() and x.max() > 0


def test_bad_raw_files_give_one_line(raw_dir, tmp_path, capsys):
    (tmp_path / "trunc.dat").write_bytes((raw_dir / "siemens_gre_2ch_phantom.dat").read_bytes()[:50000])
    k = np.load(raw_dir / "brain_8coil_poisson8x_ksp.npy")
    k[:, 100:130, 75:105] = 0  # no calibration region left
    np.save(tmp_path / "nocal.npy", k)
    np.save(tmp_path / "real.npy", np.ones((2, 16, 16)))
    for f, msg in (("trunc.dat", "twix"), ("nocal.npy", "calibration"), ("real.npy", "complex")):
        assert main(["mri", "recon", str(tmp_path / f), "--method", "cgsense", "-o", str(tmp_path / "o.npy")]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "o.npy").exists()


def test_retrospective_undersampling_of_measured_kspace(raw_dir, tmp_path, capsys):
    """`mri simulate` on a fully sampled twix file keeps the fully sampled reconstruction as the reference; the
    prospectively undersampled brain and a too small calibration region are refused with one line."""
    out = tmp_path / "r3.h5"
    phantom = str(raw_dir / "siemens_gre_2ch_phantom.dat")
    assert main(["mri", "simulate", phantom, "--pattern", "vd", "--accel", "3", "--seed", "0", "-o", str(out)]) == 0
    from deepprior.mri.io import load_data

    d = load_data(out)
    assert d.gt is not None and float(d.gt.abs().max()) == pytest.approx(1.0) and d.acceleration == pytest.approx(3, rel=0.05)
    capsys.readouterr()
    assert main(["mri", "recon", str(out), "--method", "zerofill", "-o", str(tmp_path / "z.npy")]) == 0
    assert " | PSNR " in capsys.readouterr().out.strip().splitlines()[-1]
    for argv, msg in ((["--pattern", "vd", "--center", "8"], "calibration region"),
                      (["--pattern", "radial"], "Cartesian")):
        assert main(["mri", "simulate", phantom, *argv, "-o", str(tmp_path / "x.h5")]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err
    assert main(["mri", "simulate", str(raw_dir / "brain_8coil_poisson8x_ksp.npy"), "-o", str(tmp_path / "x.h5")]) == 2
    assert "already undersampled" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_every_slice_by_default_geometry_and_compression(raw_dir, tmp_path, capsys):
    k = np.load(raw_dir / "brain_8coil_poisson8x_ksp.npy")
    np.save(tmp_path / "two.npy", np.stack([k, k[::-1]]))  # two slices: the second with its coils reversed
    out = tmp_path / "x.npy"
    assert main(["mri", "recon", str(tmp_path / "two.npy"), "--method", "zerofill", "-o", str(out), "-q"]) == 0
    x = np.load(out)
    assert x.shape == (2, 230, 180) and np.allclose(np.abs(x[1]), np.abs(x[0]), atol=1e-3)
    assert "2 slices" in capsys.readouterr().out
    assert main(["mri", "recon", str(tmp_path / "two.npy"), "--slice", "1", "--method", "zerofill", "-o",
                 str(tmp_path / "one.npy")]) == 0
    assert np.allclose(np.load(tmp_path / "one.npy")[0], x[1])
    nii = tmp_path / "p.nii.gz"
    assert main(["mri", "recon", str(raw_dir / "siemens_gre_2ch_phantom.dat"), "--method", "zerofill", "-o",
                 str(nii)]) == 0
    import nibabel as nib

    assert nib.load(nii).header.get_zooms()[:3] == pytest.approx((1.25, 1.25, 4.0))
    dcm = tmp_path / "p.dcm"
    assert main(["mri", "recon", str(raw_dir / "siemens_gre_2ch_phantom.dat"), "--method", "zerofill", "-o",
                 str(dcm)]) == 0
    import pydicom

    ds = pydicom.dcmread(dcm)
    assert [float(v) for v in ds.PixelSpacing] == [1.25, 1.25] and float(ds.SliceThickness) == 4.0
    capsys.readouterr()
    assert main(["mri", "recon", str(raw_dir / "brain_8coil_poisson8x_ksp.npy"), "--method", "cgsense", "--compress",
                 "6", "-o", str(tmp_path / "c.npy")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "6 virtual coils" in line and float(line.split("(")[-1].split(" %")[0]) >= 99.0


def test_simulation_without_the_inverse_crime(raw_dir, tmp_path, capsys):
    """Measured (ESPIRiT) maps and a 2× finer object: the data are no longer exactly in the range of the
    reconstruction's operator, so even fully sampled CG-SENSE leaves a residual (the inverse crime leaves none)."""
    k = read_raw(raw_dir / "brain_8coil_poisson8x_ksp.npy").kspace[0]
    np.save(tmp_path / "maps.npy", espirit_maps(k).numpy())
    yy, xx = np.mgrid[-1:1:48j, -1:1:48j]
    np.save(tmp_path / "s.npy", np.stack([(xx**2 + yy**2 < 0.6) * (0.5 + 0.5 * (xx > 0))] * 2).astype(np.float32))
    from deepprior.mri.io import load_data

    res = {}
    for ov in ("1", "2"):
        out = tmp_path / f"k{ov}.h5"
        assert main(["mri", "simulate", str(tmp_path / "s.npy"), "--maps", str(tmp_path / "maps.npy"), "--oversample",
                     ov, "--pattern", "random", "--accel", "1", "--center", "48", "--snr", "200", "-o", str(out)]) == 0
        d = load_data(out)
        assert d.kspace.shape[1] == 8 and d.meta["oversample"] == int(ov)
        from deepprior.mri import reconstruct

        x = reconstruct(d, "cgsense", iters=30, device="cpu").image
        res[ov] = float((d.operator(x) - d.kspace).norm() / d.kspace.norm())
    assert res["1"] < 1e-3 < 0.01 < res["2"], res
    assert "measured maps" in capsys.readouterr().out
