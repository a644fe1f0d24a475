"""TDDIP's final step on saved network images, over its weights: no refit (issue #15's pull, tuned per sampling).

    python bench/hybrid.py --seeds 0 --setting "21 spokes" --methods tddip --save-net net21.pt   # ~9.5 min
    python bench/pull_sweep.py net21.pt --setting "21 spokes" --seed 0                          # ~25 s per row
    python bench/pull_sweep.py net21.pt --setting "21 spokes" --ratios 0.1 --tv-scales 0.5 2 --iters 50 100
    python bench/pull_sweep.py n4.pt --accel 4 --ratios 0.1 --classical --extra "" fourier-t=1e-4   # more terms,
                                                              # and the classical method with the same terms beside

The final step of the ``tddip-cpu`` preset solves min ½‖Ax − y‖² + λ_xy TV_xy + λ_t TV_t + μ'/2‖x − x_net‖² over all
acquired samples (``pics`` from the network image, ``dc_iters`` ADMM iterations), with μ' = ``dc_pull`` × the μ the
held-out samples chose for the plain step and λ = the ``tv`` method's defaults. Each row scores one (ratio, TV scale,
iterations) on the same network image — the image and its held-out μ as ``bench/hybrid.py --save-net`` stored them —
in the whole FOV and in the fixed cardiac region of interest, beside the plain step at that μ.
"""

from __future__ import annotations

import argparse
import time

import torch

from deepprior.mri.common import weighted
from deepprior.mri.dcweight import dc_step
from deepprior.mri.io import load_series
from deepprior.mri.metrics import motion_roi, mri_metrics
from deepprior.mri.pics import kt_tv_terms, pics
from hybrid import OCMR, setting_loader


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("nets", help="a file of bench/hybrid.py --save-net")
    ap.add_argument("--setting", default=None, help="as bench/hybrid.py (the setting the images were fitted on)")
    ap.add_argument("--accel", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3], help="μ' / μ")
    ap.add_argument("--tv-scales", type=float, nargs="+", default=[1.0], help="factors on the tv method's λ")
    ap.add_argument("--iters", type=int, nargs="+", default=[50], help="ADMM iterations from the network image")
    ap.add_argument("--extra", nargs="+", default=[""], metavar="TERM=λ[,TERM=λ]",
                    help="further pics terms beside k-t TV, one set per row group (e.g. fourier-t=1e-4 "
                         "wavelet=3e-5,fourier-t=1e-4); '' is k-t TV alone")
    ap.add_argument("--classical", action="store_true",
                    help="also solve each set of terms without the pull, from the zero-filled image (100 iterations, "
                         "as the tv method): the classical method with the same terms, side by side")
    a = ap.parse_args()
    torch.set_num_threads(2)
    label, load, _ = setting_loader(torch.from_numpy(abs(load_series(str(OCMR)))), a.setting, a.accel, ap.error)
    saved = torch.load(a.nets)
    if a.seed not in saved:
        ap.error(f"{a.nets} holds seeds {sorted(saved)}, not {a.seed}")
    d = load(a.seed)
    roi = motion_roi(d.gt)
    net, mu = saved[a.seed]["network_image"], saved[a.seed]["mu"]

    def score(x):
        return f"{mri_metrics(x, d.gt)['psnr']:.2f} | {mri_metrics(x, d.gt, roi)['psnr']:.2f}"

    op, y = weighted(d, True)
    print(f"{label}, seed {a.seed} ({saved[a.seed]['method']}): network {score(net)} dB; held-out μ {mu or '∞'}\n")
    if mu is None:
        print("the held-out samples kept the network image (μ = ∞): the preset ends without a step")
        return
    print(f"| step | PSNR [dB] | ROI PSNR [dB] | time [s] |\n|---|---|---|---|\n| plain, μ {mu:g} | "
          f"{score(dc_step(net, op, y, float(mu)))} | |")
    for extra in a.extra:
        more = {}
        for item in filter(None, extra.split(",")):
            term, _, lam = item.partition("=")
            try:
                more[term] = float(lam)
            except ValueError:
                ap.error(f"--extra takes TERM=λ, got {item!r}")
        for s in a.tv_scales:
            regs = {**{k: v * s for k, v in kt_tv_terms().items()}, **more}
            named = "".join(f", {k} {v:g}" for k, v in more.items())
            if a.classical:
                t = time.perf_counter()
                x = pics(op, y, regs, iters=100).image
                print(f"| classical: tv × {s:g}{named}, no pull, 100 iterations | {score(x)} | "
                      f"{time.perf_counter() - t:.0f} |", flush=True)
            for it in a.iters:
                for r in a.ratios:
                    t = time.perf_counter()
                    x = pics(op, y, regs, prior=(net, r * float(mu)), x0=net, iters=it).image
                    print(f"| tv × {s:g}{named}, pull {r:g} × μ = {r * float(mu):g}, {it} iterations | {score(x)} | "
                          f"{time.perf_counter() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
