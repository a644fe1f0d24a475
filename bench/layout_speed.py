"""Channels-last (NHWC) or contiguous (NCHW) layout for the generators on this CPU? Times one optimizer step
(forward, backward, Adam) of each preset's network in both layouts, alternating rounds in one process, in the
precision ``amp`` gives the preset here. ``FitConfig.channels_last = None`` (the default) takes channels-last on a
CPU; this is the measurement behind it (docs/benchmarks.md, "Memory layout on a CPU").

    python bench/layout_speed.py [--rounds 2] [--steps 9]
"""

from __future__ import annotations

import argparse
import time

import torch

from deepprior.fit import FitConfig
from deepprior.mri.dip import build_static_dip
from deepprior.nets import build_net, make_code
from deepprior.presets import get_preset


def image_net(name: str, size: int = 256):
    p = get_preset(name)
    spec = dict(p["net"])
    ch = p["code"].get("channels", 32)
    net = build_net(spec.pop("name"), ch, 3, **spec)
    z = make_code(p["code"]["kind"], ch, (size, size), scale=p["code"].get("scale", 0.1),
                  generator=torch.Generator().manual_seed(0))
    return net, z, p["fit"]


def mri_net(name: str, group: str):
    p = get_preset(name, group)
    dip = build_static_dip(p, (128, 128), 0)
    return dip.net, dip.code, p["fit"]


def step_ms(net: torch.nn.Module, z: torch.Tensor, bf16: bool, nhwc: bool, steps: int) -> float:
    """Median milliseconds of one Adam step."""
    net = net.to(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
    z = z.contiguous(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    ts = []
    for _ in range(steps + 2):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(z)
        loss = out.float().square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ts.append(time.perf_counter() - t)
    return 1e3 * sorted(ts[2:])[steps // 2]  # the first two pay for kernel selection


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=9)
    a = ap.parse_args()
    torch.set_num_threads(2)
    nets = {f"{n} (256² RGB)": (lambda n=n: image_net(n)) for n in ("fast", "denoise", "inpaint", "jpeg")}
    nets["convdecoder (static MRI, 128²)"] = lambda: mri_net("convdecoder", "mri-dip")
    nets["map-skip (mapping, 128²)"] = lambda: mri_net("map-skip", "mapping")
    print("| network | precision | round | contiguous [ms/step] | channels-last [ms/step] | contiguous / channels-last |\n"
          "|---|---|---|---|---|---|")
    for label, make in nets.items():
        torch.manual_seed(0)
        net, z, fit = make()
        bf16 = FitConfig(amp=fit.get("amp")).bf16_on("cpu")
        for r in range(a.rounds):
            nchw = step_ms(net, z, bf16, False, a.steps)
            nhwc = step_ms(net, z, bf16, True, a.steps)
            print(f"| {label} | {'bf16' if bf16 else 'float32'} | {r} | {nchw:.1f} | {nhwc:.1f} | {nchw / nhwc:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
