"""A corpus of malformed inputs: each one gives exit code 2 and one ``error:`` line naming the problem,
no traceback, and no output file created or clobbered."""

import io
import struct
import zlib

import h5py
import numpy as np
import pytest
import scipy.io as sio
from PIL import Image

from conftest import smooth_image
from deepprior.cli import main
from deepprior.io import save_image


def _png_bytes(w=16, h=16):
    buf = io.BytesIO()
    Image.fromarray((smooth_image(h, w, 3) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _png_header_only(w, h):
    """A PNG whose header claims w×h pixels (a decompression bomb's header) and whose data is tiny."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")


def _jpeg_bytes():
    buf = io.BytesIO()
    Image.fromarray((smooth_image(16, 16, 3) * 255).astype(np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _tiff_bytes(a):
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, a, photometric="minisblack")
    return buf.getvalue()


def _h5(path, **arrays):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f[k] = v
        f.attrs["format"] = "deepprior-mri-1"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    f = {}

    def put(name, data: bytes):
        (d / name).write_bytes(data)
        f[name.split(".")[0]] = d / name

    png = _png_bytes()
    put("good.png", png)
    save_image(d / "small.png", np.zeros((8, 8, 3)))
    f["small"] = d / "small.png"
    put("trunc_png.png", png[: len(png) // 2])
    put("sig_png.png", png[:8])
    put("empty_png.png", b"")
    put("text_png.png", b"this is not an image\n" * 10)
    jpg = _jpeg_bytes()
    put("trunc_jpg.jpg", jpg[:60])
    put("junk_jpg.jpg", b"\xff\xd8\xff" + b"\x00" * 200)
    tif = _tiff_bytes((smooth_image(16, 16, 1)[..., 0] * 255).astype(np.uint8))
    put("trunc_tif.tif", tif[:40])
    put("magic_tif.tif", b"II*\x00" + b"\xff" * 100)
    nan = smooth_image(16, 16, 1)[..., 0].copy()
    nan[3, 3] = np.nan
    put("nan_tif.tif", _tiff_bytes(nan))
    inf = smooth_image(16, 16, 1)[..., 0].copy()
    inf[2, 2] = np.inf
    put("inf_tif.tif", _tiff_bytes(inf))
    put("range_tif.tif", _tiff_bytes(smooth_image(16, 16, 1)[..., 0] * 7))
    put("stack_tif.tif", _tiff_bytes((np.random.default_rng(0).random((3, 4, 16, 16)) * 255).astype(np.uint8)))
    put("bomb.png", _png_header_only(200_000, 200_000))
    put("notes.txt", b"hello")
    (d / "adir.png").mkdir()
    f["adir"] = d / "adir.png"
    for name, arr in {"nan_npy": np.full((8, 8), np.nan), "inf_npy": np.full((8, 8), np.inf),
                      "vec_npy": np.ones(16), "four_npy": np.ones((2, 2, 8, 8)), "empty_npy": np.ones((0, 5)),
                      "cplx_npy": np.ones((8, 8), complex), "half_mask": np.full((16, 16), 0.5),
                      "zero_mask": np.zeros((16, 16)), "wrong_mask": np.ones((5, 5)), "zero_kernel": np.zeros((5, 5)),
                      "nan_kernel": np.full((5, 5), np.nan), "kernel_3d": np.ones((3, 5, 5)),
                      "big_kernel": np.ones((40, 40))}.items():
        np.save(d / f"{name}.npy", arr)
        f[name] = d / f"{name}.npy"
    np.save(d / "obj_npy.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    f["obj_npy"] = d / "obj_npy.npy"
    (d / "trunc_npy.npy").write_bytes((d / "nan_npy.npy").read_bytes()[:70])
    f["trunc_npy"] = d / "trunc_npy.npy"
    # MRI
    k = np.ones((2, 2, 8, 8), np.complex64)
    m = np.ones((2, 8, 8), np.float32)
    maps = np.ones((2, 8, 8), np.complex64) / np.sqrt(2)
    _h5(d / "real_k.h5", kspace=k.real, mask=m, maps=maps)
    _h5(d / "nan_k.h5", kspace=np.full_like(k, np.nan), mask=m, maps=maps)
    _h5(d / "maps_shape.h5", kspace=k, mask=m, maps=maps[:, :4])
    _h5(d / "k_ndim.h5", kspace=k[0, 0], mask=m, maps=maps)
    _h5(d / "mask_shape.h5", kspace=k, mask=m[:1, :4], maps=maps)
    _h5(d / "no_k.h5", other=np.ones(3))
    _h5(d / "traj_shape.h5", kspace=np.ones((2, 2, 30), np.complex64), traj=np.ones((2, 31, 2), np.float32), maps=maps)
    _h5(d / "traj_range.h5", kspace=np.ones((2, 2, 30), np.complex64), traj=np.full((2, 30, 2), 9.0, np.float32),
        maps=maps)
    _h5(d / "good_k.h5", kspace=k, mask=m, maps=maps)
    for n in ("real_k", "nan_k", "maps_shape", "k_ndim", "mask_shape", "no_k", "traj_shape", "traj_range", "good_k"):
        f[n] = d / f"{n}.h5"
    good_h5 = (d / "good_k.h5").read_bytes()
    put("trunc_h5.h5", good_h5[:200])
    put("text_h5.h5", b"not hdf5 at all")
    sio.savemat(d / "series.mat", {"img": np.random.default_rng(0).random((8, 8, 3))})
    put("trunc_mat.mat", (d / "series.mat").read_bytes()[:100])
    sio.savemat(d / "nan_mat.mat", {"img": np.full((8, 8, 3), np.nan)})
    sio.savemat(d / "zero_mat.mat", {"img": np.zeros((8, 8, 3))})
    sio.savemat(d / "vec_mat.mat", {"img": np.ones(10)})
    sio.savemat(d / "two_mat.mat", {"a": np.ones((4, 4, 2)), "b": np.ones((4, 4, 2))})
    for n in ("series", "nan_mat", "zero_mat", "vec_mat", "two_mat"):
        f[n] = d / f"{n}.mat"
    put("trunc_nii.nii", b"\x5c\x01\x00\x00" + b"\x00" * 100)
    existing = d / "existing.png"
    existing.write_bytes(b"keep me")
    f["existing"] = existing
    f["dir"] = d
    return f


IMG = ["-q", "--iters", "2"]
CASES = [
    # unreadable or malformed images
    ("denoise {trunc_png} -o {out}", "cannot read image"),
    ("denoise {sig_png} -o {out}", "cannot read image"),
    ("denoise {empty_png} -o {out}", "empty"),
    ("denoise {text_png} -o {out}", "cannot read image"),
    ("denoise {trunc_jpg} -o {out}", "cannot read image"),
    ("denoise {junk_jpg} -o {out}", "cannot read image"),
    ("denoise {trunc_tif} -o {out}", "cannot read image"),
    ("denoise {magic_tif} -o {out}", "cannot read image"),
    ("denoise {nan_tif} -o {out}", "NaN"),
    ("denoise {inf_tif} -o {out}", "NaN or Inf"),
    ("denoise {range_tif} -o {out}", "outside [0, 1]"),
    ("denoise {stack_tif} -o {out}", "expected a 2-D"),
    ("denoise {bomb} -o {out}", "too large"),
    ("denoise {notes} -o {out}", "cannot read image"),
    ("denoise {adir} -o {out}", "directory"),
    ("denoise {dir}/missing.png -o {out}", "does not exist"),
    ("denoise {nan_npy} -o {out}", "NaN"),
    ("denoise {inf_npy} -o {out}", "NaN"),
    ("denoise {vec_npy} -o {out}", "expected a 2-D"),
    ("denoise {four_npy} -o {out}", "expected a 2-D"),
    ("denoise {empty_npy} -o {out}", "zero size"),
    ("denoise {cplx_npy} -o {out}", "pixel type"),
    ("denoise {obj_npy} -o {out}", "pickle"),
    ("denoise {trunc_npy} -o {out}", "cannot read"),
    # outputs
    ("denoise {good} -o {existing}", "exists; pass --overwrite"),
    ("denoise {good} -o {dir}/nofolder/x.png", "does not exist"),
    ("denoise {good} -o {dir}", "unsupported extension"),
    ("denoise {good} -o {adir}", "is a directory"),
    ("denoise {good} -o /proc/deepprior_out.png", "not writable"),
    ("denoise {good} -o {dir}/x.xyz", "unsupported extension"),
    ("denoise {good} -o {out} --plot {out}", "must be different files"),
    ("denoise {good} -o {out} --plot {dir}/p.gif", "unsupported extension"),
    # side inputs and options
    ("denoise {good} -o {out} --gt {trunc_png}", "cannot read image"),
    ("denoise {good} -o {out} --gt {small}", "ground truth"),
    ("inpaint {good} -o {out} --mask {wrong_mask}", "must match"),
    ("inpaint {good} -o {out} --mask {half_mask}", "other than 0 and 1"),
    ("inpaint {good} -o {out} --mask {zero_mask}", "no pixel as known"),
    ("inpaint {good} -o {out} --mask {trunc_png}", "cannot read"),
    ("deblur {good} -o {out} --kernel {zero_kernel}", "kernel"),
    ("deblur {good} -o {out} --kernel {nan_kernel}", "kernel"),
    ("deblur {good} -o {out} --kernel {kernel_3d}", "kernel"),
    ("deblur {good} -o {out} --kernel {big_kernel}", "kernel"),
    ("superres {good} -o {out} --downscale 3", "not divisible"),
    ("superres {good} -o {out} --downscale 1", "--downscale"),
    ("flash {good} {small} -o {out}", "differ in size"),
    ("denoise {good} -o {out} --lr -1", "--lr"),
    ("denoise {good} -o {out} --patience 0", "--patience"),
    ("denoise {good} -o {out} --checkpoint-every 0", "--checkpoint-every"),
    ("denoise {good} -o {out} --resume", "no checkpoint"),
    ("denoise {good} -o {out} --method tv --preset denoise", "presets describe DIP"),
    # MRI
    ("mri recon {real_k} -o {out_h5}", "complex"),
    ("mri recon {nan_k} -o {out_h5}", "NaN"),
    ("mri recon {maps_shape} -o {out_h5}", "coil maps"),
    ("mri recon {k_ndim} -o {out_h5}", "(frames, coils, H, W)"),
    ("mri recon {mask_shape} -o {out_h5}", "mask shape"),
    ("mri recon {no_k} -o {out_h5}", "no 'kspace'"),
    ("mri recon {traj_shape} -o {out_h5}", "trajectory"),
    ("mri recon {traj_range} -o {out_h5}", "radians"),
    ("mri recon {trunc_h5} -o {out_h5}", "cannot read"),
    ("mri recon {text_h5} -o {out_h5}", "cannot read"),
    ("mri recon {good_k} -o {existing}", "exists"),
    ("mri recon {good_k} -o {dir}/r.xyz", "unsupported extension"),
    ("mri recon {good_k} -o {out_h5} --method cgsense --manifold helix", "--manifold"),
    ("mri simulate {trunc_mat} -o {out_h5}", "cannot read"),
    ("mri simulate {nan_mat} -o {out_h5}", "NaN"),
    ("mri simulate {zero_mat} -o {out_h5}", "all zero"),
    ("mri simulate {vec_mat} -o {out_h5}", "too small"),
    ("mri simulate {two_mat} -o {out_h5}", "--key"),
    ("mri simulate {trunc_nii} -o {out_h5}", "cannot read"),
    ("mri simulate {notes} -o {out_h5}", "unsupported"),
    ("mri simulate {series} -o {out_h5} --accel 0.5", "--accel"),
]


def test_corpus_is_large_enough():
    assert len(CASES) >= 50


@pytest.mark.parametrize("argv,msg", CASES, ids=[c[0].split("{")[0].strip() + ":" + c[1][:20] for c in CASES])
def test_malformed_input_exit_2_one_line_nothing_written(corpus, tmp_path, capsys, argv, msg):
    subs = {k: str(v) for k, v in corpus.items()}
    subs.update(out=str(tmp_path / "out.png"), out_h5=str(tmp_path / "out.h5"))
    args = argv.format(**subs).split()
    if not args[0] == "mri":
        args += IMG
    before = {p.name for p in tmp_path.iterdir()}
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2, (rc, err)
    assert err.startswith("error:") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert msg in err, err
    assert {p.name for p in tmp_path.iterdir()} == before  # nothing created
    assert corpus["existing"].read_bytes() == b"keep me"  # nothing clobbered
