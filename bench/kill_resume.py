"""kill -9 / --resume demonstration (issue #8): a CLI denoise run is killed with SIGKILL part-way, resumed
from its last checkpoint, and its output compared byte for byte with an uninterrupted run.

    python bench/kill_resume.py [--iters 400] [--every 50] [--kill-after 170]

Prints the checkpoint iteration at the kill, the iterations redone after resuming, and whether the
final PNG equals the uninterrupted run's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from deepprior.fit import load_checkpoint
from deepprior.io import save_image
from deepprior.tasks import add_noise, to_numpy, to_tensor


def run(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "deepprior.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--kill-after", type=int, default=170, help="kill once the run has passed this iteration")
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="deepprior-kill-"))
    from skimage import data

    clean = to_tensor(data.astronaut()[100:164, 200:264] / 255.0)
    save_image(d / "noisy.png", to_numpy(add_noise(clean, 25 / 255, seed=0)))
    base = ["denoise", d / "noisy.png", "--preset", "denoise-fast", "--iters", a.iters, "--seed", "0", "-q"]
    t = time.perf_counter()
    assert run([*base, "-o", d / "ref.png"]).wait() == 0
    full = time.perf_counter() - t
    per_it = full / a.iters
    p = run([*base, "-o", d / "out.png", "--checkpoint-every", a.every])
    t0 = time.perf_counter()
    time.sleep(max(0.0, a.kill_after * per_it))
    while not (d / "out.png.ckpt").exists():
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    ran = time.perf_counter() - t0
    ck_it = load_checkpoint(d / "out.png.ckpt")["it"]
    t = time.perf_counter()
    assert run([*base, "-o", d / "out.png", "--checkpoint-every", a.every, "--resume"]).wait() == 0
    resumed = time.perf_counter() - t
    same = (d / "out.png").read_bytes() == (d / "ref.png").read_bytes()
    h = hashlib.sha256((d / "ref.png").read_bytes()).hexdigest()[:16]
    print(f"uninterrupted: {a.iters} iterations in {full:.1f} s (sha256 {h}…)")
    print(f"killed with SIGKILL after {ran:.1f} s (≈ iteration {ran / per_it:.0f}); last checkpoint at iteration {ck_it}")
    print(f"resumed: {a.iters - ck_it} iterations in {resumed:.1f} s; lost work ≈ {max(0.0, ran / per_it - ck_it):.0f} "
          f"iterations (< --checkpoint-every {a.every})")
    print(f"final image identical to the uninterrupted run: {same}")
    np.testing.assert_equal(same, True)


if __name__ == "__main__":
    main()
