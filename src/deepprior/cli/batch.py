"""``deepprior batch TASK INPUTS… -o OUTDIR [task options]``: many items, one command (see docs/batch.md)."""

from __future__ import annotations

import click

from .common import echo

BATCH_TASKS = ("denoise", "inpaint", "superres", "deblur", "jpeg", "mri-recon")


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True})
@click.argument("task", type=click.Choice(BATCH_TASKS))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False),
              help="Folder for the results (OUTDIR/<input stem>.<ext>) and manifest.jsonl.")
@click.option("--ext", default=None, help="Output format: .png (default) / .tif / .jpg; mri-recon: .h5 (default), "
                                          ".npy, .nii.gz, .dcm.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Items at a time on this machine (default: CPU cores / --cpus-per-task). Ignored on a cluster.")
@click.option("--cpus-per-task", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="CPUs (and torch threads) per item.")
@click.option("--gpus-per-task", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="GPUs per item; fractions share a GPU between small fits (0.25 = four at a time).")
@click.option("--ray-address", default=None, envvar="RAY_ADDRESS",
              help="Run on an existing Ray cluster (host:port, or 'auto'); default: a local instance for this command.")
@click.option("--group", is_flag=True,
              help="Fit same-size images together in one batched fit (GPU throughput; no per-item stopping).")
@click.option("--group-size", type=click.IntRange(min=2), default=8, show_default=True, help="Images per batched fit.")
@click.option("--per-slice", is_flag=True, help="mri-recon: one item per slice; slices are stacked into the file's output.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=100, show_default=True,
              help="Checkpoint each fit every N steps: a retried (killed) item resumes from it.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Base seed: each item's seed is a hash of it and the item's name (recorded in the manifest).")
@click.option("--force", is_flag=True, help="Redo items that are already done.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def batch(task, args, outdir, ext, workers, cpus_per_task, gpus_per_task, ray_address, group, group_size, per_slice,
          checkpoint_every, seed, force, quiet):
    """Run TASK on many INPUTS (files, globs, or a .csv/.jsonl manifest with an `input` column and per-item options
    such as mask, gt or sigma); task options follow as for the single command. Exit code 0 when every item
    succeeded, 1 when some failed (each failure is one line in OUTDIR/manifest.jsonl), 2 on bad options.

    Example: deepprior batch denoise 'photos/*.png' -o restored --preset fast --sigma 25
    """
    from ..batch.runner import run, split_args

    inputs, task_argv = split_args(task, list(args))
    if not inputs:
        raise click.UsageError("no inputs: give files, globs or a .csv/.jsonl manifest after TASK")
    rows = run(inputs, task=task, outdir=outdir, seed=seed, workers=workers, ray_address=ray_address,
               gpus_per_task=gpus_per_task, cpus_per_task=cpus_per_task, group=group, group_size=group_size,
               force=force, per_slice=per_slice, ext=ext, checkpoint_every=checkpoint_every, progress=not quiet,
               task_argv=task_argv)
    _summary(rows, outdir)
    return 1 if any(r["status"] != "ok" for r in rows) else 0


def _summary(rows: list[dict], outdir) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..batch.manifest import read_manifest

    every = read_manifest(outdir)
    if not rows:
        echo(f"{outdir}: nothing to do: every item is done already ({len(every)} in manifest.jsonl; --force redoes them)")
        return
    t = Table(title=f"{outdir}: {sum(r['status'] == 'ok' for r in rows)} ok, "
                    f"{sum(r['status'] != 'ok' for r in rows)} failed this run; manifest.jsonl holds {len(every)}")
    for c in ("item", "status", "iterations", "seconds", "PSNR", "SSIM", "note"):
        t.add_column(c)
    for r in rows:
        note = r.get("error", "")
        if r.get("attempt", 1) > 1:
            note = f"attempt {r['attempt']}" + (", resumed" if r.get("resumed") else "") + (f"; {note}" if note else "")
        t.add_row(r["name"], r["status"], str(r.get("iterations") or ""), f"{r.get('seconds', '')}",
                  f"{r['psnr']:.2f}" if "psnr" in r else "", f"{r['ssim']:.4f}" if "ssim" in r else "", note)
    Console(width=160).print(t)
