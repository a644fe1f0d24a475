"""MRI with untrained networks and the classical methods they must beat — the whole API in one place.

Data and files
    :func:`simulate` (magnitude series → multi-coil undersampled k-space, seeded), :func:`load` (deepprior/
    fastMRI ``.h5``, Cartesian ISMRMRD, measured raw k-space: Siemens ``.dat``, BART ``.cfl``, ``.npy``),
    :func:`read_raw` / :func:`undersample` (retrospective sampling of fully sampled measured k-space),
    :func:`save` (``.h5``/``.npy``/NIfTI/DICOM/PNG/GIF), :class:`MRIData`.
Reconstruction
    :func:`reconstruct` ``(data, method=…)`` with ``zerofill``, ``cgsense``, ``tv`` (k-t TV), ``wavelet``
    (L1-wavelet), ``lps`` (L+S),
    ``dip`` (static DIP/ConvDecoder), ``tddip``, ``gip`` — every method returns an :class:`MRIResult`;
    :func:`tddip` and :func:`gip` directly for their full options.
Operators and tools
    :class:`CartesianSENSE`, :class:`RadialSENSE`, :class:`ChannelsToComplex`, sampling patterns
    (:func:`cartesian_mask`, :func:`golden_angle_radial`), coil maps (:func:`espirit_maps`, :func:`estimate_maps`),
    noise whitening and coil compression (:mod:`deepprior.mri.calib`), :func:`admm`.
Metrics
    :func:`mri_metrics` (per-frame and mean PSNR/SSIM/NRMSE/SER on magnitudes), :data:`metrics` the module.

>>> import torch, deepprior.mri as mri
>>> d = mri.simulate(torch.rand(3, 32, 32), coils=4, accel=4, seed=0)
>>> r = mri.reconstruct(d, method="cgsense", device="cpu")
>>> tuple(r.image.shape), sorted(r.metrics)[:3]
((3, 32, 32), ['nrmse', 'per_frame', 'psnr'])
"""

from . import metrics
from .admm import admm
from .calib import espirit_maps
from .coils import birdcage_maps, estimate_maps, normalize_maps, rss
from .data import MRIData, simulate, smooth_phase
from .fft import fft2c, ifft2c
from .gip import gip
from .io import load_data as load
from .io import save_recon as save
from .methods import METHODS, OPTIONS, MRIResult, reconstruct
from .metrics import mri_metrics
from .nufft import RadialSENSE
from .operators import CartesianSENSE, ChannelsToComplex
from .raw import read_raw, undersample
from .pics import KT_TV_TEMPORAL, KT_TV_WEIGHT, kt_tv, l1_wavelet, pics
from .recon import cg, cg_sense, low_rank_plus_sparse, zero_filled
from .sampling import PATTERNS, cartesian_mask, golden_angle_radial
from .tddip import tddip

__all__ = ["simulate", "load", "save", "read_raw", "undersample", "espirit_maps", "reconstruct", "MRIResult", "MRIData", "METHODS", "OPTIONS", "tddip", "gip",
           "admm", "metrics", "mri_metrics", "CartesianSENSE", "RadialSENSE", "ChannelsToComplex", "smooth_phase",
           "birdcage_maps", "estimate_maps", "normalize_maps", "rss", "fft2c", "ifft2c", "cg", "cg_sense", "kt_tv", "l1_wavelet",
           "KT_TV_WEIGHT", "KT_TV_TEMPORAL", "pics", "low_rank_plus_sparse", "zero_filled", "cartesian_mask", "golden_angle_radial", "PATTERNS"]
