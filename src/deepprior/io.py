"""Reading and writing images, masks and kernels with clear errors.

Images come back as float32 ``(H, W, C)`` arrays in [0, 1] with C = 1 (grayscale) or 3 (RGB);
an alpha channel is split off and handed back so it can be re-attached to the output. 8- and
16-bit PNG, JPEG and TIFF are read and written (16-bit colour PNG through pypng, since Pillow
truncates it to 8 bits).
"""

from __future__ import annotations

import os
import struct
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, OutputExistsError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclass
class LoadedImage:
    """``data``: float32 (H, W, C) in [0, 1]; ``alpha``: (H, W) in [0, 1] or None; ``bit_depth``: 8 or 16."""

    data: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8


def check_readable(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{what} {path} does not exist; check the path")
    if path.is_dir():
        raise InputError(f"{what} {path} is a directory; give a file")
    if path.stat().st_size == 0:
        raise InputError(f"{what} {path} is empty (0 bytes)")


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack("B", head[24:25])[0]


def _read_png16(path: Path) -> np.ndarray:
    import png

    w, h, rows, info = png.Reader(filename=str(path)).asDirect()
    a = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows])
    return a.reshape(h, w, info["planes"])


def _normalise(a: np.ndarray, path: Path) -> tuple[np.ndarray, int]:
    if a.dtype == np.bool_:
        return a.astype(np.float32), 8
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0, 8
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0, 16
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputError(f"{path} contains NaN or Inf pixel values")
        if a.min() < 0 or a.max() > 1:
            raise InputError(f"{path} holds floating-point pixels outside [0, 1] ({a.min():.3g}..{a.max():.3g}); rescale it")
        return a.astype(np.float32), 16
    raise InputError(f"{path} has unsupported pixel type {a.dtype}; use 8/16-bit integers or floats in [0, 1]")


def _bomb_error():
    from PIL import Image

    return Image.DecompressionBombError


def load_image(path: str | os.PathLike) -> LoadedImage:
    """Read an image file into a :class:`LoadedImage` (float in [0, 1], alpha split off).

    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> save_image(p, np.zeros((4, 5, 3)))
    >>> load_image(p).data.shape
    (4, 5, 3)
    """
    path = Path(path)
    check_readable(path, "image")
    if path.suffix.lower() == ".npy":
        a = load_npy(path, "image")
    else:
        try:
            # decoders warn about damage they read past (e.g. corrupt EXIF); the image or one error line says it
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                if path.suffix.lower() == ".png" and _png_bit_depth(path) == 16:
                    a = _read_png16(path)
                else:
                    import imageio.v3 as iio

                    a = iio.imread(path)
        except InputError:
            raise
        except _bomb_error() as e:
            raise InputError(f"image {path} is too large to load safely ({str(e).split('(')[1].split(')')[0]}); "
                             "crop or downscale it first") from None
        except Exception as e:  # decoders raise many types for corrupt files
            raise InputError(f"cannot read image {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'corrupt or unsupported file'}") from None
    a = np.asarray(a)
    if a.size == 0 and path.suffix.lower() != ".npy":
        raise InputError(f"cannot read image {path}: no pixel data (corrupt or empty file)")
    if a.ndim == 3 and a.shape[0] in (3, 4) and a.shape[-1] not in (1, 2, 3, 4):
        a = np.moveaxis(a, 0, -1)  # channel-first TIFF/npy
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 2, 3, 4):
        raise InputError(f"{path} has shape {a.shape}; expected a 2-D grayscale or RGB(A) image (multi-page files: extract one page)")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"{path} has zero size ({a.shape[0]}×{a.shape[1]})")
    data, depth = _normalise(a, path)
    alpha = None
    if data.shape[-1] in (2, 4):
        data, alpha = data[..., :-1], data[..., -1]
    return LoadedImage(np.ascontiguousarray(data), alpha, depth)


def load_npy(path: Path, what: str) -> np.ndarray:
    """``np.load`` without pickles (object arrays are refused: loading them could run code)."""
    try:
        a = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise InputError(f"{what} {path} holds Python objects (pickle); save a plain numeric array") from None
        raise InputError(f"cannot read {what} {path}: {e}") from None
    except Exception as e:
        raise InputError(f"cannot read {what} {path}: {type(e).__name__}: {e}") from None
    if isinstance(a, np.lib.npyio.NpzFile):
        raise InputError(f"{what} {path} is an .npz archive; save a single array with np.save")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise InputError(f"{what} {path} has non-numeric dtype {a.dtype}")
    return a


