"""Figures: side-by-side comparison and the PSNR / loss curves of a fit (matplotlib, Agg)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _atomic_save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_comparison(path, panels: list[tuple[str, np.ndarray]]) -> None:
    """One row of images (H, W, C) in [0, 1] with titles, e.g. degraded | restored | reference."""
    plt = _plt()
    n = len(panels)
    h, w = panels[0][1].shape[:2]
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n * max(w / h, 0.5), 3.6), squeeze=False)
    for ax, (title, img) in zip(axes[0], panels):
        img = np.clip(img, 0, 1)
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                  vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    _atomic_save(fig, Path(path))
    plt.close(fig)


def save_curves(path, history: dict, title: str = "", marks: dict[str, int] | None = None) -> None:
    """PSNR (raw and EMA, when a ground truth was given) and the loss against the iteration.

    ``marks`` draws vertical lines, e.g. ``{"oracle peak": 812, "stopped": 1030}``.
    """
    plt = _plt()
    have_psnr = bool(history.get("psnr"))
    fig, axes = plt.subplots(1, 2 if have_psnr else 1, figsize=(10 if have_psnr else 5, 3.6), squeeze=False)
    its = np.arange(1, len(history["loss"]) + 1)
    ax = axes[0][0]
    ax.semilogy(its, history["loss"], lw=0.8, label="loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if have_psnr:
        ax = axes[0][1]
        ax.plot(its, history["psnr"], lw=0.8, label="PSNR (last iterate)")
        if history.get("psnr_ema") and history["psnr_ema"] != history["psnr"]:
            ax.plot(its, history["psnr_ema"], lw=1.2, label="PSNR (EMA)")
        ax.set_xlabel("iteration")
        ax.set_ylabel("PSNR [dB]")
        ax.grid(alpha=0.3)
        lo = np.nanpercentile(history["psnr"], 5)
        ax.set_ylim(bottom=lo - 1)
    for a in axes[0]:
        for i, (label, it) in enumerate((marks or {}).items()):
            a.axvline(it + 1, color=f"C{i + 2}", ls="--", lw=1, label=label)
        a.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    _atomic_save(fig, Path(path))
    plt.close(fig)
