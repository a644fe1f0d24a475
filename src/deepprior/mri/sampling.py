"""Sampling patterns. Cartesian masks are ``(T, H, W)`` with readout along H (fully sampled) and
phase encoding along W; every generator takes a ``seed`` and is reproducible.

>>> m = cartesian_mask(8, 64, 64, accel=8, center=6, pattern="kt-random", seed=0)
>>> tuple(m.shape), int(m[0, 0].sum())
((8, 64, 64), 8)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, InputError

PATTERNS = ("random", "equispaced", "vd", "kt-random", "kt-shifted", "vista", "poisson", "poisson2d", "radial-cartesian")


def _check(frames, h, w, accel, center):
    if frames < 1 or h < 2 or w < 2:
        raise InputError(f"mask size must be at least 1×2×2, got {frames}×{h}×{w}")
    if not accel >= 1:
        raise InputError(f"acceleration must be ≥ 1, got {accel}")
    if center < 0 or center > w:
        raise InputError(f"centre size must be in 0..{w}, got {center}")


def _lines(w: int, accel: float, center: int, rng: np.random.Generator, density: str) -> np.ndarray:
    """One set of phase-encode lines: the centre plus random lines drawn by ``density``."""
    n_total = max(int(round(w / accel)), center, 1)
    sel = np.zeros(w, bool)
    c0 = (w - center) // 2
    sel[c0:c0 + center] = True
    remaining = n_total - sel.sum()
    if remaining > 0:
        ky = np.arange(w) - w // 2
        if density == "vd":  # polynomial variable density, denser near the centre
            p = (1 - np.abs(ky) / (w / 2 + 1)) ** 4 + 0.05
        else:
            p = np.ones(w)
        p[sel] = 0
        idx = rng.choice(w, size=int(remaining), replace=False, p=p / p.sum())
        sel[idx] = True
    return sel


def cartesian_mask(frames: int, h: int, w: int, *, accel: float = 4, center: int = 8, pattern: str = "random",
                   seed: int = 0) -> Tensor:
    """A Cartesian k-t sampling mask ``(T, H, W)`` of 0/1 floats.

    ``random`` / ``vd`` / ``equispaced``: the same lines in every frame (uniform random,
    variable-density random, regular with the centre added); ``kt-random``: new random lines per
    frame; ``kt-shifted``: regular lines shifted by one per frame (a k-t lattice); ``vista``:
    golden-ratio offsets per frame, a VISTA-like spread of the ky–t plane; ``poisson``:
    variable-density Poisson-disc in the ky–t plane; ``radial-cartesian``: golden-angle spokes
    rasterised on the grid (``accel`` sets the spoke count). The fully sampled centre has
    ``center`` lines (``center×center`` points for the 2-D patterns).
    """
    _check(frames, h, w, accel, center)
    if pattern not in PATTERNS:
        raise ConfigError(f"unknown sampling pattern {pattern!r}; choose one of {', '.join(PATTERNS)}")
    rng = np.random.default_rng(seed)
    m = np.zeros((frames, h, w), np.float32)
    c0 = (w - center) // 2
    if pattern in ("random", "vd"):
        sel = _lines(w, accel, center, rng, pattern)
        m[:, :, sel] = 1
    elif pattern == "kt-random":
        for t in range(frames):
            m[t, :, _lines(w, accel, center, rng, "vd")] = 1
    elif pattern in ("equispaced", "kt-shifted"):
        r = max(int(round(accel)), 1)
        for t in range(frames):
            shift = (t % r) if pattern == "kt-shifted" else 0
            m[t, :, shift::r] = 1
            m[t, :, c0:c0 + center] = 1
    elif pattern == "vista":
        n = max(int(round(w / accel)), 1)
        phi = (math.sqrt(5) - 1) / 2
        ky = np.arange(w) - w / 2
        for t in range(frames):
            # Golden-ratio offsets give a different, evenly spread line set per frame; the
            # arcsine warp concentrates lines at low frequencies as VISTA's densities do.
            u = (np.arange(n) / n + t * phi) % 1.0
            pos = np.sin((u - 0.5) * math.pi) * (w / 2)
            idx = np.clip(np.searchsorted(ky, pos), 0, w - 1)
            m[t, :, idx] = 1
            m[t, :, c0:c0 + center] = 1
    elif pattern == "poisson":
        m[:] = _poisson_kyt(frames, w, accel, center, rng)[:, None, :]
    elif pattern == "poisson2d":
        m[:] = _poisson_2d(frames, h, w, accel, center, rng)
    elif pattern == "radial-cartesian":
        spokes = max(int(round(max(h, w) / accel)), 1)
        for t in range(frames):
            ang = (np.arange(spokes) + t * spokes) * np.deg2rad(111.246)
            r = np.linspace(-max(h, w) / 2, max(h, w) / 2, 2 * max(h, w))
            ys = np.clip(np.round(h / 2 + np.outer(np.sin(ang), r)).astype(int), 0, h - 1)
            xs = np.clip(np.round(w / 2 + np.outer(np.cos(ang), r)).astype(int), 0, w - 1)
            m[t, ys, xs] = 1
            hc = (h - center) // 2
            m[t, hc:hc + center, c0:c0 + center] = 1
    return torch.from_numpy(m)


def _poisson_kyt(frames: int, w: int, accel: float, center: int, rng: np.random.Generator) -> np.ndarray:
    """Variable-density Poisson-disc sampling of the ky–t plane (dart throwing, seeded).

    The minimum distance grows with |ky| and is bisected until the mean acceleration is met.
    """
    target = frames * max(int(round(w / accel)), center)
    ky = np.arange(w) - w / 2
    lo, hi = 0.2, 20.0
    best = None
    for _ in range(25):
        r0 = (lo + hi) / 2
        radius = r0 * (0.5 + 1.5 * np.abs(ky) / (w / 2))
        pts = np.zeros((frames, w), bool)
        cand = [(t, k) for t in range(frames) for k in range(w)]
        order = rng.permutation(len(cand))
        taken: list[tuple[int, int]] = []
        for i in order:
            t, k = cand[i]
            rr = radius[k]
            ok = True
            for (t2, k2) in taken[-400:]:
                dt = min(abs(t - t2), frames - abs(t - t2))  # periodic in time (cardiac cycle)
                if dt * dt + (k - k2) ** 2 < rr * rr:
                    ok = False
                    break
            if ok:
                taken.append((t, k))
                pts[t, k] = True
        c0 = (w - center) // 2
        pts[:, c0:c0 + center] = True
        n = pts.sum()
        best = pts
        if abs(n - target) <= 0.03 * target:
            break
        if n > target:
            lo = r0
        else:
            hi = r0
    return best.astype(np.float32)


def _dart_throw(h: int, w: int, radius: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One Poisson-disc draw: visit the grid in random order, keep a point when no kept point lies
    within its (position-dependent) radius."""
    occ = np.zeros((h, w), bool)
    for i in rng.permutation(h * w):
        y, x = divmod(int(i), w)
        r = radius[y, x]
        ri = int(r)
        y0, y1, x0, x1 = max(0, y - ri), min(h, y + ri + 1), max(0, x - ri), min(w, x + ri + 1)
        win = occ[y0:y1, x0:x1]
        if ri == 0 or not win.any():
            occ[y, x] = True
            continue
        yy, xx = np.nonzero(win)
        if ((yy + y0 - y) ** 2 + (xx + x0 - x) ** 2 >= r * r).all():
            occ[y, x] = True
    return occ


