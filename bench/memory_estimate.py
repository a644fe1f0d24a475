"""The memory guard's estimate against the measured peak of a real fit (docs/reliability.md's table).

    OMP_NUM_THREADS=1 python bench/memory_estimate.py 256 denoise-fast

Estimates the fit of ``preset`` on a random n×n RGB image, resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``, Linux), runs 3 steps and prints the estimate and VmHWM − VmRSS.
"""

from __future__ import annotations

import sys

import torch

from deepprior.resources import estimate_fit_bytes
from deepprior.tasks import build_dip, denoise_problem, resolve_preset, solve


def status(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))


def main():
    n, preset = int(sys.argv[1]), sys.argv[2]
    p = denoise_problem(torch.rand(1, 3, n, n), None, sigma=0.1)
    est = estimate_fit_bytes(build_dip(p, resolve_preset(p, preset)[1]), 3 * n * n * 4)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS mark so that earlier peaks (imports) do not hide the fit's
    base = status("VmRSS")
    solve(p, preset=preset, iters=3, device="cpu")
    print(f"{n}² {preset}: estimate {est / 2**30:.2f} GiB, measured {(status('VmHWM') - base) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
