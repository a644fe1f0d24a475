"""Cartesian ISMRMRD (MRD) raw data: the file is parsed once (:func:`read_ismrmrd`), then each slice is
assembled from the acquisitions in memory (:meth:`MRDFile.load`), so that ``mri recon`` reads a multi-slice
file once for all its slices."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .calib import compress_coils, whiten, whitening_matrix
from .coils import estimate_maps
from .data import MRIData
from .fft import fft2c, ifft2c

COUNTERS = ("average", "contrast", "repetition", "set", "partition")


@dataclass
class MRDFile:
    """The imaging acquisitions of an ISMRMRD file: ``(phase, line, counters, data (coils, samples))`` each,
    noise scans, and the encoded (``nx``, ``ny``) and reconstructed (``rx``) readout sizes."""

    path: Path
    acqs: list
    noise: list = field(default_factory=list)
    nx: int = 0
    ny: int = 0
    rx: int = 0

    @property
    def slice_ids(self) -> list[int]:
        return sorted({c["slice"] for _, _, c, _ in self.acqs})

    @property
    def slices(self) -> int:
        return len(self.slice_ids)

    def load(self, slice_index: int | None = None, *, calib: int = 24, compress: int | None = None) -> MRIData:
        """Slice ``slice_index`` (required when the file has several) as :class:`MRIData`: noise-whitened when
        the file has noise scans, readout oversampling removed, optionally SVD-compressed to ``compress``
        virtual coils, coil maps from the fully sampled centre, scaled to max |k| = 1."""
        path, ids = self.path, self.slice_ids
        if len(ids) > 1 and slice_index is None:
            raise InputError(f"{path} holds {len(ids)} slices; choose one with --slice N (0..{len(ids) - 1})")
        acqs = self.acqs
        if slice_index is not None:
            if not 0 <= slice_index < len(ids):
                raise InputError(f"{path}: slice {slice_index} out of range 0..{len(ids) - 1}")
            acqs = [a for a in acqs if a[2]["slice"] == ids[slice_index]]
        for name in COUNTERS:
            values = {c[name] for _, _, c, _ in acqs}
            if len(values) > 1:
                raise InputError(f"{path}: {len(values)} different {name} counters; only one {name} per file is "
                                 "supported (nothing is merged or overwritten)")
        nx, ny, rx = self.nx, self.ny, self.rx
        frames = max(p for p, _, _, _ in acqs) + 1
        coils, samples = acqs[0][3].shape
        if samples != nx or any(d.shape != (coils, samples) for _, _, _, d in acqs):
            raise InputError(f"{path}: acquisitions must all have {coils} coils × {nx} samples")
        k = np.zeros((frames, coils, nx, ny), np.complex64)
        mask = np.zeros((frames, nx, ny), np.float32)
        for ph, ky, _, d in acqs:
            if not 0 <= ky < ny:
                raise InputError(f"{path}: phase-encode index {ky} outside the matrix 0..{ny - 1}")
            if mask[ph, 0, ky]:
                raise InputError(f"{path}: line {ky} of phase {ph} is acquired twice (averages without an average "
                                 "counter?); nothing is overwritten")
            k[ph, :, :, ky] = d
            mask[ph, :, ky] = 1
        kt = torch.from_numpy(k)
        meta: dict = {"source": "ISMRMRD", "slice": slice_index or 0, "slices": len(ids)}
        if self.noise and all(n.shape[0] == coils for n in self.noise):
            w = whitening_matrix(torch.from_numpy(np.concatenate(self.noise, axis=1).astype(np.complex64)))
            kt = whiten(kt, w, coil_dim=1)
            meta["whitened"] = True
        if rx < nx:  # remove readout oversampling: crop the FOV along the readout in image space
            c0 = (nx - rx) // 2
            kt = fft2c(ifft2c(kt)[..., c0:c0 + rx, :]) * torch.from_numpy(mask[:, None, c0:c0 + rx, :] > 0)
            mask = mask[:, c0:c0 + rx, :]
        kt, done = compress_coils(kt, compress, coil_dim=1)
        meta.update(done)
        if not torch.isfinite(torch.view_as_real(kt)).all():
            raise InputError(f"{path}: k-space contains NaN or Inf")
        scale = float(kt.abs().max()) or 1.0
        kt = kt / scale
        maps = estimate_maps(kt, center=calib) if kt.shape[1] > 1 else None
        return MRIData(kt, torch.from_numpy(mask), maps, None, {**meta, "scale": scale})


def read_ismrmrd(path) -> MRDFile:
    """Parse a Cartesian ISMRMRD file: frames from ``idx.phase`` (cardiac phases), lines from
    ``idx.kspace_encode_step_1`` placed relative to the header's encoding centre, noise scans kept for
    pre-whitening, slice/average/contrast/repetition/set/partition counters kept with every line (a slice is
    chosen at :meth:`MRDFile.load`; the others are refused there when they take more than one value)."""
    import ismrmrd
    import ismrmrd.xsd

    path = Path(path)
    try:
        dset = ismrmrd.Dataset(str(path), "dataset", create_if_needed=False)
        header = ismrmrd.xsd.CreateFromDocument(dset.read_xml_header())
    except Exception as e:
        raise InputError(f"cannot read ISMRMRD file {path}: {e}") from None
    out = MRDFile(path, [])
    try:
        enc = header.encoding[0]
        if str(enc.trajectory).split(".")[-1].lower() != "cartesian":
            raise InputError(f"{path}: only Cartesian ISMRMRD data are supported (trajectory {enc.trajectory})")
        out.nx, out.ny = enc.encodedSpace.matrixSize.x, enc.encodedSpace.matrixSize.y
        out.rx = enc.reconSpace.matrixSize.x
        limits = getattr(enc, "encodingLimits", None)
        step1 = getattr(limits, "kspace_encoding_step_1", None) if limits is not None else None
        centre = getattr(step1, "center", None)
        shift = out.ny // 2 - int(centre) if centre is not None else 0
        for i in range(dset.number_of_acquisitions()):
            a = dset.read_acquisition(i)
            if a.isFlagSet(ismrmrd.ACQ_IS_NOISE_MEASUREMENT):
                out.noise.append(np.asarray(a.data))
                continue
            idx = a.idx
            counters = {"slice": idx.slice, "average": idx.average, "contrast": idx.contrast,
                        "repetition": idx.repetition, "set": idx.set, "partition": idx.kspace_encode_step_2}
            out.acqs.append((idx.phase, idx.kspace_encode_step_1 + shift, counters, np.asarray(a.data)))
    finally:
        dset.close()
    if not out.acqs:
        raise InputError(f"{path}: no imaging acquisitions")
    return out