def _poisson_2d(frames: int, h: int, w: int, accel: float, center: int, rng: np.random.Generator) -> np.ndarray:
    """Variable-density 2-D Poisson-disc masks over (ky, kx), a new draw per frame, with a
    ``center × center`` fully sampled block (the GIP reference's R = 8 / 10×10, R = 16 / 6×6 masks).

    The disc radius grows linearly with the distance from the k-space centre (denser centre); its
    scale is bisected on the first frame to meet the acceleration and reused for the others.
    """
    target = h * w / accel
    yy, xx = np.meshgrid(np.arange(h) - h / 2, np.arange(w) - w / 2, indexing="ij")
    dist = np.sqrt((yy / (h / 2)) ** 2 + (xx / (w / 2)) ** 2) / math.sqrt(2)
    shape = 0.3 + 2.0 * dist  # relative radius: 0.3 at the centre → 2.3 in the corners
    cy, cx = (h - center) // 2, (w - center) // 2

    def draw(r0: float, g: np.random.Generator) -> np.ndarray:
        m = _dart_throw(h, w, r0 * shape, g)
        m[cy:cy + center, cx:cx + center] = True
        return m

    # A Poisson-disc pattern's point count scales like 1/r²: a few multiplicative corrections reach
    # the target (on a copy of the generator, so the frames' draws stay seeded).
    state = rng.bit_generator.state
    r0 = math.sqrt(accel / 2.5)
    for _ in range(8):
        g = np.random.default_rng()
        g.bit_generator.state = state
        n = draw(r0, g).sum()
        if abs(n - target) <= 0.03 * target:
            break
        r0 *= math.sqrt(n / target) ** 0.9
    return np.stack([draw(r0, rng) for _ in range(frames)]).astype(np.float32)


def golden_angle_radial(frames: int, spokes: int, readout: int, *, oversampling: int = 2, offset: int = 0) -> Tensor:
    """Golden-angle (111.246°) radial trajectory in radians/sample, ``(T, spokes·N, 2)`` (ky, kx).

    Each spoke has ``N = oversampling·readout`` samples on [-π, π); spoke ``j`` of frame ``t`` has
    angle ``(t·spokes + j + offset)·111.246°`` so consecutive frames continue the sequence.

    >>> golden_angle_radial(2, 3, 16).shape
    torch.Size([2, 96, 2])
    """
    if frames < 1 or spokes < 1 or readout < 2:
        raise InputError("radial sampling needs ≥ 1 frame, ≥ 1 spoke and ≥ 2 readout points")
    n = oversampling * readout
    r = (torch.arange(n, dtype=torch.float64) - n / 2) * (2 * math.pi / n)
    j = torch.arange(frames * spokes, dtype=torch.float64) + offset
    ang = (j * math.radians(111.246)).reshape(frames, spokes, 1)
    ky, kx = torch.sin(ang) * r, torch.cos(ang) * r
    return torch.stack([ky, kx], dim=-1).reshape(frames, spokes * n, 2).float()
