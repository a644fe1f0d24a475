"""Cross-check against BART (Debian package ``bart``, not a dependency) on the shipped in-vivo brain — BART's
own ``pics-brain`` example (docs/real_data.md).

    python bench/bart_compare.py

1. Coil maps: ``bart ecalib -m1 -r24 -k6 -c0.95`` vs :func:`deepprior.mri.calib.espirit_maps` (the same
   calibration size, kernel and crop): per-pixel |⟨s_ours, s_bart⟩| (1 = the same maps up to a phase) inside
   both supports, and the supports' agreement.
2. CG-SENSE and L1-wavelet: ``bart pics -l2 -r 0`` / ``bart pics -l1 -r λ`` with BART's maps vs deepprior's
   ``cgsense`` / ``wavelet`` with its own maps, compared as magnitude images (NRMSE after a least-squares
   scale fit, since BART scales its data its own way) and as wall time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from deepprior.mri import MRIData, reconstruct
from deepprior.mri.calib import espirit_maps
from deepprior.mri.raw import read_cfl, read_raw, write_cfl

RAW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mri" / "raw"


def bart(*args: str) -> float:
    t = time.perf_counter()
    subprocess.run(["bart", *args], check=True, capture_output=True)
    return time.perf_counter() - t


def nrmse_scaled(x: np.ndarray, ref: np.ndarray) -> float:
    a, b = np.abs(x).ravel(), np.abs(ref).ravel()
    s = float(a @ b / (a @ a))
    return float(np.linalg.norm(s * a - b) / np.linalg.norm(b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lambda-l1", type=float, default=0.01, help="bart pics -l1 -r λ (BART's example uses 0.01)")
    ap.add_argument("--weight", type=float, default=0.03, help="deepprior's wavelet weight (tuned in real_data.py)")
    a = ap.parse_args()
    if shutil.which("bart") is None:
        raise SystemExit("bart is not installed (apt-get install bart)")
    raw = read_raw(RAW / "brain_8coil_poisson8x_ksp.npy")
    k = raw.kspace[0]
    tmp = Path(tempfile.mkdtemp())
    write_cfl(tmp / "ksp", k.permute(1, 2, 0).numpy()[:, :, None])  # (H, W, 1, coils)
    t_bart_maps = bart("ecalib", "-m1", "-r24", "-k6", "-c0.95", str(tmp / "ksp"), str(tmp / "sens"))
    sens = read_cfl(tmp / "sens")
    sens = sens.reshape(*sens.shape[:4], -1)[:, :, 0, :, 0]  # (H, W, coils), the first set of maps
    sb = torch.from_numpy(np.ascontiguousarray(sens.transpose(2, 0, 1)))
    t0 = time.perf_counter()
    so = espirit_maps(k, calib_size=24, kernel=6, crop=0.95)
    t_ours_maps = time.perf_counter() - t0
    sup_o, sup_b = so.abs().sum(0) > 0, sb.abs().sum(0) > 0
    both = sup_o & sup_b
    corr = torch.einsum("chw,chw->hw", so.conj(), sb.to(so.dtype)).abs()[both]
    print("| check | deepprior | BART | agreement |\n|---|---|---|---|")
    print(f"| ESPIRiT maps (r24 k6 c0.95) | {t_ours_maps:.2f} s | {t_bart_maps:.2f} s | |⟨s, s_BART⟩| median "
          f"{float(corr.median()):.4f}, 5th percentile {float(corr.quantile(0.05)):.4f}; supports agree on "
          f"{float((sup_o == sup_b).float().mean()) * 100:.1f} % of pixels |")
    sampled = (k.abs().sum(0) > 0).float()
    scale = None
    for method, pics in (("cgsense", ["-l2", "-r", "0", "-i", "15"]), ("wavelet", ["-l1", "-r", str(a.lambda_l1)])):
        t_b = bart("pics", "-S", *pics, str(tmp / "ksp"), str(tmp / "sens"), str(tmp / f"img_{method}"))
        xb = read_cfl(tmp / f"img_{method}").squeeze()
        d = MRIData(k[None], sampled[None], so, None, {})
        if scale is None:
            scale = float(d.operator.adjoint(d.kspace).abs().max())
        d.kspace = d.kspace / scale
        opts = {"weight": a.weight} if method == "wavelet" else {}
        t0 = time.perf_counter()
        xo = reconstruct(d, method, device="cpu", **opts).image[0].numpy()
        t_o = time.perf_counter() - t0
        print(f"| {method} vs pics {' '.join(pics)} | {t_o:.2f} s | {t_b:.2f} s | NRMSE (scale-fitted) "
              f"{nrmse_scaled(xo, xb):.4f} |")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
