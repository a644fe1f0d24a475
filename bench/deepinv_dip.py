"""Run deepinv's ``DeepImagePrior`` unchanged and record PSNR against wall time (called by time_to_quality).

    python bench/deepinv_dip.py NOISY.npy CLEAN.npy SIGMA BUDGET_S OUT.json

Set-up of deepinv's own DIP example (``demo_dip``): ``ConvDecoder`` with 64 channels and an 8×8 input,
Adam at lr 0.01, the ``Denoising`` physics. deepinv's loop runs as shipped; a forward hook on the
generator records the output of every iteration (the estimate before that step) with a timestamp,
and raises to end the run when the time budget is spent. Needs deepinv (and its torchvision); any
Python that has them can run this file — it imports nothing from deepprior.
"""

import json
import sys
import time

import numpy as np
import torch

import deepinv as dinv


class _Budget(Exception):
    pass


def main():
    noisy_p, clean_p, sigma, budget, out_p = sys.argv[1:6]
    noisy = torch.from_numpy(np.load(noisy_p))
    clean = torch.from_numpy(np.load(clean_p))
    budget = float(budget)
    torch.manual_seed(0)
    channels, in_size = 64, [8, 8]
    gen = dinv.models.ConvDecoder(img_size=tuple(noisy.shape[1:]), in_size=in_size, channels=channels)
    f = dinv.models.DeepImagePrior(gen, img_size=[channels] + in_size, iterations=10 ** 7, learning_rate=1e-2)
    physics = dinv.physics.Denoising(dinv.physics.GaussianNoise(float(sigma)))
    times, psnrs = [], []
    t0 = time.perf_counter()

    def hook(_mod, _inp, out):
        x = out.detach().clamp(0, 1)
        psnrs.append(float(10 * torch.log10(1 / ((x - clean) ** 2).mean())))
        times.append(time.perf_counter() - t0)
        if times[-1] > budget:
            raise _Budget

    gen.register_forward_hook(hook)
    try:
        f(noisy, physics)
    except _Budget:
        pass
    # the hook sees the output before each step; the first call is the initial network
    json.dump({"times": times, "psnrs": psnrs, "version": dinv.__version__, "torch": torch.__version__,
               "params": sum(p.numel() for p in gen.parameters())}, open(out_p, "w"))


if __name__ == "__main__":
    main()
