"""The two networks of the time-dependent deep image prior (Yoo et al., IEEE TMI 2021):
a MapNet of fully connected layers from a manifold point to a latent code, and the decoder CNN
shared by all frames."""

from __future__ import annotations

import math
from typing import Sequence

from torch import Tensor, nn

from ..errors import ConfigError
from .common import Generator, NearestUpConv, act, conv, upsample


class MapNet(nn.Module):
    """Fully connected ``in_dim → hidden… → prod(code_shape)``, ReLU between layers and none after
    the last, reshaped to the code ``(B, *code_shape)``. The reference is ``3 → 512 → 64`` reshaped
    to ``1×8×8``.

    >>> import torch
    >>> MapNet(3, (1, 8, 8))(torch.zeros(5, 3)).shape
    torch.Size([5, 1, 8, 8])
    """

    def __init__(self, in_dim: int, code_shape: Sequence[int], hidden: Sequence[int] = (512,)):
        super().__init__()
        if in_dim < 1 or any(h < 1 for h in hidden) or any(c < 1 for c in code_shape):
            raise ConfigError(f"MapNet sizes must be positive: in {in_dim}, hidden {list(hidden)}, code {list(code_shape)}")
        self.code_shape = tuple(int(c) for c in code_shape)
        widths = [in_dim, *hidden, math.prod(self.code_shape)]
        layers: list[nn.Module] = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i < len(widths) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)

    def forward(self, p: Tensor) -> Tensor:
        return self.net(p).reshape(p.shape[0], *self.code_shape)


class TDDecoder(Generator):
    """The TDDIP decoder: ``conv3×3 → BN → ReLU`` at the seed size, then ``ups`` times nearest ×2
    upsampling each followed by ``1 + blocks`` such convolutions, and a final 3×3 conv to
    ``out_channels`` (2 = real/imag). No biases, zero padding, no output activation — the reference
    ``basicnet`` (128 channels, 1 block, 4 upsamplings: 8² → 128²). ``fold_upsample`` (default) computes each nearest
    upsampling and the convolution after it as one :class:`~deepprior.nets.common.NearestUpConv`: the same function,
    1.10–1.13× faster per TDDIP step on a 2-core CPU (``bench/mri_speed.py``).

    Give ``ups`` or the image size ``out_hw``, from which the number of upsamplings that takes an 8-pixel
    seed to the image is chosen; :meth:`code_size` rounds the seed up so any ``(h, w)`` works (the output
    is then centre-cropped).

    ``channels`` is one width, or one per level from the seed to the image (``ups + 1`` of them);
    ``fine_channels`` sets the width of the image's level alone, whatever the image size. Most of the
    decoder's work is at that level (4× the pixels of the one before), so ``tddip-cpu`` halves it there:
    1.6× faster per step in float32, +0.14 dB at OCMR k-t 8× within its time budget (docs/mri.md,
    "A narrower image level").

    >>> net = TDDecoder(1, 2, channels=16, out_hw=(100, 90), fine_channels=8)
    >>> net.code_size(100, 90), net.ups, net.channels
    ((7, 6), 4, [16, 16, 16, 16, 8])
    """

    sized_output = True

    def __init__(self, in_channels: int = 1, out_channels: int = 2, channels: int | Sequence[int] = 128,
                 ups: int | None = None, blocks: int = 1, upsample_mode: str = "nearest", bias: bool = False,
                 act_fun: str = "ReLU", out_hw: tuple[int, int] | None = None, fold_upsample: bool = True,
                 fine_channels: int | None = None):
        super().__init__()
        if ups is None and out_hw is None:
            raise ConfigError("the TDDIP decoder needs ups (upsamplings) or out_hw (the image size)")
        if ups is None:
            ups = max(0, math.ceil(math.log2(max(out_hw) / 8)))
        widths = [int(channels)] * (ups + 1) if isinstance(channels, (int, float)) else [int(c) for c in channels]
        if fine_channels is not None and len(widths) == ups + 1:
            widths[-1] = int(fine_channels)  # the image's level, whatever the number of levels
        if ups < 0 or blocks < 0 or len(widths) != ups + 1 or min(widths) < 1:
            raise ConfigError(f"bad TDDIP decoder size: channels {channels}, blocks {blocks}, ups {ups} (channels is one "
                              f"width or one per level, {ups + 1} here)")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.channels = widths[0] if len(set(widths)) == 1 else widths
        self.blocks, self.upmode, self.bias, self.act_fun = blocks, upsample_mode, bias, act_fun
        self.fold = bool(fold_upsample) and upsample_mode == "nearest"
        self._build(ups, widths)

    def _unit(self, cin: int, cout: int, up: bool = False) -> list[nn.Module]:
        c = NearestUpConv(cin, cout, bias=self.bias) if up else conv(cin, cout, 3, bias=self.bias, pad="zero")
        return [c, nn.BatchNorm2d(cout), act(self.act_fun)]

    def _build(self, ups: int, widths: list[int]) -> None:
        self.ups = ups
        layers = self._unit(self.in_channels, widths[0])
        for _ in range(self.blocks):
            layers += self._unit(widths[0], widths[0])
        for lev in range(1, ups + 1):
            cin, cout = widths[lev - 1], widths[lev]
            if self.fold:
                # the upsampling is folded into the next convolution (NearestUpConv: the same function, 1.5x faster);
                # the Identity keeps the layer indices, so state dicts of the unfolded decoder still load
                layers += [nn.Identity(), *self._unit(cin, cout, up=True)]
            else:
                layers += [upsample(self.upmode, 2), *self._unit(cin, cout)]
            for _ in range(self.blocks):
                layers += self._unit(cout, cout)
        layers.append(conv(widths[-1], self.out_channels, 3, bias=self.bias, pad="zero"))
        self.body = nn.Sequential(*layers)

    def code_size(self, h: int, w: int) -> tuple[int, int]:
        f = 2 ** self.ups
        return max(1, math.ceil(h / f)), max(1, math.ceil(w / f))

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z)
