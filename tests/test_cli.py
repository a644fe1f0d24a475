"""CLI behaviour: exit codes, one-line errors, no clobbering, synthesised inputs, outputs written."""

import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import smooth_image
from deepprior.cli import main
from deepprior.io import load_image, save_image

FAST = ["--iters", "3", "--net", "deep_decoder", "-q", "--device", "cpu"]


@pytest.fixture
def img(tmp_path):
    p = tmp_path / "in.png"
    save_image(p, smooth_image(32, 32, 3))
    return p


def _err(capsys):
    err = capsys.readouterr().err.strip()
    return err


def test_denoise_end_to_end(tmp_path, img, capsys):
    out, plot, fig = tmp_path / "out.png", tmp_path / "curve.png", tmp_path / "fig.png"
    rc = main(["denoise", str(img), "-o", str(out), "--add-noise", "25", "--plot", str(plot), "--figure", str(fig),
               "--save-every", "2", *FAST])
    assert rc == 0
    assert out.exists() and plot.exists() and fig.exists() and (tmp_path / "out_00002.png").exists()
    assert load_image(out).data.shape == (32, 32, 3)
    line = capsys.readouterr().out
    assert "PSNR" in line and "SSIM" in line and "3 iterations" in line


def _summary_psnr(capsys) -> float:
    line = capsys.readouterr().out.strip().splitlines()[-1]
    return float(re.search(r"PSNR ([\d.]+) dB", line).group(1))


def test_classical_and_other_tasks(tmp_path, img, capsys):
    """Every task writes its output and improves on its degraded input (PSNR against the synthesised reference)."""
    from deepprior.metrics import psnr
    from deepprior.operators import Blur, gaussian_kernel
    from deepprior.tasks import add_noise, jpeg_compress, random_mask, to_tensor

    clean = to_tensor(load_image(img).data)
    noisy_psnr = psnr(add_noise(clean, 20 / 255, seed=0), clean)
    assert main(["denoise", str(img), "-o", str(tmp_path / "a.png"), "--add-noise", "20", "--method", "tv", "-q",
                 "--iters", "60"]) == 0
    assert _summary_psnr(capsys) > noisy_psnr + 2
    assert main(["superres", str(img), "-o", str(tmp_path / "b.png"), "--downscale", "4", "--method", "tv", "-q",
                 "--iters", "50"]) == 0
    assert load_image(tmp_path / "b.png").data.shape == (32, 32, 3)
    assert _summary_psnr(capsys) > 27  # ~30 dB here: a wrong downsampler or adjoint lands far lower
    assert main(["inpaint", str(img), "-o", str(tmp_path / "c.tif"), "--mask-ratio", "0.5", "--method", "tv", "-q",
                 "--iters", "150"]) == 0
    holes = psnr(clean * random_mask((32, 32), 0.5, seed=0), clean)
    assert _summary_psnr(capsys) > holes + 10
    assert main(["deblur", str(img), "-o", str(tmp_path / "d.png"), "--blur-sigma", "1", "--apply-blur", "--method",
                 "tv", "-q", "--iters", "80"]) == 0
    blurred = psnr(Blur(gaussian_kernel(1.0), "reflect")(clean), clean)
    assert _summary_psnr(capsys) > blurred + 1.5
    assert main(["jpeg", str(img), "-o", str(tmp_path / "e.png"), "--quality", "10", "--method", "tv", "-q",
                 "--iters", "40"]) == 0
    assert _summary_psnr(capsys) > psnr(jpeg_compress(clean, 10), clean) + 0.1
    assert main(["flash", str(img), str(img), "-o", str(tmp_path / "f.png"), *FAST]) == 0
    assert load_image(tmp_path / "f.png").data.shape == (32, 32, 3)


def test_16bit_rgba_preserved(tmp_path):
    a = smooth_image(24, 24, 3)
    alpha = np.linspace(0, 1, 24 * 24).reshape(24, 24)
    p = tmp_path / "in.png"
    save_image(p, a, alpha, 16)
    out = tmp_path / "o.png"
    assert main(["denoise", str(p), "-o", str(out), *FAST]) == 0
    o = load_image(out)
    assert o.bit_depth == 16 and o.alpha is not None and np.allclose(o.alpha, alpha, atol=1e-4)


