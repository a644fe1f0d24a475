"""Forward models (operators): what the measurement is, given the image."""

from .base import Identity, LinearOperator, Operator, PerImage
from .image import Blur, Downsample, Mask, gaussian_kernel, lanczos_kernel

__all__ = ["Operator", "LinearOperator", "Identity", "PerImage", "Mask", "Downsample", "Blur",
           "lanczos_kernel", "gaussian_kernel"]
