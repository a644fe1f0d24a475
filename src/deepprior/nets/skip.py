"""The DIP ``skip`` hourglass: an encoder-decoder with (optional) skip connections per scale."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .common import Generator, act, as_list, center_crop, conv, upsample


class _Level(nn.Module):
    """One scale: downsample → deeper levels → upsample, concatenated with a 1×1 skip branch."""

    def __init__(self, in_ch: int, down: int, up: int, skip: int, deeper: "_Level | None",
                 deeper_up: int | None, *, fd: int, fu: int, fs: int, up_mode: str, down_mode: str,
                 pad: str, bias: bool, act_fun: str, need1x1_up: bool):
        super().__init__()
        self.skip = None
        if skip:
            self.skip = nn.Sequential(conv(in_ch, skip, fs, bias=bias, pad=pad), nn.BatchNorm2d(skip), act(act_fun))
        self.down = nn.Sequential(
            conv(in_ch, down, fd, 2, bias=bias, pad=pad, downsample=down_mode), nn.BatchNorm2d(down), act(act_fun),
            conv(down, down, fd, bias=bias, pad=pad), nn.BatchNorm2d(down), act(act_fun),
        )
        self.deeper = deeper
        self.up = upsample(up_mode)
        k = deeper_up if deeper is not None else down
        self.bn_cat = nn.BatchNorm2d(skip + k)
        post = [conv(skip + k, up, fu, bias=bias, pad=pad), nn.BatchNorm2d(up), act(act_fun)]
        if need1x1_up:
            post += [conv(up, up, 1, bias=bias, pad=pad), nn.BatchNorm2d(up), act(act_fun)]
        self.post = nn.Sequential(*post)

    def forward(self, x: Tensor) -> Tensor:
        d = self.down(x)
        if self.deeper is not None:
            d = self.deeper(d)
        d = self.up(d)
        if self.skip is not None:
            s = self.skip(x)
            # Odd sizes make the two branches differ by a pixel: crop both to the smaller.
            h, w = min(s.shape[-2], d.shape[-2]), min(s.shape[-1], d.shape[-1])
            d = torch.cat([center_crop(s, h, w), center_crop(d, h, w)], dim=1)
        return self.post(self.bn_cat(d))


class Skip(Generator):
    """Encoder-decoder with skip connections, as in Ulyanov et al.'s Deep Image Prior.

    Each scale ``i`` has a strided ``filter_size_down`` conv (``channels_down[i]``), a second
    conv, the deeper scales, an upsampling, concatenation with a ``channels_skip[i]``-channel
    1×1 skip branch (0 disables it), BatchNorm, a ``filter_size_up`` conv to
    ``channels_up[i]`` and an optional 1×1 conv; BatchNorm + LeakyReLU(0.2) after every conv.
    A final 1×1 conv (and sigmoid) gives ``out_channels``.

    >>> net = Skip(32, 3, [128] * 5, [128] * 5, [4] * 5, upsample_mode="bilinear")
    >>> net.num_parameters()
    2217831
    """

    def __init__(self, in_channels: int = 32, out_channels: int = 3,
                 channels_down=(128,) * 5, channels_up=(128,) * 5, channels_skip=(4,) * 5,
                 filter_size_down=3, filter_size_up=3, filter_size_skip: int = 1,
                 upsample_mode="bilinear", downsample_mode="stride", pad: str = "reflection",
                 act_fun: str = "LeakyReLU", need_sigmoid: bool = True, need_bias: bool = True,
                 need1x1_up: bool = True):
        super().__init__()
        n = len(channels_down)
        if not (len(channels_up) == len(channels_skip) == n) or n == 0:
            raise ConfigError("channels_down, channels_up and channels_skip need the same (non-zero) length")
        if min(channels_down) < 1 or min(channels_up) < 1 or min(channels_skip) < 0:
            raise ConfigError("channel counts must be positive (skip channels may be 0)")
        fd, fu = as_list(filter_size_down, n, "filter_size_down"), as_list(filter_size_up, n, "filter_size_up")
        um, dm = as_list(upsample_mode, n, "upsample_mode"), as_list(downsample_mode, n, "downsample_mode")
        self.in_channels, self.out_channels, self.n_scales = in_channels, out_channels, n
        level = None
        for i in reversed(range(n)):
            in_ch = in_channels if i == 0 else channels_down[i - 1]
            level = _Level(in_ch, channels_down[i], channels_up[i], channels_skip[i], level,
                           channels_up[i + 1] if i + 1 < n else None, fd=fd[i], fu=fu[i], fs=filter_size_skip,
                           up_mode=um[i], down_mode=dm[i], pad=pad, bias=need_bias, act_fun=act_fun,
                           need1x1_up=need1x1_up)
        self.body = level
        head = [conv(channels_up[0], out_channels, 1, bias=need_bias, pad=pad)]
        if need_sigmoid:
            head.append(nn.Sigmoid())
        self.head = nn.Sequential(*head)

    def code_size(self, h: int, w: int) -> tuple[int, int]:
        from .common import padded_size

        m = 2 ** self.n_scales
        # The deepest feature map must keep ≥ 2 pixels for a reflection-padded 3×3 conv.
        return padded_size(h, m, 2 * m), padded_size(w, m, 2 * m)

    def forward(self, z: Tensor) -> Tensor:
        return self.head(self.body(z))
