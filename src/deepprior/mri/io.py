"""MRI files: magnitude/complex series (.mat v5 and v7.3, .npy/.npz, NIfTI), deepprior/fastMRI
k-space .h5, and outputs (.h5, .npy, NIfTI, PNG montage, animated GIF). Errors are InputErrors
that name the file and the problem."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..io import atomic_output, check_readable, load_npy
from .coils import estimate_maps
from .data import MRIData


def _pick_array(arrays: dict, path: Path, key: str | None) -> np.ndarray:
    if key is not None:
        if key not in arrays:
            raise InputError(f"{path} has no variable {key!r}; it has {', '.join(sorted(arrays)) or 'none'}")
        return np.asarray(arrays[key])
    cands = {k: v for k, v in arrays.items() if isinstance(v, np.ndarray) and v.ndim in (2, 3) and
             (np.issubdtype(v.dtype, np.number))}
    if not cands:
        raise InputError(f"{path} holds no 2-D or 3-D numeric array; variables: {', '.join(sorted(arrays)) or 'none'}")
    if len(cands) > 1:
        # Prefer the conventional names of reference images before guessing by size.
        for k in ("label", "gt", "img", "image", "X", "image0", "data"):
            if k in cands:
                return cands[k]
        raise InputError(f"{path} holds several arrays ({', '.join(sorted(cands))}); choose one with --key")
    return next(iter(cands.values()))


def load_series(path, key: str | None = None) -> np.ndarray:
    """Read an image series as ``(T, H, W)`` (magnitude or complex). A 3-D array whose last axis is
    the shortest is taken as (H, W, T), the MATLAB habit, and reordered."""
    path = Path(path)
    check_readable(path, "series")
    ext = "".join(path.suffixes[-2:]).lower() if path.name.lower().endswith(".nii.gz") else path.suffix.lower()
    if ext == ".mat":
        try:
            import scipy.io as sio

            arrays = {k: v for k, v in sio.loadmat(path).items() if not k.startswith("__")}
        except NotImplementedError:  # MATLAB v7.3 = HDF5
            import h5py

            with h5py.File(path, "r") as f:
                arrays = {k: np.asarray(f[k]).T for k in f if isinstance(f[k], h5py.Dataset)}
            arrays = {k: (v["real"] + 1j * v["imag"]) if v.dtype.names == ("real", "imag") else v
                      for k, v in arrays.items()}
        except Exception as e:
            raise InputError(f"cannot read MATLAB file {path}: {e}") from None
        a = _pick_array(arrays, path, key)
    elif ext == ".npy":
        a = load_npy(path, "series")
    elif ext == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:
            raise InputError(f"cannot read {path}: {e}") from None
        a = _pick_array(arrays, path, key)
    elif ext in (".nii", ".nii.gz"):
        import nibabel as nib

        try:
            a = np.asarray(nib.load(path).dataobj)
        except Exception as e:
            raise InputError(f"cannot read NIfTI {path}: {e}") from None
        a = np.squeeze(a)
    else:
        raise InputError(f"{path}: unsupported series format {ext or '(none)'}; use .mat, .npy, .npz or .nii(.gz)")
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise InputError(f"{path}: expected a 2-D image or a 3-D series, got shape {a.shape}")
    if int(np.argmin(a.shape)) == 2 and a.shape[2] < min(a.shape[:2]):
        a = np.moveaxis(a, -1, 0)
    if min(a.shape[1:]) < 4:
        raise InputError(f"{path}: frames of {a.shape[1]}×{a.shape[2]} pixels are too small (shape {a.shape}); "
                         "the series must be (frames, H, W) or (H, W) with H, W ≥ 4")
    if not np.isfinite(a).all():
        raise InputError(f"{path}: the series contains NaN or Inf")
    return a


def save_data(path, data: MRIData, overwrite: bool = False, groups: dict[str, dict] | None = None) -> None:
    """Write MRIData as HDF5: datasets ``kspace``, ``mask``/``traj``, ``maps``, ``gt`` (multi-shot: ``shots``, ``motion``); ``meta`` as JSON.
    ``groups`` adds HDF5 groups ``{name: {dataset: array, ..., "attrs": {key: JSON-able}}}`` in the same atomic
    write (e.g. the true parameter maps of a mapping simulation)."""
    import h5py

    path = Path(path)
    if path.exists() and not overwrite:
        from ..errors import OutputExistsError

        raise OutputExistsError(f"output {path} exists; pass --overwrite to replace it")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f["kspace"] = data.kspace.numpy()
            for name in ("mask", "maps", "gt", "traj", "shots", "motion"):
                v = getattr(data, name)
                if v is not None:
                    f[name] = v.numpy()
            f.attrs["format"] = "deepprior-mri-1"
            f.attrs["shape"] = list(data.shape)
            f.attrs["meta"] = json.dumps(data.meta)
            for name, content in (groups or {}).items():
                g = f.create_group(name)
                for key, v in content.items():
                    if key == "attrs":
                        for a, val in v.items():
                            g.attrs[a] = json.dumps(val)
                    elif v is not None:
                        g[key] = np.asarray(v)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_data(path, *, slice_index: int | None = None, calib: int = 24, compress: int | None = None) -> MRIData:
    """Read k-space: deepprior's own .h5, a fastMRI .h5 (``kspace`` (slices, coils, H, W); the mask is taken
    from the non-zero phase-encode columns, coil maps estimated from the centre), Cartesian ISMRMRD, or
    measured raw k-space (Siemens ``.dat``, BART ``.cfl``, ``.npy``/``.npz``: see :mod:`deepprior.mri.raw` —
    whitened, ESPIRiT maps, scaled)."""
    import h5py

    from .raw import is_raw, prepare, read_raw

    path = Path(path)
    if is_raw(path):
        raw = read_raw(path)
        if raw.slices > 1 and slice_index is None:
            raise InputError(f"{path} holds {raw.slices} slices; choose one with slice_index (0..{raw.slices - 1}), "
                             "or use load_slices for all")
        return prepare(raw, slice_index or 0, compress=compress)
    check_readable(path, "k-space file")
    try:
        f = h5py.File(path, "r")
    except Exception as e:
        raise InputError(f"cannot read {path} as HDF5: {e}") from None
    with f:
        if "dataset" in f and "xml" in f["dataset"]:
            f.close()
            from .mrd import read_ismrmrd

            return read_ismrmrd(path).load(slice_index, calib=calib, compress=compress)
        if "kspace" not in f:
            raise InputError(f"{path} has no 'kspace' dataset (keys: {', '.join(f.keys()) or 'none'}); "
                             "expected a deepprior or fastMRI file")
        if f.attrs.get("format") == "deepprior-mri-1":
            get = lambda k: torch.from_numpy(np.asarray(f[k])) if k in f else None  # noqa: E731
            meta = json.loads(f.attrs.get("meta", "{}"))
            shape = tuple(int(v) for v in f.attrs.get("shape", ())) or None
            return MRIData(get("kspace"), get("mask"), get("maps"), get("gt"), meta, traj=get("traj"), shape=shape,
                           shots=get("shots"), motion=get("motion"))
        # fastMRI: (slices, coils, H, W) multi-coil or (slices, H, W) single-coil; read one slice only
        dset = f["kspace"]
        if dset.ndim not in (3, 4):
            raise InputError(f"{path}: fastMRI 'kspace' must be (slices, [coils,] H, W), got {dset.shape}")
        if not np.issubdtype(dset.dtype, np.complexfloating):
            raise InputError(f"{path}: 'kspace' must be complex, got {dset.dtype}")
        s = dset.shape[0] // 2 if slice_index is None else slice_index
        if not 0 <= s < dset.shape[0]:
            raise InputError(f"{path}: slice {s} out of range 0..{dset.shape[0] - 1}")
        k = np.asarray(dset[s])
    if k.ndim == 2:
        k = k[None]
    ks = torch.from_numpy(k.astype(np.complex64))[None]  # (1, C, H, W)
    if not torch.isfinite(torch.view_as_real(ks)).all():
        raise InputError(f"{path}: k-space contains NaN or Inf")
    cols = (ks.abs().sum(dim=(0, 1, 2)) > 0).float()
    mask = cols.expand(1, ks.shape[-2], ks.shape[-1]).contiguous()
    from .calib import compress_coils

    ks, done = compress_coils(ks, compress, coil_dim=1)
    meta = {"source": "fastMRI", "slice": s, **done}
    maps = estimate_maps(ks[0], center=calib) if ks.shape[1] > 1 else None
    scale = float(ks.abs().max())
    return MRIData(ks / scale, mask, maps, None, {**meta, "scale": scale})


def open_slices(path, *, compress: int | None = None):
    """``(number of 2-D slices, load)`` with ``load(s)`` → the :class:`MRIData` of slice ``s``. A raw file
    (Siemens, BART, ``.npy``) is read once and prepared slice by slice; a fastMRI file is read one slice at a
    time; other files hold one slice (``load(0)`` reads them as :func:`load_data` does)."""
    import h5py

    from .raw import is_raw, prepare, read_raw

    path = Path(path)
    if is_raw(path):
        raw = read_raw(path)
        return raw.slices, lambda s: prepare(raw, s, compress=compress)
    check_readable(path, "k-space file")
    n = 1
    try:
        with h5py.File(path, "r") as f:
            mrd = "dataset" in f and "xml" in f["dataset"]
            if "kspace" in f and f.attrs.get("format") != "deepprior-mri-1" and f["kspace"].ndim >= 3:
                n = int(f["kspace"].shape[0])
    except OSError:
        mrd = False  # not HDF5: load_data gives the one-line error
    if mrd:  # parsed once; each slice is assembled from the acquisitions in memory
        from .mrd import read_ismrmrd

        parsed = read_ismrmrd(path)
        return parsed.slices, lambda s: parsed.load(s if parsed.slices > 1 else None, compress=compress)
    if n == 1:
        return 1, lambda s: load_data(path, compress=compress)
    return n, lambda s: load_data(path, slice_index=s, compress=compress)


def save_dicom(path, x: torch.Tensor, voxel_mm=None) -> None:
    """|x| as one multi-frame 16-bit grayscale secondary-capture DICOM (MR modality), frames in order.
    RescaleSlope maps the stored integers back to the magnitude scale; ``voxel_mm`` (rows, columns[, slice])
    sets PixelSpacing and SliceThickness."""
    import datetime

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    m = x.detach().abs().cpu().numpy()
    if m.ndim == 2:
        m = m[None]
    vmax = float(m.max()) or 1.0
    q = np.round(m / vmax * 65535).astype(np.uint16)
    sop_class = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word Secondary Capture
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.ConversionType = "MR", "WSD"
    ds.SeriesDescription = "deepprior reconstruction (magnitude)"
    ds.ContentDate = datetime.date.today().strftime("%Y%m%d")
    ds.PatientName, ds.PatientID = "Anonymous", "deepprior"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.NumberOfFrames, ds.Rows, ds.Columns = m.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", f"{vmax / 65535:.10g}", "US"
    if voxel_mm is not None:
        v = [float(a) for a in voxel_mm]
        ds.PixelSpacing = [f"{v[0]:.6g}", f"{v[1]:.6g}"]
        if len(v) > 2:
            ds.SliceThickness = f"{v[2]:.6g}"
    ds.PixelData = q.tobytes()
    ds.save_as(str(path), enforce_file_format=True)


def save_recon(path, x: torch.Tensor, overwrite: bool = False, voxel_mm=None) -> None:
    """Write a complex reconstruction ``(T, H, W)``: .h5 / .npy keep it complex; .nii/.nii.gz,
    .dcm (multi-frame DICOM), .png (frame montage) and .gif (cine) write the magnitude. ``voxel_mm``
    (H, W[, slice]) sets the NIfTI voxel size and the DICOM pixel spacing and slice thickness (from the raw
    header when it has one; else 1 mm). The orientation is not read: the affine's rotation is the identity."""
    from ..errors import OutputExistsError

    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output {path} exists; pass --overwrite to replace it")
    a = x.detach().cpu().numpy()
    name = path.name.lower()
    with atomic_output(path) as tmp:
        if name.endswith(".h5"):
            import h5py

            with h5py.File(tmp, "w") as f:
                f["recon"] = a
        elif name.endswith(".npy"):
            with open(tmp, "wb") as fh:
                np.save(fh, a)
        elif name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            affine = np.eye(4)
            if voxel_mm is not None:
                affine[:3, :3] = np.diag([*list(voxel_mm)[:3], *([1.0] * (3 - len(list(voxel_mm)[:3])))])
            nib.save(nib.Nifti1Image(np.abs(a).transpose(1, 2, 0).astype(np.float32), affine), tmp)
        elif name.endswith(".png"):
            save_montage(tmp, x)
        elif name.endswith(".gif"):
            save_gif(tmp, x)
        elif name.endswith(".dcm"):
            save_dicom(tmp, x, voxel_mm)
        else:
            raise InputError(f"{path}: unsupported output; use .h5, .npy, .nii(.gz), .dcm, .png or .gif")


def _to_uint8(x: torch.Tensor, vmax: float | None = None) -> np.ndarray:
    m = x.detach().abs().cpu().numpy()
    vmax = vmax or float(np.percentile(m, 99.5)) or 1.0
    return (np.clip(m / vmax, 0, 1) * 255).astype(np.uint8)


def save_montage(path, x: torch.Tensor, cols: int | None = None) -> None:
    """All frames of ``|x|`` tiled in one grayscale PNG."""
    import imageio.v3 as iio

    frames = _to_uint8(x if x.ndim == 3 else x[None])
    t, h, w = frames.shape
    cols = cols or int(np.ceil(np.sqrt(t)))
    rows = int(np.ceil(t / cols))
    grid = np.zeros((rows * h, cols * w), np.uint8)
    for i in range(t):
        r, c = divmod(i, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = frames[i]
    iio.imwrite(path, grid, extension=".png")


def save_gif(path, x: torch.Tensor, fps: float = 12.0) -> None:
    """Animated cine GIF of ``|x|`` (looping)."""
    import imageio.v3 as iio

    frames = _to_uint8(x if x.ndim == 3 else x[None])
    iio.imwrite(path, list(frames), extension=".gif", duration=int(1000 / fps), loop=0)
