"""MRI: Cartesian SENSE operators, sampling patterns, coil maps, simulation and classical baselines."""

from .coils import birdcage_maps, estimate_maps, normalize_maps, rss
from .data import MRIData, simulate, smooth_phase
from .fft import fft2c, ifft2c
from .operators import CartesianSENSE, ChannelsToComplex
from .recon import cg, cg_sense, kt_tv, low_rank_plus_sparse, zero_filled
from .sampling import PATTERNS, cartesian_mask, golden_angle_radial

__all__ = ["CartesianSENSE", "ChannelsToComplex", "MRIData", "simulate", "smooth_phase", "birdcage_maps",
           "estimate_maps", "normalize_maps", "rss", "fft2c", "ifft2c", "cg", "cg_sense", "kt_tv",
           "low_rank_plus_sparse", "zero_filled", "cartesian_mask", "golden_angle_radial", "PATTERNS"]
