"""Everything a fit carries from one iteration to the next, as one object with one
``state_dict()``/``load_state_dict()`` pair: what a checkpoint writes is exactly what a resume reads, so a
resumed run continues bit-identically (on CPU) to an uninterrupted one. Files are written atomically.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import fields
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import ConfigError, InputError
from .config import FitConfig, FitState

FORMAT = "deepprior-fit-1"


def snapshot(param: nn.Module, opt, sched, ema):
    """A deep copy of what divergence backtracking restores: parameters, optimizer, scheduler, EMA."""
    return (copy.deepcopy(param.state_dict()), copy.deepcopy(opt.state_dict()),
            None if sched is None else copy.deepcopy(sched.state_dict()), None if ema is None else ema.clone())


def fingerprint(cfg: FitConfig, param: nn.Module) -> dict:
    """What identifies a run: its settings and the shapes of its state (a resume must match both)."""
    # The wall-clock budget is not: TDDIP's is what its whole-call budget leaves after the set-up, timed anew on resume.
    conf = {f.name: (list(v) if isinstance(v, tuple) else v) for f in fields(cfg) for v in [getattr(cfg, f.name)]
            if f.name != "time_budget"}
    return {"config": conf, "shapes": [list(t.shape) for t in param.state_dict().values()]}


def atomic_save(obj, path) -> None:
    """``torch.save`` to a temporary file, then rename: a kill at any moment leaves the old or the new file,
    never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path, fmt: str = FORMAT) -> dict:
    """Read a checkpoint written by :func:`~deepprior.fit.fit` (or, with ``fmt``, by a multi-phase method such as
    GIP) — tensors and plain containers only (``torch.load(weights_only=True)``: nothing in the file is executed)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no checkpoint to resume from (write one with --checkpoint-every N)")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
        raise InputError(f"{p}: not a readable deepprior checkpoint ({type(e).__name__})") from None
    if not isinstance(ck, dict) or ck.get("format") != fmt:
        raise InputError(f"{p}: not a deepprior checkpoint")
    return ck


class RunState:
    """The mutable state of one fit: iteration, EMA, oracle best, backtracking snapshot, history, the last
    output, and — by reference — the parameterization, optimizer, scheduler, RNGs and callbacks."""

    def __init__(self, param: nn.Module, opt, sched, state: FitState, order_gen: torch.Generator, callbacks,
                 fp: dict, hist: dict, backtrack: bool):
        self.param, self.opt, self.sched, self.state = param, opt, sched, state
        self.order_gen, self.callbacks, self.fingerprint, self.hist = order_gen, list(callbacks), fp, hist
        self.it = 0
        self.ema: Tensor | None = None
        self.best, self.best_iter, self.best_psnr = None, None, -math.inf
        self.good = snapshot(param, opt, sched, None) if backtrack else None
        self.last_check_loss = math.inf
        self.restores_since_good = 0
        self.out: dict[str, Tensor] = {}

    def _rng(self) -> dict:
        gen = getattr(self.param, "generator", None)
        gens = getattr(self.param, "generators", None)  # BatchedDIP: one noise generator per image
        state = gen.get_state() if isinstance(gen, torch.Generator) else None
        if gens is not None:
            state = [g.get_state() for g in gens]
        return {"torch": torch.get_rng_state(), "order": self.order_gen.get_state(), "param": state}

    def state_dict(self) -> dict:
        s = self.state
        return {"format": FORMAT, "fingerprint": self.fingerprint, "it": self.it,
                "param": self.param.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": None if self.sched is None else self.sched.state_dict(), "ema": self.ema,
                "hist": self.hist, "best": self.best, "best_iter": self.best_iter, "best_psnr": self.best_psnr,
                "good": self.good, "last_check_loss": self.last_check_loss,
                "restores_since_good": self.restores_since_good, "backtracks": s.backtracks, "selected": s.selected,
                "selected_iter": s.selected_iter, "rng": self._rng(), "last_x": self.out.get("x"),
                "callbacks": [cb.state_dict() for cb in self.callbacks]}

    def load_state_dict(self, ck: dict, device) -> None:
        """Continue the run ``ck`` describes (the inverse of :meth:`state_dict`); tensors go to ``device``."""
        if ck["fingerprint"] != self.fingerprint:
            raise ConfigError("the checkpoint belongs to a different run (other settings or network); "
                              "resume with the same command and options")
        mv = lambda v: v.to(device) if torch.is_tensor(v) else v  # noqa: E731
        self.param.load_state_dict(ck["param"])
        self.opt.load_state_dict(ck["optimizer"])
        if self.sched is not None:
            self.sched.load_state_dict(ck["scheduler"])
        self.ema, self.best, self.best_iter, self.best_psnr = mv(ck["ema"]), mv(ck["best"]), ck["best_iter"], ck["best_psnr"]
        self.good, self.last_check_loss = ck["good"], ck["last_check_loss"]
        self.restores_since_good = ck["restores_since_good"]
        if self.good is not None:
            self.good = (*self.good[:3], mv(self.good[3]))
        self.hist.clear()
        self.hist.update(ck["hist"])
        s = self.state
        s.backtracks, s.selected, s.selected_iter = ck["backtracks"], mv(ck["selected"]), ck["selected_iter"]
        torch.set_rng_state(ck["rng"]["torch"])
        self.order_gen.set_state(ck["rng"]["order"])
        if isinstance(ck["rng"]["param"], list):
            for g, st in zip(self.param.generators, ck["rng"]["param"], strict=True):
                g.set_state(st)
        elif ck["rng"]["param"] is not None:
            self.param.generator.set_state(ck["rng"]["param"])
        for cb, cs in zip(self.callbacks, ck["callbacks"], strict=False):
            if cs is not None:
                cb.load_state_dict({k: mv(v) for k, v in cs.items()} if isinstance(cs, dict) else cs)
        if ck["last_x"] is not None:
            self.out["x"] = mv(ck["last_x"])
        self.it = ck["it"]
