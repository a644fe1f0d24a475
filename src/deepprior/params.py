"""Parameterizations x = P_θ(): what the fit loop optimises.

* :class:`DIP` — a generator with a fixed input code, ``x = f_θ(z + noise)``: the structure of
  the network is the prior.
* :class:`Pixels` — the image itself is the parameter, for classical ``E(x) + λR(x)``
  baselines run through the same loop.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .nets.common import Generator, center_crop


class Parameterization(nn.Module):
    """``forward(perturb=True)`` returns the current image estimate ``(1, C, H, W)``."""

    out_hw: tuple[int, int]

    def forward(self, perturb: bool = True) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class DIP(Parameterization):
    """Deep-image-prior parameterization ``x = crop(f_θ(z + σ_reg·ε))``.

    ``code`` is the fixed input (its spatial size may exceed ``out_hw``, the output is then
    centre-cropped). ``reg_noise_std`` adds fresh N(0, σ²) noise to the code at every step
    (the reference's ``reg_noise_std``); ``generator`` seeds it.

    >>> import torch
    >>> from deepprior.nets import build_net, make_code
    >>> net = build_net("skip", 8, 1, channels_down=[8] * 2, channels_up=[8] * 2, channels_skip=[2] * 2)
    >>> p = DIP(net, make_code("noise", 8, net.code_size(10, 12)), (10, 12))
    >>> p().shape
    torch.Size([1, 1, 10, 12])
    """

    def __init__(self, net: Generator, code: Tensor, out_hw: tuple[int, int], reg_noise_std: float = 0.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.net = net
        self.register_buffer("code", code)
        self.out_hw = tuple(out_hw)
        self.reg_noise_std = float(reg_noise_std)
        self.generator = generator

    def forward(self, perturb: bool = True) -> Tensor:
        z = self.code
        if perturb and self.reg_noise_std > 0:
            eps = torch.randn(z.shape, generator=self.generator, device=z.device, dtype=z.dtype)
            z = z + self.reg_noise_std * eps
        out = self.net(z)
        if tuple(out.shape[-2:]) != self.out_hw:
            out = center_crop(out, *self.out_hw)
        return out


class Pixels(Parameterization):
    """The pixels themselves as parameters (classical regularised reconstruction).

    >>> import torch
    >>> Pixels(torch.zeros(1, 3, 4, 5))().shape
    torch.Size([1, 3, 4, 5])
    """

    def __init__(self, init: Tensor):
        super().__init__()
        self.x = nn.Parameter(init.detach().clone())
        self.out_hw = tuple(init.shape[-2:])

    def forward(self, perturb: bool = True) -> Tensor:
        return self.x


def render(param: Parameterization, batch: int | None = None) -> Tensor:
    """The current output without noise and without gradients. A multi-item parameterization
    (``n_items`` frames) fitted in mini-batches is rendered in the same batches of ``batch`` consecutive
    items, so that batch-dependent layers (BatchNorm in training mode) see what they saw in the fit."""
    with torch.no_grad():
        n = getattr(param, "n_items", None)
        if batch is None or n is None or batch >= n:
            return param(perturb=False)
        return torch.cat([param(perturb=False, index=idx) for idx in torch.arange(n).split(batch)])
