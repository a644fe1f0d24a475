"""Compare NUFFT backends on the dynamic radial case of the MRI issue (CPU, this machine).

    python bench/nufft_compare.py --frames 26 --coils 8 --spokes 13 --size 128
    python bench/nufft_compare.py --solvers       # + CG-SENSE and k-t TV on OCMR, Toeplitz gram against the NUFFT pair

Times one forward (type 2) and one adjoint (type 1) NUFFT of all frames and coils, with a different
golden-angle trajectory per frame, for each backend that imports: torchkbnufft (one batched call),
finufft (a plan per frame, coils as n_trans), mrpro's FourierOp (if installed). Median of --repeat.
Then deepprior's ``RadialSENSE.gram`` (AᴴA with coil maps, what every CG solver iterates on) by its Toeplitz
embedding against the NUFFT pair, all frames and one frame (TDDIP's step), side by side in this process.
``--solvers``: the OCMR 13-spoke simulation of bench/classical_tuned.py (needs ../shared), reconstructed with
``cgsense`` and ``tv`` at their defaults, once with the Toeplitz gram and once with the NUFFT pair (PSNR and seconds).
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
    ap.add_argument("--solvers", action="store_true", help="time cgsense and tv on OCMR 13 spokes both ways")
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
    gram(traj, C, N, a.repeat)
    if a.solvers:
        solvers()


def gram(traj, coils, n, repeat):
    from deepprior.mri.coils import birdcage_maps
    from deepprior.mri.nufft import RadialSENSE

    maps = birdcage_maps(coils, n, n)
    x = torch.randn(traj.shape[0], n, n, dtype=torch.complex64, generator=torch.Generator().manual_seed(1))
    ops = {"Toeplitz": RadialSENSE(traj, maps), "NUFFT pair": RadialSENSE(traj, maps, toeplitz=False)}
    t0 = time.perf_counter()
    ops["Toeplitz"].gram(x)  # the kernel, once per operator
    print(f"Toeplitz kernel (all frames): {time.perf_counter() - t0:.2f} s")
    one = torch.tensor([0])
    for name, op in ops.items():
        sub = op.select(one)
        ta = timeit(lambda: op.gram(x), repeat)  # noqa: B023
        t1 = timeit(lambda: sub.gram(x[:1]), repeat * 4)  # noqa: B023
        print(f"gram AᴴA, {name}: all frames {ta * 1e3:.0f} ms, one frame {t1 * 1e3:.1f} ms")


def solvers():
    import sys
    from pathlib import Path

    from deepprior.mri.methods import reconstruct
    from deepprior.mri.nufft import RadialSENSE, Weighted
    from deepprior.operators.base import LinearOperator

    sys.path.insert(0, str(Path(__file__).parent))
    from classical_tuned import settings

    load = next(f for label, f, _ in settings(False)[0] if "13 spokes" in label)
    d = load(0)
    fast = RadialSENSE.gram, Weighted.gram
    for name in ("cgsense", "tv"):
        for how in ("Toeplitz", "NUFFT pair"):
            # the NUFFT pair: the base class's gram, Aᴴ(A x)
            RadialSENSE.gram, Weighted.gram = fast if how == "Toeplitz" else (LinearOperator.gram,) * 2
            r = reconstruct(d, name, device="cpu")
            print(f"{name}, {how}: {r.metrics['psnr']:.3f} dB in {r.seconds:.1f} s", flush=True)
    RadialSENSE.gram, Weighted.gram = fast


if __name__ == "__main__":
    main()