def load_mask(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """Read an inpainting mask (1/white = known pixel, 0/black = missing) as a bool ``(H, W)``.

    Image masks are thresholded at 0.5 (the reference DIP masks are anti-aliased PNGs);
    ``.npy`` masks must hold 0/1 or booleans.
    """
    path = Path(path)
    check_readable(path, "mask")
    if path.suffix.lower() == ".npy":
        m = load_npy(path, "mask").astype(np.float64)
        if m.ndim == 3 and m.shape[-1] == 1:
            m = m[..., 0]
        if not np.isfinite(m).all():
            raise InputError(f"mask {path} contains NaN or Inf")
        if ((m != 0) & (m != 1)).any():
            raise InputError(f"mask {path} holds values other than 0 and 1 (e.g. {m[(m != 0) & (m != 1)].flat[0]:.3g}); "
                             "threshold it first (1 = known, 0 = missing)")
    else:
        img = load_image(path)
        m = img.data.mean(-1)
    if m.ndim != 2:
        raise InputError(f"mask {path} has shape {m.shape}; expected a 2-D (H, W) array")
    if m.shape != tuple(shape):
        raise InputError(f"mask {path} is {m.shape[0]}×{m.shape[1]} but the image is {shape[0]}×{shape[1]}; they must match")
    mask = m > 0.5
    if not mask.any():
        raise InputError(f"mask {path} marks no pixel as known (all 0); 1/white = known, 0/black = missing")
    return mask


def load_kernel(path: str | os.PathLike) -> np.ndarray:
    """Read a blur kernel (PSF) from ``.npy`` or a grayscale image; normalised to sum 1."""
    path = Path(path)
    check_readable(path, "kernel")
    k = load_npy(path, "kernel").astype(np.float64) if path.suffix.lower() == ".npy" else load_image(path).data.mean(-1).astype(np.float64)
    if k.ndim != 2:
        raise InputError(f"kernel {path} has shape {k.shape}; expected a 2-D array")
    if not np.isfinite(k).all() or (k < 0).any() or k.sum() <= 0:
        raise InputError(f"kernel {path} must be finite and non-negative with a positive sum")
    return k / k.sum()


def check_output(path: str | os.PathLike, overwrite: bool = False, exts=IMAGE_EXTS) -> Path:
    """Validate an output path before any work is done: known extension, writable folder,
    and no existing file unless ``overwrite``."""
    path = Path(path)
    if exts and path.suffix.lower() not in exts:
        raise InputError(f"output {path} has an unsupported extension; use one of {', '.join(exts)}")
    if path.is_dir():
        raise InputError(f"output {path} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output folder {parent} does not exist; create it first")
    try:  # probe for real: permissions, read-only mounts and pseudo file systems all show up here
        fd, probe = tempfile.mkstemp(prefix=".deepprior-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError:
        raise InputError(f"output folder {parent} is not writable") from None
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output {path} exists; pass --overwrite to replace it")
    return path


@contextmanager
def atomic_output(path: str | os.PathLike):
    """Yield a temporary path beside ``path`` (same suffixes) to write to; on success it replaces ``path`` in one
    rename, on failure it is removed — a reader never sees half a file, an old file is never half overwritten.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_output(p) as tmp:
    ...     _ = tmp.write_text("done")
    >>> p.read_text()
    'done'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{''.join(path.suffixes)}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_image(path: str | os.PathLike, data: np.ndarray, alpha: np.ndarray | None = None, bit_depth: int = 8) -> None:
    """Write float ``(H, W[, C])`` data in [0, 1] as an 8- or 16-bit image (atomically: temp + rename)."""
    path = Path(path)
    a = np.clip(np.asarray(data, dtype=np.float64), 0, 1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if alpha is not None:
        a = np.concatenate([a if a.ndim == 3 else a[..., None], np.clip(alpha, 0, 1)[..., None]], axis=-1)
    ext = path.suffix.lower()
    if ext in (".jpg", ".jpeg", ".bmp"):
        bit_depth = 8
        if a.ndim == 3 and a.shape[-1] in (2, 4):
            a = a[..., :-1] if a.shape[-1] == 4 else a[..., 0]  # these formats have no alpha
    dtype, scale = (np.uint16, 65535) if bit_depth == 16 else (np.uint8, 255)
    q = np.round(a * scale).astype(dtype)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{ext}")
    try:
        if ext == ".png" and bit_depth == 16:
            import png

            planes = 1 if q.ndim == 2 else q.shape[-1]
            mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[planes] + ";16"
            png.from_array(q.reshape(q.shape[0], -1), mode).save(str(tmp))
        elif ext in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, q, photometric="minisblack" if q.ndim == 2 else "rgb")
        else:
            import imageio.v3 as iio

            kw = {"quality": 95} if ext in (".jpg", ".jpeg") else {}
            iio.imwrite(tmp, q, extension=ext, **kw)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
