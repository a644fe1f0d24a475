"""A plain eager implementation of the reference DIP denoising recipe, for side-by-side timing.

Written from the reference's description (Ulyanov et al., skip net of ``models/skip.py`` and the
denoising notebook's loop), as a typical user would run it: ``nn.Sequential`` blocks of
ReflectionPad2d → Conv2d → BatchNorm2d → LeakyReLU(0.2), strided-conv downsampling, ``nn.Upsample``,
channel concatenation, Adam at lr 0.01, the code jittered by N(0, (1/30)²) each step, an exponential
average (0.99) of the outputs, and the PSNRs of the output and the average computed in NumPy every step.
No deepprior code is used, so the timing reflects what the plain recipe costs. Parameters are created in
the same order as :class:`deepprior.nets.skip.Skip`, so :func:`copy_weights` gives both the same weights.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn


def _conv(cin, cout, k, stride=1):
    pad = (k - 1) // 2
    layers = [nn.ReflectionPad2d(pad)] if pad else []
    return nn.Sequential(*layers, nn.Conv2d(cin, cout, k, stride, padding=0, bias=True))


class _Concat(nn.Module):
    def __init__(self, *branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        outs = [b(x) for b in self.branches]
        h = min(o.shape[2] for o in outs)
        w = min(o.shape[3] for o in outs)
        outs = [o[:, :, (o.shape[2] - h) // 2:(o.shape[2] - h) // 2 + h, (o.shape[3] - w) // 2:(o.shape[3] - w) // 2 + w]
                for o in outs]
        return torch.cat(outs, dim=1)


def reference_skip(in_ch=32, out_ch=3, down=(128,) * 5, up=(128,) * 5, skip=(4,) * 5, mode="bilinear"):
    """The reference ``skip`` network (3×3 down/up filters, 1×1 skips, 1×1 after each up conv, sigmoid)."""
    def bn_act(c):
        return [nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True)]

    def level(i, cin):
        deeper = [*_conv(cin, down[i], 3, 2), *bn_act(down[i]), *_conv(down[i], down[i], 3), *bn_act(down[i])]
        k = down[i]
        if i + 1 < len(down):
            deeper.append(level(i + 1, down[i]))
            k = up[i + 1]
        deeper.append(nn.Upsample(scale_factor=2, mode=mode))
        deeper = nn.Sequential(*deeper)
        body = _Concat(nn.Sequential(*_conv(cin, skip[i], 1), *bn_act(skip[i])), deeper) if skip[i] else deeper
        return nn.Sequential(body, nn.BatchNorm2d(skip[i] + k), *_conv(skip[i] + k, up[i], 3), *bn_act(up[i]),
                             *_conv(up[i], up[i], 1), *bn_act(up[i]))

    return nn.Sequential(level(0, in_ch), *_conv(up[0], out_ch, 1), nn.Sigmoid())


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy parameters and buffers in creation order (both nets create them in the same order)."""
    with torch.no_grad():
        for a, b in zip(src.parameters(), dst.parameters(), strict=True):
            b.copy_(a)
        for a, b in zip(src.buffers(), dst.buffers(), strict=True):
            b.copy_(a)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((a - b) ** 2)))


def run(noisy: torch.Tensor, clean: torch.Tensor, *, iters: int, time_budget: float = float("inf"), seed: int = 0,
        width: int = 128, net: nn.Module | None = None, code: torch.Tensor | None = None):
    """Fit like the reference notebook; returns per-step (seconds, PSNR of the average) lists."""
    torch.manual_seed(seed)
    h, w = noisy.shape[-2:]
    dev = noisy.device
    net = (net or reference_skip(32, noisy.shape[1], (width,) * 5, (width,) * 5)).to(dev)
    z = code.to(dev) if code is not None else torch.rand(1, 32, h, w, device=dev) * 0.1
    z_saved, jitter = z.clone(), z.clone()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    noisy_np, clean_np = noisy[0].cpu().numpy(), clean[0].cpu().numpy()
    out_avg = None
    times, psnrs = [], []
    t0 = time.perf_counter()
    for _ in range(iters):
        opt.zero_grad()
        z = z_saved + jitter.normal_() * (1 / 30)
        out = net(z)
        if out.shape[-2:] != noisy.shape[-2:]:  # a code padded beyond a small image: crop the centre back
            t, l = (out.shape[-2] - h) // 2, (out.shape[-1] - w) // 2
            out = out[..., t:t + h, l:l + w]
        loss = ((out - noisy) ** 2).mean()
        loss.backward()
        opt.step()
        out_np = out.detach().cpu().numpy()[0]  # the notebook's per-step copy (a GPU sync)
        out_avg = out_np if out_avg is None else out_avg * 0.99 + out_np * 0.01
        _psnr(noisy_np, out_np), _psnr(clean_np, out_np)  # the notebook logs these every step
        psnrs.append(_psnr(clean_np, out_avg))
        times.append(time.perf_counter() - t0)
        if times[-1] > time_budget:
            break
    return times, psnrs
