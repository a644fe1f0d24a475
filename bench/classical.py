"""Tune / check the classical baselines' weights (TV, anisotropic TV, wavelet-L1) for denoising.

    python bench/classical.py --sigmas 15 25 50 --size 128

For each σ and method it sweeps a grid of λ/σ on centre crops of the Set5 images (seeded noise)
and prints the mean PSNR per value: the preset weights in deepprior/presets.py come from here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deepprior.io import load_image
from deepprior.tasks import add_noise, denoise_problem, solve, to_tensor

SET5 = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "set5"


def crops(size):
    for p in sorted(SET5.glob("*.png")):
        x = to_tensor(load_image(p).data)
        h, w = x.shape[-2:]
        n = min(size, h, w)
        yield p.stem, x[..., (h - n) // 2:(h - n) // 2 + n, (w - n) // 2:(w - n) // 2 + n]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15, 25, 50])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--methods", nargs="+", default=["tv", "tv-aniso", "wavelet"])
    ap.add_argument("--grid", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
    args = ap.parse_args()
    images = list(crops(args.size))
    print(f"{len(images)} Set5 crops of {args.size}²; entries: mean PSNR [dB] over images")
    for method in args.methods:
        for s in args.sigmas:
            row = []
            for c in args.grid:
                ps = []
                for i, (_, clean) in enumerate(images):
                    noisy = add_noise(clean, s / 255, seed=i)
                    r = solve(denoise_problem(noisy, clean, sigma=s / 255), method=method, device="cpu",
                              reg_weight=c * s / 255)
                    ps.append(r.metrics["psnr"])
                row.append(float(np.mean(ps)))
            best = args.grid[int(np.argmax(row))]
            print(f"{method:9s} σ={s:4.0f}  " + "  ".join(f"{c}:{p:.2f}" for c, p in zip(args.grid, row))
                  + f"   best λ/σ = {best}")


if __name__ == "__main__":
    main()
