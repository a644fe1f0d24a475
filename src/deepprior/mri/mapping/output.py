"""Writing parameter maps: NIfTI (one 4-D volume, a map per volume along the 4th axis, names in the header's
description), ``.npz``/``.h5`` (named arrays, M0 complex), and the colour figure (maps with colour bars and
units; the error against the truth when there is one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...errors import InputError, OutputExistsError
from ...io import atomic_output
from .models import SignalModel

MAP_EXTS = (".nii", ".gz", ".npz", ".h5")


def map_order(model: SignalModel) -> list[tuple[str, str]]:
    """(name, unit) of every map written, in file order: |M0| first."""
    return [("M0", "a.u."), *[(p.name, p.unit) for p in model.params]]


def save_maps(path, maps: dict, model: SignalModel, overwrite: bool = False) -> None:
    """Write ``maps`` (``M0`` complex and the model's parameters) atomically.

    >>> import tempfile, pathlib
    >>> from deepprior.mri.mapping.models import T2Decay
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.npz"
    >>> save_maps(p, {"M0": torch.ones(4, 4, dtype=torch.complex64), "T2": torch.full((4, 4), 50.0)}, T2Decay([10, 20]))
    >>> sorted(np.load(p).files)
    ['M0', 'T2', 'model']
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output {path} exists; pass --overwrite to replace it")
    name = path.name.lower()
    order = map_order(model)
    arrays = {k: maps[k].detach().cpu().numpy() for k, _ in order}
    with atomic_output(path) as tmp:
        if name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            vol = np.stack([np.abs(arrays[k]) for k, _ in order], -1)[:, :, None].transpose(1, 0, 2, 3)
            img = nib.Nifti1Image(vol.astype(np.float32), np.eye(4))
            img.header["descrip"] = ("maps: " + " ".join(f"{k}[{u}]" for k, u in order)).encode()[:79]
            nib.save(img, tmp)
        elif name.endswith(".npz"):
            with open(tmp, "wb") as fh:
                np.savez(fh, model=np.array(model.name), **arrays)
        elif name.endswith(".h5"):
            import h5py

            with h5py.File(tmp, "w") as f:
                for k, u in order:
                    f[k] = arrays[k]
                    f[k].attrs["unit"] = u
                f.attrs["model"] = model.name
        else:
            raise InputError(f"{path}: maps are written as .nii/.nii.gz, .npz or .h5")


def save_map_figure(path, maps: dict, model: SignalModel, *, truth=None, m0_true=None, where=None,
                    title: str = "") -> None:
    """Colour maps (|M0|, each relaxation map in its unit, on a fixed clinical range) with colour bars; with a
    truth, a second row: the truth and the relative error inside the measurable tissue."""
    from ...plotting import save_figure, pyplot

    plt = pyplot()
    order = map_order(model)
    rows = 2 if truth is not None else 1
    fig, axes = plt.subplots(rows, len(order) + (1 if truth is not None else 0), figsize=(3.4 * (len(order) + 1), 3.1 * rows),
                             squeeze=False)
    ranges = {"T2": (0, 150), "T1": (0, 2500), "eff": (0.5, 1.1)}
    shown = where if where is not None else (maps["M0"].abs() > 0)
    for i, (k, unit) in enumerate(order):
        v = maps[k].abs() if k == "M0" else maps[k]
        v = (v * shown).cpu().numpy()
        lo, hi = ranges.get(k, (0, float(np.percentile(v, 99.5)) or 1.0))
        im = axes[0, i].imshow(v, cmap="gray" if k == "M0" else "magma", vmin=lo, vmax=hi)
        axes[0, i].set_title(f"{k} ({unit})" if unit else k)
        fig.colorbar(im, ax=axes[0, i], fraction=0.046)
    if truth is not None:
        key = model.params[0].name
        ref = truth.t2 if key == "T2" else truth.t1
        mask = truth.measurable()
        err = torch.where(mask, (maps[key].cpu() - ref) / ref, torch.zeros_like(ref)).numpy()
        im = axes[0, len(order)].imshow(err * 100, cmap="coolwarm", vmin=-30, vmax=30)
        axes[0, len(order)].set_title(f"{key} error (%) in tissue")
        fig.colorbar(im, ax=axes[0, len(order)], fraction=0.046)
        lo, hi = ranges[key]
        im = axes[1, 1].imshow((ref * (truth.pd > 0.05)).numpy(), cmap="magma", vmin=lo, vmax=hi)
        axes[1, 1].set_title(f"true {key} (ms)")
        fig.colorbar(im, ax=axes[1, 1], fraction=0.046)
        if m0_true is not None:
            im = axes[1, 0].imshow(m0_true.abs().numpy(), cmap="gray")
            axes[1, 0].set_title("true |M0|")
            fig.colorbar(im, ax=axes[1, 0], fraction=0.046)
        im = axes[1, 2].imshow(mask.numpy(), cmap="gray")
        axes[1, 2].set_title(f"scored tissue ({key} < 200 ms)")
        for a in axes[1, 3:]:
            a.set_visible(False)
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, Path(path))