BAD_CASES = [
    (["denoise", "{missing}", "-o", "{out}"], "does not exist"),
    (["denoise", "{corrupt}", "-o", "{out}"], "cannot read image"),
    (["denoise", "{dir}", "-o", "{out}"], "directory"),
    (["inpaint", "{img}", "-o", "{out}", "--mask", "{wrongmask}"], "must match"),
    (["inpaint", "{img}", "-o", "{out}"], "exactly one of --mask"),
    (["superres", "{img}", "-o", "{out}", "--downscale", "3"], "not divisible"),
    (["denoise", "{img}", "-o", "{out}", "--net", "vgg"], "Invalid value for '--net'"),
    (["denoise", "{img}", "-o", "{out}", "--add-noise", "-5"], "--add-noise"),
    (["denoise", "{img}", "-o", "{out}", "--sigma", "-1"], "--sigma"),
    (["denoise", "{img}", "-o", "{existing}"], "exists; pass --overwrite"),
    (["denoise", "{img}", "-o", "{tmp}/nofolder/x.png"], "does not exist"),
    (["denoise", "{img}", "-o", "{tmp}/x.xyz"], "unsupported extension"),
    (["denoise", "{img}", "-o", "{out}", "--gt", "{small}"], "ground truth"),
    (["deblur", "{img}", "-o", "{out}"], "exactly one of --kernel"),
    (["denoise", "{img}"], "Missing option"),
    (["flash", "{img}", "{small}", "-o", "{out}"], "differ in size"),
    (["denoise", "{img}", "-o", "{out}", "--iters", "0"], "--iters"),
]


@pytest.mark.parametrize("args,msg", BAD_CASES)
def test_bad_input_exit_2_one_line(tmp_path, img, capsys, args, msg):
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "adir").mkdir()
    np.save(tmp_path / "wrongmask.npy", np.ones((5, 5)))
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"keep me")
    save_image(tmp_path / "small.png", np.zeros((8, 8, 3)))
    subs = {"missing": tmp_path / "nope.png", "corrupt": tmp_path / "corrupt.png", "dir": tmp_path / "adir",
            "img": img, "out": tmp_path / "out.png", "wrongmask": tmp_path / "wrongmask.npy",
            "existing": existing, "tmp": tmp_path, "small": tmp_path / "small.png"}
    argv = [a.format(**subs) for a in args] + ["-q", "--iters", "2"] * ("--iters" not in args)
    rc = main(argv)
    err = _err(capsys)
    assert rc == 2, err
    assert msg in err and err.startswith("error:") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "out.png").exists()
    assert existing.read_bytes() == b"keep me"


def test_real_process_exit_code_and_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "deepprior.cli", "denoise", str(tmp_path / "missing.png"), "-o",
                        str(tmp_path / "o.png")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error:") and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "deepprior.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "denoise" in r.stdout


def test_cli_stop_rule_marks_the_selected_iterate(tmp_path, img, capsys):
    out = tmp_path / "o.png"
    assert main(["denoise", str(img), "-o", str(out), "--add-noise", "25", "--stop", "emv", "--patience", "5",
                 "--iters", "60", "--net", "deep_decoder", "-q", "--plot", str(tmp_path / "p.png")]) == 0
    line = capsys.readouterr().out
    assert "emv selected it" in line and (tmp_path / "p.png").exists()


@pytest.mark.parametrize("amp, says_bf16", [("off", False), ("bf16", True)])
def test_amp_flag_reaches_the_fit_and_the_first_line_says_it(tmp_path, img, capsys, amp, says_bf16):
    # --amp overrides the preset's setting (fast has amp: auto); the first line names the precision that runs
    rc = main(["denoise", str(img), "-o", str(tmp_path / "out.png"), "--add-noise", "25", "--preset", "fast",
               "--iters", "2", "--device", "cpu", "--amp", amp, "-q"])
    assert rc == 0
    first = _err(capsys).splitlines()[0]
    assert first.startswith("denoise: dip, preset fast on cpu") and ("in bfloat16" in first) == says_bf16
