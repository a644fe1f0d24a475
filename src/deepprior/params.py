"""Parameterizations x = P_θ(): what the fit loop optimises.

* :class:`DIP` — a generator with a fixed input code, ``x = f_θ(z + noise)``: the structure of
  the network is the prior.
* :class:`Pixels` — the image itself is the parameter, for classical ``E(x) + λR(x)``
  baselines run through the same loop.
"""

from __future__ import annotations

import copy

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


class BatchedDIP(Parameterization):
    """N independent DIP fits as one parameterization: the generators' weights are stacked and run with
    ``torch.func.vmap`` (a convolution with stacked weights becomes one grouped convolution), so N images
    cost one launch per layer instead of N. Output ``(N, C, H, W)``; ``independent = N`` makes the fit
    loop sum the N mean losses, so each image gets exactly the gradient (and, Adam being elementwise,
    the update) of its own fit. BatchNorm statistics stay per image (vmap keeps the batch of one).

    All DIPs must share the architecture, code shape, output size and ``reg_noise_std``; each keeps its
    own noise generator, so the result equals N separate fits with the same seeds up to float rounding.
    ``dips[i]`` afterwards still hold their initial weights: read the fitted ones with :meth:`unstack`.

    >>> import torch
    >>> from deepprior.nets import build_net, make_code
    >>> def dip(seed):
    ...     torch.manual_seed(seed)
    ...     net = build_net("skip", 4, 1, channels_down=[4] * 2, channels_up=[4] * 2, channels_skip=[1] * 2)
    ...     return DIP(net, make_code("noise", 4, (8, 8)), (8, 8))
    >>> BatchedDIP([dip(0), dip(1), dip(2)])().shape
    torch.Size([3, 1, 8, 8])
    """

    def __init__(self, dips: list[DIP]):
        super().__init__()
        from torch.func import stack_module_state

        if not dips:
            raise ValueError("BatchedDIP needs at least one DIP")
        first = dips[0]
        for d in dips[1:]:
            if (type(d.net) is not type(first.net) or d.code.shape != first.code.shape or d.out_hw != first.out_hw
                    or d.reg_noise_std != first.reg_noise_std
                    or [t.shape for t in d.net.state_dict().values()] != [t.shape for t in first.net.state_dict().values()]):
                raise ValueError("BatchedDIP stacks identical architectures, codes shapes, sizes and reg_noise_std")
        params, buffers = stack_module_state([d.net for d in dips])
        self._pnames, self._bnames = list(params), list(buffers)
        for k, v in params.items():
            self.register_parameter("p_" + k.replace(".", "__"), nn.Parameter(v.detach().clone()))
        for k, v in buffers.items():
            self.register_buffer("b_" + k.replace(".", "__"), v.detach().clone())
        self.register_buffer("code", torch.stack([d.code for d in dips]))
        # The template module lives on the meta device: it holds the structure, never the weights.
        self._template = [copy.deepcopy(first.net).to("meta")]
        self.out_hw, self.reg_noise_std = first.out_hw, first.reg_noise_std
        self.generators = [d.generator for d in dips]
        self.independent = len(dips)

    def train(self, mode: bool = True):
        self._template[0].train(mode)  # not a submodule (it must not move or be saved), so pass it on
        return super().train(mode)

    def _stacked(self):
        p = {k: getattr(self, "p_" + k.replace(".", "__")) for k in self._pnames}
        b = {k: getattr(self, "b_" + k.replace(".", "__")) for k in self._bnames}
        return p, b

    def forward(self, perturb: bool = True) -> Tensor:
        from torch.func import functional_call, vmap

        z = self.code
        if perturb and self.reg_noise_std > 0:
            eps = torch.stack([torch.randn(z.shape[1:], generator=g, device=z.device, dtype=z.dtype)
                               for g in self.generators])
            z = z + self.reg_noise_std * eps
        net = self._template[0]
        out = vmap(lambda p, b, zi: functional_call(net, (p, b), (zi,)))(*self._stacked(), z)
        out = out.flatten(0, 1)
        if tuple(out.shape[-2:]) != self.out_hw:
            out = center_crop(out, *self.out_hw)
        return out

    def unstack(self) -> list[dict[str, Tensor]]:
        """The N fitted generators' state dicts (load with ``net.load_state_dict``)."""
        p, b = self._stacked()
        allv = {**p, **b}
        return [{k: v[i].detach().clone() for k, v in allv.items()} for i in range(self.independent)]


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


class Offset(Parameterization):
    """``x = P_θ() − P_θ₀() + base``: a generator that starts exactly at ``base`` (e.g. a classical
    reconstruction) and whose structure shapes only the changes it makes — a warm start that neither fits the
    generator to ``base`` first nor forgets it. ``P_θ₀()`` is the generator's noise-free output at construction.
    Frames (``index``) pass through for mini-batched multi-item parameterizations; ``batch`` renders the start
    in the fit's mini-batches (BatchNorm in training mode sees what it will see in the fit).

    >>> import torch
    >>> p = Offset(Pixels(torch.zeros(1, 1, 4, 4)), torch.ones(1, 1, 4, 4))
    >>> float(p().detach().mean())
    1.0
    """

    def __init__(self, param: Parameterization, base: Tensor, batch: int | None = None):
        super().__init__()
        self.param = param
        self.out_hw = param.out_hw
        if hasattr(param, "n_items"):
            self.n_items = param.n_items
        with torch.no_grad():
            start = render(param, batch)
        if start.shape != base.shape:
            raise ValueError(f"base {tuple(base.shape)} does not match the generator's output {tuple(start.shape)}")
        self.register_buffer("shift", (base - start).detach())

    def forward(self, perturb: bool = True, index: Tensor | None = None) -> Tensor:
        if index is None:
            return self.param(perturb=perturb) + self.shift
        return self.param(perturb=perturb, index=index) + self.shift[index.to(self.shift.device)]


def render(param: Parameterization, batch: int | None = None) -> Tensor:
    """The current output without noise and without gradients. A multi-item parameterization
    (``n_items`` frames) fitted in mini-batches is rendered in the same batches of ``batch`` consecutive
    items, so that batch-dependent layers (BatchNorm in training mode) see what they saw in the fit."""
    with torch.no_grad():
        n = getattr(param, "n_items", None)
        if batch is None or n is None or batch >= n:
            return param(perturb=False)
        return torch.cat([param(perturb=False, index=idx) for idx in torch.arange(n).split(batch)])
