"""Command-line interface: ``deepprior denoise|inpaint|superres|deblur|jpeg|flash|demo|presets``,
``deepprior mri simulate|recon`` and ``deepprior batch``.

Bad input gives one ``error:`` line and exit code 2; existing outputs are never replaced without
``--overwrite``. The commands live by family: :mod:`.images` (natural images), :mod:`.mri`; :mod:`.common`
holds what they share.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import DeeppriorError
from . import images
from .batch import batch
from .common import device_option, echo
from .mapping import map_cmd, simulate_map_cmd
from .mri import mri


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deepprior")
def cli():
    """Image reconstruction with untrained networks (Deep Image Prior)."""


mri.add_command(simulate_map_cmd)
mri.add_command(map_cmd)
for _cmd in (images.denoise, images.inpaint, images.superres, images.deblur, images.jpeg, images.flash, mri, batch):
    cli.add_command(_cmd)


@click.command()
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), default="deepprior-demo", show_default=True,
              help="Folder for restored.png, noisy.png, comparison.png and psnr.png.")
@click.option("--iters", type=click.IntRange(min=1), default=None, help="Iterations (default: the demo preset's).")
@click.option("--seed", type=int, default=0, show_default=True)
@device_option
@click.option("--overwrite", is_flag=True, help="Replace files in an existing demo folder.")
@click.option("-q", "--quiet", is_flag=True)
def demo(outdir, iters, seed, device, overwrite, quiet):
    """Denoise a built-in photo (scikit-image's astronaut, σ = 25) and write the figures."""
    from ..demo import run_demo

    run_demo(Path(outdir), iters=iters, seed=seed, device=device, overwrite=overwrite, quiet=quiet)


cli.add_command(demo)


@cli.command("presets")
def presets_cmd():
    """List every preset, grouped: natural images, static MRI, TDDIP, GIP (stop rule, iterations)."""
    from ..presets import GROUPS, iterations

    titles = {"image": "natural images (deepprior denoise|inpaint|superres|deblur|jpeg|flash --preset NAME)",
              "mri-dip": "static MRI (deepprior mri recon --method dip --preset NAME)",
              "tddip": "dynamic MRI, TDDIP (deepprior mri recon --method tddip --preset NAME)",
              "gip": "dynamic MRI, GIP (deepprior mri recon --method gip --preset NAME)",
              "mapping": "parameter maps (deepprior mri map --method dip --preset NAME)"}
    for group, table in GROUPS.items():
        echo(f"{titles[group]}:")
        for name, p in table.items():
            echo(f"  {name:14s} {_describe(group, p)}; iters {iterations(group, p)}; stop {_stop_str(group, p)}")


def _describe(group: str, p: dict) -> str:
    if group == "gip":
        return f"GIP ch={p['ch']} K={p['k']}; stages {', '.join(s[0] for s in p['stages'])} + ADMM {p['admm']['outer']} outer"
    net = p["net"]
    desc = f"{net['name']}"
    if "channels_down" in net:
        desc += f" down={net.get('channels_down')} skip={net.get('channels_skip')}"
    elif "channels" in net:
        desc += f" channels={net['channels']}"
    if group == "tddip":
        return f"{desc}; manifold {p['manifold']}; lr {p['fit']['lr']}"
    return f"{desc}; code {p['code']['kind']}; reg_noise {p.get('reg_noise_std', 0):.4g}; lr {p['fit']['lr']}; " \
           f"ema {p['fit'].get('ema')}"


def _stop_str(group: str, p: dict) -> str:
    if group in ("tddip", "gip"):
        return "holdout (5 % of the k-space samples)"
    st = p.get("stop") or {}
    return f"{st['rule']} (patience {st['patience']})" if st.get("rule", "none") != "none" else "none"


def main(argv: list[str] | None = None) -> int:
    """Entry point: click in non-standalone mode so every error is one line and exit code 2."""
    try:
        rv = cli.main(args=argv, prog_name="deepprior", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Abort:
        echo("interrupted", err=True)
        return 130
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        echo(f"error: {e.format_message()}" + (f" (see 'deepprior {e.ctx.info_name} --help')" if getattr(e, 'ctx', None) and e.ctx.info_name != 'deepprior' else ""), err=True)
        return 2
    except DeeppriorError as e:
        echo(f"error: {e}", err=True)
        return 2
    except KeyboardInterrupt:
        echo("interrupted", err=True)
        return 130


def entry() -> None:
    sys.exit(main())


