"""Generators x = f_θ(z) and their input codes; ``build_net`` makes one by name."""

from __future__ import annotations

from ..errors import ConfigError
from .common import Generator
from .inputs import CODES, make_code
from .others import ConvDecoder, DeepDecoder, ResNet, UNet
from .skip import Skip
from .tddip import MapNet, TDDecoder

NETS = {"skip": Skip, "unet": UNet, "resnet": ResNet, "deep_decoder": DeepDecoder, "conv_decoder": ConvDecoder,
        "tddip": TDDecoder}


def build_net(name: str, in_channels: int | None, out_channels: int, **kwargs) -> Generator:
    """Make the generator ``name`` (one of :data:`NETS`) with keyword options.

    >>> build_net("skip", 32, 3).num_parameters()
    2217831
    """
    try:
        cls = NETS[name]
    except KeyError:
        raise ConfigError(f"unknown net {name!r}; choose one of {', '.join(NETS)}") from None
    try:
        if in_channels is None:
            return cls(out_channels=out_channels, **kwargs)
        return cls(in_channels, out_channels, **kwargs)
    except TypeError as e:
        raise ConfigError(f"bad option for net {name!r}: {e}") from None


__all__ = ["Generator", "Skip", "UNet", "ResNet", "DeepDecoder", "ConvDecoder", "TDDecoder", "MapNet", "NETS", "build_net",
           "make_code", "CODES"]
