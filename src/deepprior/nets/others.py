"""Further generators: U-Net, ResNet (full resolution), Deep Decoder and ConvDecoder."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .common import Generator, act, conv, interpolate_to, padded_size


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm {kind!r}; choose batch, instance or none")


class UNet(Generator):
    """U-Net (Ronneberger et al.) as used by DIP: ``depth`` max-pool scales with two 3×3
    conv-norm-act blocks each, upsampling + concatenation on the way up.

    >>> UNet(32, 3, features=(8, 16, 32))(torch.rand(1, 32, 40, 40)).shape
    torch.Size([1, 3, 40, 40])
    """

    def __init__(self, in_channels: int = 32, out_channels: int = 3,
                 features=(16, 32, 64, 128, 256), upsample_mode: str = "bilinear",
                 norm: str = "instance", pad: str = "reflection", act_fun: str = "LeakyReLU",
                 need_sigmoid: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.depth = len(features) - 1

        def block(i, o):
            return nn.Sequential(conv(i, o, 3, pad=pad), _norm(norm, o), act(act_fun),
                                 conv(o, o, 3, pad=pad), _norm(norm, o), act(act_fun))

        self.enc = nn.ModuleList([block(in_channels, features[0])] +
                                 [block(features[i], features[i + 1]) for i in range(self.depth)])
        self.pool = nn.MaxPool2d(2)
        self.upmode = upsample_mode
        self.reduce = nn.ModuleList([conv(features[i + 1], features[i], 3, pad=pad) for i in range(self.depth)])
        self.dec = nn.ModuleList([block(2 * features[i], features[i]) for i in range(self.depth)])
        head = [conv(features[0], out_channels, 1)]
        if need_sigmoid:
            head.append(nn.Sigmoid())
        self.head = nn.Sequential(*head)

    def code_size(self, h, w):
        m = 2 ** self.depth
        return padded_size(h, m, 2 * m), padded_size(w, m, 2 * m)

    def forward(self, z: Tensor) -> Tensor:
        skips = []
        x = z
        for i, e in enumerate(self.enc):
            x = e(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(self.depth)):
            s = skips[i]
            x = self.reduce[i](interpolate_to(x, s.shape[-2:], self.upmode))
            x = self.dec[i](torch.cat([s, x], dim=1))
        return self.head(x)


class ResNet(Generator):
    """Full-resolution residual net (DIP's ``ResNet``: 10 blocks of 16 channels by default).

    >>> ResNet(8, 3, blocks=2, channels=8)(torch.rand(1, 8, 9, 7)).shape
    torch.Size([1, 3, 9, 7])
    """

    def __init__(self, in_channels: int = 32, out_channels: int = 3, blocks: int = 10, channels: int = 16,
                 pad: str = "reflection", act_fun: str = "LeakyReLU", need_sigmoid: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stem = nn.Sequential(conv(in_channels, channels, 3, pad=pad), act(act_fun))
        self.blocks = nn.ModuleList(
            nn.Sequential(conv(channels, channels, 3, pad=pad), nn.BatchNorm2d(channels), act(act_fun),
                          conv(channels, channels, 3, pad=pad), nn.BatchNorm2d(channels))
            for _ in range(blocks))
        head = [conv(channels, channels, 3, pad=pad), nn.BatchNorm2d(channels), conv(channels, out_channels, 3, pad=pad)]
        if need_sigmoid:
            head.append(nn.Sigmoid())
        self.head = nn.Sequential(*head)

    def code_size(self, h, w):
        return max(h, 2), max(w, 2)

    def forward(self, z: Tensor) -> Tensor:
        x = self.stem(z)
        for b in self.blocks:
            x = x + b(x)
        return self.head(x)


def _geometric_sizes(start: tuple[int, int], end: tuple[int, int], n: int) -> list[tuple[int, int]]:
    """``n`` sizes growing geometrically from ``start`` (excluded) to ``end`` (included)."""
    sizes = []
    for i in range(1, n + 1):
        t = i / n
        sizes.append(tuple(int(math.ceil(s * (e / s) ** t - 1e-9)) for s, e in zip(start, end)))
    sizes[-1] = end
    return sizes


class DeepDecoder(Generator):
    """Deep Decoder (Heckel & Hand, ICLR 2019): an under-parameterised decoder of ``layers``
    blocks ``1×1 conv → upsample → ReLU → channel norm`` on a small random seed tensor; no
    convolutions wider than 1×1, so the structure alone regularises. Upsamples to exactly
    ``out_hw`` (sizes need not be powers of two); without it, to ``2^(layers-1)`` × the code size.

    >>> net = DeepDecoder(out_channels=3, channels=16, layers=4, out_hw=(50, 70))
    >>> hw = net.code_size(50, 70)
    >>> hw, tuple(net(torch.rand(1, 16, *hw)).shape[-2:])
    ((7, 9), (50, 70))
    """

    sized_output = True  # the output size is a constructor argument (build_net passes out_hw)

    def __init__(self, in_channels: int | None = None, out_channels: int = 3, channels: int = 64, layers: int = 6,
                 kernel: int = 1, upsample_mode: str = "bilinear", need_sigmoid: bool = True,
                 out_hw: tuple[int, int] | None = None):
        super().__init__()
        if layers < 2:
            raise ConfigError("a deep decoder needs at least 2 layers")
        self.in_channels, self.out_channels, self.layers = channels if in_channels is None else in_channels, out_channels, layers
        self.upmode = upsample_mode
        chans = [self.in_channels] + [channels] * layers
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"conv": conv(chans[i], chans[i + 1], kernel, pad="reflection"),
                           "norm": nn.BatchNorm2d(chans[i + 1])}) for i in range(layers))
        head = [conv(channels, out_channels, 1)]
        if need_sigmoid:
            head.append(nn.Sigmoid())
        self.head = nn.Sequential(*head)
        self.out_hw = None if out_hw is None else tuple(out_hw)

    def code_size(self, h, w):
        f = 2 ** (self.layers - 1)
        return max(1, math.ceil(h / f)), max(1, math.ceil(w / f))

    def _sizes(self, code_hw) -> list[tuple[int, int]]:
        out = self.out_hw or tuple(s * 2 ** (self.layers - 1) for s in code_hw)
        return _geometric_sizes(tuple(code_hw), out, self.layers - 1)

    def forward(self, z: Tensor) -> Tensor:
        x = z
        sizes = self._sizes(z.shape[-2:])
        for i, b in enumerate(self.blocks):
            x = b["conv"](x)
            if i < len(sizes):
                x = interpolate_to(x, sizes[i], self.upmode)
            x = b["norm"](torch.relu(x))
        return self.head(x)


class ConvDecoder(Generator):
    """ConvDecoder (Darestani & Heckel, 2021): ``layers`` blocks ``upsample → 3×3 conv → ReLU →
    BatchNorm`` growing a small seed geometrically to the output size, then a 1×1 conv. Built
    for MRI (``need_sigmoid=False``, 2 output channels = real/imag, or one pair per coil). The output
    is ``out_hw``; without it, ``seed_factor`` × the code size.

    >>> net = ConvDecoder(out_channels=2, channels=16, layers=4, need_sigmoid=False, out_hw=(40, 24))
    >>> hw = net.code_size(40, 24)
    >>> hw, tuple(net(torch.rand(1, 16, *hw)).shape[-2:])
    ((5, 3), (40, 24))
    """

    sized_output = True

    def __init__(self, in_channels: int | None = None, out_channels: int = 3, channels: int = 128, layers: int = 6,
                 kernel: int = 3, upsample_mode: str = "nearest", seed_factor: int = 8,
                 need_sigmoid: bool = True, out_hw: tuple[int, int] | None = None):
        super().__init__()
        self.in_channels = channels if in_channels is None else in_channels
        self.out_channels, self.layers, self.upmode, self.seed_factor = out_channels, layers, upsample_mode, seed_factor
        chans = [self.in_channels] + [channels] * layers
        self.blocks = nn.ModuleList(
            nn.Sequential(conv(chans[i], chans[i + 1], kernel, pad="zero"), nn.ReLU(inplace=True),
                          nn.BatchNorm2d(chans[i + 1])) for i in range(layers))
        head = [conv(channels, out_channels, 1)]
        if need_sigmoid:
            head.append(nn.Sigmoid())
        self.head = nn.Sequential(*head)
        self.out_hw = None if out_hw is None else tuple(out_hw)

    def code_size(self, h, w):
        return max(2, math.ceil(h / self.seed_factor)), max(2, math.ceil(w / self.seed_factor))

    def forward(self, z: Tensor) -> Tensor:
        out = self.out_hw or tuple(s * self.seed_factor for s in z.shape[-2:])
        sizes = _geometric_sizes(tuple(z.shape[-2:]), out, self.layers)
        x = z
        for size, b in zip(sizes, self.blocks):
            x = b(interpolate_to(x, size, self.upmode))
        return self.head(x)
