"""The pictures a user looks at first: input | classical | deepprior | truth, PSNR on every panel (docs/gallery.md).

    python bench/gallery.py                 # every task, about 25 min on 2 cores (inpaint 12); writes docs/img/gallery_*.png
    python bench/gallery.py --tasks denoise mri     # mri: the static frame; cine: TDDIP (about 8 min)

Small crops so that the whole gallery runs on a CPU. Every DIP run stops by its own rule or runs a stated budget;
the classical weights are the package's defaults (tuned elsewhere, not on these images). Seed 0 throughout.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from deepprior.io import load_image
from deepprior.metrics import psnr
from deepprior.plotting import save_comparison
from deepprior.presets import get_preset
from deepprior.tasks import (add_noise, denoise_problem, inpaint_problem, solve, superres_problem, to_numpy,
                             to_tensor)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
IMG = Path(__file__).resolve().parents[1] / "docs" / "img"


def crop(x, h, w, top=None, left=None):
    H, W = x.shape[-2:]
    top = (H - h) // 2 if top is None else top
    left = (W - w) // 2 if left is None else left
    return x[..., top:top + h, left:left + w]


def narrow(name, width=64, iters=None):
    """A reference recipe at a CPU width down/up (the gallery's budget; skip widths stay the reference's)."""
    p = get_preset(name)
    p["net"] = {**p["net"], "channels_down": [width] * 5, "channels_up": [width] * 5}
    if iters:
        p["fit"] = {**p["fit"], "iters": iters}
    return p


def image_row(task, degraded, classical, dip, gt, seconds):
    d = to_numpy(degraded) if torch.is_tensor(degraded) else degraded
    panels = [(f"input  {psnr(degraded, gt):.2f} dB" if degraded.shape == gt.shape else "input (low-res)", d),
              (f"classical TV  {psnr(torch.from_numpy(classical).permute(2, 0, 1)[None], gt):.2f} dB", classical),
              (f"deepprior  {psnr(torch.from_numpy(dip).permute(2, 0, 1)[None], gt):.2f} dB ({seconds:.0f} s)", dip),
              ("truth", to_numpy(gt))]
    save_comparison(IMG / f"gallery_{task}.png", panels)
    print(f"{task}: " + " | ".join(t for t, _ in panels), flush=True)


def denoise():
    from deepprior.demo import demo_image

    clean = to_tensor(demo_image())
    noisy = add_noise(clean, 25 / 255, seed=0)
    p = denoise_problem(noisy, clean, sigma=25 / 255)
    tv = solve(p, method="tv", device="cpu")
    r = solve(p, device="cpu")  # the CPU default: fast, stops by itself
    image_row("denoise", noisy, tv.image, r.image, clean, r.fit.seconds)


def inpaint():
    img = to_tensor(load_image(SHARED / "images" / "inpainting_kate.png").data)
    mask = to_tensor(load_image(SHARED / "images" / "inpainting_kate_mask.png").data)[:, :1] > 0.5
    img, mask = crop(img, 192, 192, 40, 160), crop(mask, 192, 192, 40, 160)
    p = inpaint_problem(img * mask, mask, img)
    tv = solve(p, method="tv", device="cpu")
    r = solve(p, preset=narrow("inpaint", 64, 2000), device="cpu")
    image_row("inpaint", img * mask, tv.image, r.image, img, r.fit.seconds)


def superres():
    hr = crop(to_tensor(load_image(SHARED / "images" / "set5" / "butterfly.png").data), 128, 128)
    from deepprior.operators import Downsample

    lr = Downsample(4, "lanczos2")(hr)
    p = superres_problem(lr, 4, hr)
    tv = solve(p, method="tv", device="cpu")
    r = solve(p, preset=narrow("sr4", 64, 1000), device="cpu")
    up = torch.nn.functional.interpolate(lr, scale_factor=4, mode="bicubic").clamp(0, 1)
    image_row("superres", up, tv.image, r.image, hr, r.fit.seconds)


def mri_rows(tasks=("mri", "cine")):
    from deepprior.mri import mri_metrics, reconstruct, simulate
    from deepprior.mri.io import load_series

    s = torch.from_numpy(abs(load_series(str(SHARED / "mri" / "ocmr0004_cine_mag_26x128x128_tddip.mat"))))
    rows = {"mri": (lambda: simulate(s[:1], coils=8, pattern="vd", accel=4, center=12, seed=0), "dip",
                    {"stop": "holdout"}),
            "cine": (lambda: simulate(s, coils=8, pattern="kt-random", accel=8, center=8, seed=0), "tddip", {})}
    for task in tasks:
        load, method, opts = rows[task]
        d = load()
        zf, tv = reconstruct(d, "zerofill", device="cpu"), reconstruct(d, "tv", device="cpu")
        t = time.perf_counter()
        r = reconstruct(d, method, device="cpu", **opts)
        sec = time.perf_counter() - t
        def show(x, gt=d.gt):  # the first frame (a cine's end-diastole), on the reference's scale
            return (x[0].abs() / gt[0].abs().max()).clamp(0, 1).numpy()[..., None]

        def score(x, gt=d.gt):
            return mri_metrics(x, gt)["psnr"]

        save_comparison(IMG / f"gallery_{task}.png",
                        [(f"zero-filled  {score(zf.image):.2f} dB", show(zf.image)),
                         (f"classical TV  {score(tv.image):.2f} dB", show(tv.image)),
                         (f"deepprior {method}  {score(r.image):.2f} dB ({sec:.0f} s)", show(r.image)),
                         ("truth", show(d.gt))])
        print(f"{task}: zf {score(zf.image):.2f} tv {score(tv.image):.2f} {method} {score(r.image):.2f} ({sec:.0f} s)",
              flush=True)


TASKS = {"denoise": denoise, "inpaint": inpaint, "superres": superres, "mri": lambda: mri_rows(("mri",)),
         "cine": lambda: mri_rows(("cine",))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    a = ap.parse_args()
    torch.set_num_threads(2)
    np.seterr(all="ignore")
    IMG.mkdir(parents=True, exist_ok=True)
    for t in a.tasks:
        TASKS[t]()


if __name__ == "__main__":
    main()
