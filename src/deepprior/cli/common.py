"""What every command shares: one-line messages, output checks (never overwrite without --overwrite),
checkpoint paths and the device option."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError

DEVICES = ("auto", "cpu", "cuda")


def device_option(f):
    return click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                        help="auto = a CUDA GPU when there is one, else the CPU.")(f)


def echo(msg: str, err: bool = False) -> None:
    click.echo(msg, err=err)


def ckpt_path(o: dict) -> Path:
    out = Path(o["output"])
    return out.with_name(out.name + ".ckpt")


def check_outputs(o: dict, iters_hint: int | None = None) -> None:
    from ..io import check_output

    # --resume continues the run whose checkpoint sits next to the output: the partial image an
    # interrupted run wrote there is that run's own and is replaced.
    ck = ckpt_path(o)
    check_output(o["output"], o["overwrite"] or (o.get("resume") and ck.is_file()))
    if o.get("resume") and not ck.is_file():
        raise InputError(f"--resume: no checkpoint {ck} (a run writes one with --checkpoint-every N or on Ctrl-C)")
    if not o.get("resume") and ck.exists() and not o["overwrite"] and o.get("checkpoint_every"):
        raise InputError(f"{ck} holds an earlier run: pass --resume to continue it or --overwrite to start over")
    for k in ("plot", "figure"):
        if o.get(k):
            check_output(o[k], o["overwrite"], exts=(".png", ".pdf", ".svg", ".jpg"))
    if len({str(Path(p).resolve()) for p in (o["output"], o.get("plot"), o.get("figure")) if p}) < \
            len([p for p in (o["output"], o.get("plot"), o.get("figure")) if p]):
        raise InputError("--output, --plot and --figure must be different files")
