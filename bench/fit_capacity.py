"""Can TDDIP's decoder represent the series at all? Fit it to *fully sampled* k-space (no prior is needed there, only
the fit) with the CPU preset's network and schedule, the same number of frames and sweeps for each series.

    python bench/fit_capacity.py                    # PINCAT and OCMR, first 26 frames, 120 sweeps each
    python bench/fit_capacity.py --frames 5 26 --sweeps 120

If a series fails here, its undersampled failure is the network's, not the sampling's. Besides the fit it prints
the PSNR of a k-space truncation of each series (keep the central N² of k-space): how much of its energy lies at
high spatial frequencies, against which the network's fit can be read; and the NRMSE, since PSNR (peak 1) also
counts how bright the whole series is (PINCAT's RMS is twice OCMR's: 6.4 dB of any PSNR gap). No held-out stopping (all sweeps run) and
no data-consistency step: the network image is scored.
"""

from __future__ import annotations

import argparse
import time

import torch

from classical_tuned import OCMR, PINCAT, series  # bench/ is the script's directory, so on sys.path
from deepprior.metrics import psnr
from deepprior.mri.data import simulate
from deepprior.mri.metrics import mri_metrics
from deepprior.mri.tddip import tddip


def truncation_psnr(s: torch.Tensor, keep: int) -> float:
    """PSNR of ``s`` (T, H, W, real, max 1) with only its central ``keep``² k-space samples."""
    k = torch.fft.fftshift(torch.fft.fft2(s), dim=(-2, -1))
    m = torch.zeros(s.shape[-2:])
    c0, c1 = s.shape[-2] // 2, s.shape[-1] // 2
    m[c0 - keep // 2:c0 + keep // 2, c1 - keep // 2:c1 + keep // 2] = 1
    return psnr(torch.fft.ifft2(torch.fft.ifftshift(k * m, dim=(-2, -1))).real, s)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[26])
    ap.add_argument("--sweeps", type=int, default=120)
    a = ap.parse_args()
    torch.set_num_threads(2)
    print("| series | frames | k-space truncation 32² / 64² [dB] | network, fully sampled [dB] (NRMSE) | PSNR every 20 "
          "sweeps | time [s] |\n|---|---|---|---|---|---|")
    for frames in a.frames:
        for name, path in (("PINCAT", PINCAT), ("OCMR", OCMR)):
            s = series(path)[:frames].float()
            s = s / s.max()
            d = simulate(s, coils=8, seed=0, pattern="kt-random", accel=1, center=8)
            t = time.perf_counter()
            x, info = tddip(d, steps=a.sweeps * frames, stop="none", seed=0, device="cpu", dc=False, ref=d.gt)
            curve = ", ".join(f"{v:.1f}" for v in info["oracle_psnr"][::20])
            m = mri_metrics(x, d.gt)
            print(f"| {name} | {frames} | {truncation_psnr(s, 32):.2f} / {truncation_psnr(s, 64):.2f} | "
                  f"{m['psnr']:.2f} ({m['nrmse']:.3f}) | {curve} | {time.perf_counter() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
