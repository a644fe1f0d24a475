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


def build_net(name: str, in_channels: int | None, out_channels: int, *, out_hw: tuple[int, int] | None = None,
              **kwargs) -> Generator:
    """Make the generator ``name`` (one of :data:`NETS`) with keyword options. ``out_hw``: the image size,
    passed to the decoders whose output size is fixed at construction (``deep_decoder``, ``conv_decoder``,
    ``tddip``); fully convolutional nets take their size from the code and ignore it.

    >>> build_net("skip", 32, 3).num_parameters()
    2217831
    """
    try:
        cls = NETS[name]
    except KeyError:
        raise ConfigError(f"unknown net {name!r}; choose one of {', '.join(NETS)}") from None
    if getattr(cls, "sized_output", False) and out_hw is not None:
        kwargs["out_hw"] = tuple(out_hw)
    try:
        if in_channels is None:
            return cls(out_channels=out_channels, **kwargs)
        return cls(in_channels, out_channels, **kwargs)
    except TypeError as e:
        raise ConfigError(f"bad option for net {name!r}: {e}") from None


__all__ = ["Generator", "Skip", "UNet", "ResNet", "DeepDecoder", "ConvDecoder", "TDDecoder", "MapNet", "NETS", "build_net",
           "make_code", "CODES"]
