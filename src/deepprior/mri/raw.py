"""Measured Cartesian k-space from scanner and toolbox files: Siemens twix (``.dat``, through twixtools),
BART ``.cfl/.hdr`` (read and write), plain ``.npy``/``.npz`` — and its preparation for reconstruction
(noise pre-whitening, coil compression, ESPIRiT maps, scaling) into :class:`~deepprior.mri.MRIData`.

Convention: k-space ``(slices, coils, H, W)``, centred (DC at index N//2 along each axis, as sigpy and BART
write it; :func:`~deepprior.mri.fft.fft2c` is the centred orthonormal FFT), H = readout (or the first phase
encode of a 3-D acquisition after the inverse FFT along the readout), W = phase encoding. Unsampled points
are exact zeros: the sampling mask is read off the acquired samples.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..io import check_readable
from .calib import compress_coils, espirit_maps, whiten, whitening_matrix
from .data import MRIData

RAW_EXTS = (".dat", ".cfl", ".hdr", ".npy", ".npz")


@dataclass
class RawKSpace:
    """Measured k-space ``(S, C, H, W)`` complex64, noise-adjust samples ``(C, N)`` if the file has them, and
    what the header says (``meta``: source, voxel size in mm, …)."""

    kspace: Tensor
    noise: Tensor | None = None
    meta: dict = field(default_factory=dict)

    @property
    def slices(self) -> int:
        return self.kspace.shape[0]


def _as_slices(a: np.ndarray, path: Path) -> Tensor:
    if not np.iscomplexobj(a):
        raise InputError(f"{path}: k-space must be complex, got {a.dtype}")
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise InputError(f"{path}: k-space must be (coils, H, W) or (slices, coils, H, W), got shape {a.shape}")
    if min(a.shape[-2:]) < 8:
        raise InputError(f"{path}: k-space {a.shape[-2]}×{a.shape[-1]} is too small to be an image")
    k = torch.from_numpy(np.ascontiguousarray(a, dtype=np.complex64))
    if not torch.isfinite(torch.view_as_real(k)).all():
        raise InputError(f"{path}: k-space contains NaN or Inf")
    if not bool((k != 0).any()):
        raise InputError(f"{path}: k-space is all zeros")
    return k


def read_twix(path) -> RawKSpace:
    """A Siemens twix file (VB or VD/VE; the last measurement of a multi-raid file): image data with the
    readout oversampling removed, lines × coils × columns per slice, and the noise-adjust scan when present.
    Averages, echoes, phases, repetitions, sets, segments and partitions are refused rather than merged;
    partial Fourier acquisitions are refused (no homodyne/POCS here)."""
    try:
        import twixtools
    except ImportError:  # pragma: no cover - a dependency
        raise InputError("reading Siemens .dat files needs twixtools (pip install twixtools)") from None
    path = Path(path)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            meas = twixtools.map_twix(str(path), verbose=False)[-1]
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
        raise InputError(f"{path}: not a readable Siemens twix file ({type(e).__name__}: {e})") from None
    if "image" not in meas:
        raise InputError(f"{path}: the twix file has no image data (scans: {', '.join(meas)})")
    im = meas["image"]
    im.flags["remove_os"] = True
    extra = [d for d in im.non_singleton_dims if d not in ("Lin", "Cha", "Col", "Sli")]
    if extra:
        raise InputError(f"{path}: twix dimension(s) {', '.join(extra)} are not supported yet (only slices × lines "
                         "× coils × columns); export one average/echo/phase, or use ISMRMRD")
    yaps = meas.get("hdr", {}).get("MeasYaps", {})
    ksp = yaps.get("sKSpace", {})
    for key, what in (("ucPhasePartialFourier", "phase"), ("ucReadoutPartialFourier", "readout")):
        if ksp.get(key, 16) not in (16, None):  # 16 = off in the protocol's enumeration
            raise InputError(f"{path}: {what} partial Fourier acquisition: not supported (no homodyne/POCS "
                             "reconstruction yet); acquire without partial Fourier")
    if ksp.get("ucDimension", 2) not in (2, None):
        raise InputError(f"{path}: a 3-D twix acquisition is not supported yet; export one partition")
    dims = list(im.dims)
    a = np.moveaxis(np.asarray(im[:]), [dims.index(d) for d in ("Sli", "Cha", "Col", "Lin")], [0, 1, 2, 3])
    a = a.reshape(a.shape[:4])  # every other dimension is a singleton (checked above)
    noise = None
    if "noise" in meas:
        n = np.asarray(meas["noise"][:])
        ndims = list(meas["noise"].dims)
        n = np.moveaxis(n, ndims.index("Cha"), 0).reshape(n.shape[ndims.index("Cha")], -1)
        noise = torch.from_numpy(n.astype(np.complex64))
    meta = {"source": "twix", "file": path.name}
    sl = (yaps.get("sSliceArray", {}).get("asSlice") or [{}])[0]
    base, lines = ksp.get("lBaseResolution"), ksp.get("lPhaseEncodingLines")
    if sl.get("dReadoutFOV") and base and lines and sl.get("dPhaseFOV"):
        meta["voxel_mm"] = [sl["dReadoutFOV"] / base, sl["dPhaseFOV"] / lines, sl.get("dThickness", 1.0)]
    return RawKSpace(_as_slices(a, path), noise, meta)


def read_cfl(path) -> np.ndarray:
    """A BART ``.cfl``/``.hdr`` pair (either name) as a complex64 array in BART's dimension order."""
    base = Path(path).with_suffix("")
    hdr, cfl = base.with_suffix(".hdr"), base.with_suffix(".cfl")
    for p in (hdr, cfl):
        check_readable(p, "BART file")
    try:
        lines = [ln for ln in hdr.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        dims = [int(v) for v in lines[0].split()]
    except (ValueError, IndexError, UnicodeDecodeError):
        raise InputError(f"{hdr}: not a BART header (expected '# Dimensions' and a line of sizes)") from None
    n = int(np.prod(dims))
    if cfl.stat().st_size != 8 * n:
        raise InputError(f"{cfl}: {cfl.stat().st_size} bytes but the header's dimensions {dims} need {8 * n}")
    return np.fromfile(cfl, dtype=np.complex64).reshape(dims, order="F")


def write_cfl(path, array: np.ndarray) -> None:
    """Write ``array`` as a BART ``.cfl``/``.hdr`` pair (dimensions as given, BART's column-major layout)."""
    base = Path(path).with_suffix("")
    a = np.asarray(array, dtype=np.complex64)
    base.with_suffix(".hdr").write_text("# Dimensions\n" + " ".join(str(d) for d in a.shape) + "\n")
    a.reshape(-1, order="F").tofile(base.with_suffix(".cfl"))


def read_raw(path, key: str | None = None) -> RawKSpace:
    """Measured k-space from ``.dat`` (twix), ``.cfl``/``.hdr`` (BART: ``(H, W, 1, coils)`` for a 2-D slice,
    slices along dimension 13), ``.npy`` or ``.npz`` (``(coils, H, W)`` or ``(slices, coils, H, W)``).

    >>> import tempfile, numpy as np
    >>> d = tempfile.mkdtemp()
    >>> k = (np.random.default_rng(0).standard_normal((2, 16, 12)) + 0j).astype(np.complex64)
    >>> np.save(f"{d}/k.npy", k); write_cfl(f"{d}/k", k.transpose(1, 2, 0)[:, :, None])
    >>> bool(np.array_equal(read_raw(f"{d}/k.npy").kspace[0].numpy(), read_raw(f"{d}/k.cfl").kspace[0].numpy()))
    True
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in (".cfl", ".hdr"):
        check_readable(path, "k-space file")
    if ext == ".dat":
        return read_twix(path)
    if ext in (".cfl", ".hdr"):
        a = read_cfl(path)
        a = a.reshape(*a.shape[:4], -1, order="F") if a.ndim > 4 else a.reshape(*a.shape, *([1] * (5 - a.ndim)))
        if a.shape[2] != 1:
            raise InputError(f"{path}: 3-D BART k-space (dimension 2 = {a.shape[2]}): inverse-FFT the readout and "
                             "pass one 2-D slice")
        k = np.moveaxis(a[:, :, 0], (3, 2), (0, 1))  # (slices·…, coils, H, W)
        return RawKSpace(_as_slices(k, path), None, {"source": "bart", "file": path.name})
    if ext == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except Exception as e:  # noqa: BLE001
            raise InputError(f"cannot read {path}: {e}") from None
    elif ext == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                names = [key] if key else [n for n in z.files if np.iscomplexobj(z[n])]
                if len(names) != 1 or names[0] not in z.files:
                    raise InputError(f"{path}: choose the k-space array with --key ({', '.join(z.files)})")
                a = z[names[0]]
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001
            raise InputError(f"cannot read {path}: {e}") from None
    else:
        raise InputError(f"{path}: unsupported raw k-space format {ext or '(none)'}; use {', '.join(RAW_EXTS)}")
    return RawKSpace(_as_slices(a, path), None, {"source": ext[1:], "file": path.name})


def prepare(raw: RawKSpace, slice_index: int = 0, *, compress: int | None = None, maps: Tensor | None = None,
            kernel: int = 6, threshold: float = 0.02, crop: float = 0.95) -> MRIData:
    """One slice of measured k-space, ready to reconstruct: noise pre-whitened (when the file has a noise
    scan), optionally SVD-compressed to ``compress`` virtual coils, ESPIRiT maps from its calibration region
    (unless ``maps`` are given), sampling mask from the acquired samples, and scaled so that the zero-filled
    coil-combined image has maximum 1 (the scale is kept in ``meta['scale']``)."""
    if not 0 <= slice_index < raw.slices:
        raise InputError(f"slice {slice_index} out of range 0..{raw.slices - 1}")
    k = raw.kspace[slice_index]
    meta = dict(raw.meta, slice=slice_index, slices=raw.slices)
    sampled = k.abs().sum(0) > 0
    if raw.noise is not None:
        w = whitening_matrix(raw.noise)
        k = whiten(k, w, coil_dim=0)
        meta["whitened"] = True
    k, done = compress_coils(k, compress, coil_dim=0)
    meta.update(done)
    if k.shape[0] > 1 and maps is None:
        maps = espirit_maps(k, kernel=kernel, threshold=threshold, crop=crop)
        meta["maps"] = "espirit"
    k = k * sampled  # keep unsampled points exact zeros through the coil mixing
    d = MRIData(k[None], sampled.float()[None], maps, None, meta)
    zf = d.operator.adjoint(d.kspace)
    scale = float(zf.abs().max())
    if scale == 0:
        raise InputError(f"{raw.meta.get('file', 'k-space')}: the coil-combined image is zero (maps and data disagree)")
    d.kspace = d.kspace / scale
    d.meta["scale"] = scale
    d.meta["acquired_fraction"] = float(sampled.float().mean())
    return d


def is_raw(path) -> bool:
    """Whether ``path`` is read by :func:`read_raw` (by extension)."""
    return Path(path).suffix.lower() in RAW_EXTS and not os.fspath(path).lower().endswith(".nii.gz")


def undersample(raw: RawKSpace, *, pattern: str = "vd", accel: float = 3, center: int = 24, seed: int = 0,
                slice_index: int = 0, compress: int | None = None) -> MRIData:
    """Retrospective undersampling of *fully sampled* measured k-space, the reference kept: how to study
    acceleration on one's own data. One slice is pre-whitened (when the file has a noise scan), optionally
    compressed, sampled with the Cartesian ``pattern`` (lines along W, the phase encoding) at ``accel`` with a
    ``center``-line calibration region, seeded. Coil maps are ESPIRiT maps of the *undersampled* data (only
    what a method may see); the reference ``gt`` is the fully sampled k-space combined with the same maps.
    Everything is scaled so that the reference has maximum magnitude 1, as :func:`~deepprior.mri.simulate`.

    >>> k = torch.randn(1, 4, 32, 32, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    >>> d = undersample(RawKSpace(k), accel=2, center=12, seed=0)
    >>> round(d.acceleration), float(d.gt.abs().max())
    (2, 1.0)
    """
    from .sampling import cartesian_mask

    if not 0 <= slice_index < raw.slices:
        raise InputError(f"slice {slice_index} out of range 0..{raw.slices - 1}")
    full = raw.kspace[slice_index]
    if float((full.abs().sum(0) > 0).float().mean()) < 0.99:
        raise InputError(f"{raw.meta.get('file', 'the k-space')} is already undersampled; retrospective sampling "
                         "needs fully sampled k-space")
    meta = dict(raw.meta, slice=slice_index, pattern=pattern, accel_nominal=accel, center=center, seed=seed,
                retrospective=True)
    if raw.noise is not None:
        full = whiten(full, whitening_matrix(raw.noise), coil_dim=0)
        meta["whitened"] = True
    full, done = compress_coils(full, compress, coil_dim=0)
    meta.update(done)
    c, h, w = full.shape
    mask = cartesian_mask(1, h, w, accel=accel, center=center, pattern=pattern, seed=seed)
    k = full * mask
    maps = espirit_maps(k) if c > 1 else None
    ref = MRIData(full[None], torch.ones(1, h, w), maps, None, {})
    gt = ref.operator.adjoint(ref.kspace)
    scale = float(gt.abs().max())
    return MRIData(k[None] / scale, mask, maps, gt / scale, dict(meta, scale=scale))
