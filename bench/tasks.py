"""Run one natural-image task on a centre crop of an image with seeded degradation; print JSON.

    python bench/tasks.py deblur --image ../shared/data/images/set14/lenna.png --size 128 --iters 1000
    python bench/tasks.py superres --factor 4 --method tv ...

Tasks: denoise (--sigma), deblur (--blur-sigma, --sigma for added noise), superres (--factor),
inpaint (--drop), jpeg (--quality). The clean crop is the ground truth.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from deepprior.io import load_image
from deepprior.metrics import psnr
from deepprior.operators import Blur, gaussian_kernel
from deepprior.tasks import (add_noise, deblur_problem, denoise_problem, downscale, inpaint_problem, jpeg_compress,
                             jpeg_problem, random_mask, solve, superres_problem, to_tensor)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=["denoise", "deblur", "superres", "inpaint", "jpeg"])
    ap.add_argument("--image", required=True)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--method", default="dip")
    ap.add_argument("--preset", default=None)
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sigma", type=float, default=None, help="noise std, 0–255 scale")
    ap.add_argument("--blur-sigma", type=float, default=2.0)
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--drop", type=float, default=0.5)
    ap.add_argument("--quality", type=int, default=10)
    a = ap.parse_args()
    x = to_tensor(load_image(a.image).data)
    h, w = x.shape[-2:]
    n = min(a.size, h, w)
    clean = x[..., (h - n) // 2:(h - n) // 2 + n, (w - n) // 2:(w - n) // 2 + n]
    s = (a.sigma or 0) / 255
    if a.task == "denoise":
        p = denoise_problem(add_noise(clean, s, a.seed), clean, sigma=s)
    elif a.task == "deblur":
        k = gaussian_kernel(a.blur_sigma)
        p = deblur_problem(add_noise(Blur(k)(clean), s, a.seed), k, clean)
    elif a.task == "superres":
        p = superres_problem(add_noise(downscale(clean, a.factor), s, a.seed), a.factor, clean)
    elif a.task == "inpaint":
        p = inpaint_problem(clean, random_mask((n, n), a.drop, a.seed), clean)
        p.info["preset"] = "restoration"
    else:
        p = jpeg_problem(jpeg_compress(clean, a.quality), clean)
    kw = {"iters": a.iters} if a.iters else {}
    r = solve(p, method=a.method, preset=a.preset, seed=a.seed, device="cpu", stop="none", **kw)  # fixed recipe
    out = {"task": a.task, "image": Path(a.image).name, "crop": n, "method": a.method, "preset": r.preset,
           "iters": r.fit.iters_run, "psnr_degraded": psnr(p.degraded, clean), "psnr": r.metrics["psnr"],
           "ssim": r.metrics["ssim"], "psnr_last": psnr(r.fit.image, clean),
           "oracle_best_psnr_last": max(r.fit.history["psnr"]), "oracle_best_iter": (r.fit.best_iter or 0) + 1,
           "seconds": round(r.fit.seconds, 1), "backtracks": r.fit.backtracks,
           "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"}
    if r.fit.history.get("psnr_ema") and r.fit.ema is not None:
        out["oracle_best_psnr_ema"] = max(r.fit.history["psnr_ema"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
