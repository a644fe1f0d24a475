"""Is bfloat16 faster than float32 on this CPU? Times one optimizer step (forward, backward, Adam) of the two
networks that ``amp: "auto"`` puts in bf16 — TDDIP's ``tddip-cpu`` decoder (one 128² frame, channels-last) and the
``fast`` denoising skip net (256² RGB) — in both precisions, alternating rounds in one process, and prints the CPU's
bf16 features and what ``amp: "auto"`` chooses here.

    python bench/amp_speed.py [--rounds 3] [--steps 15]
"""

from __future__ import annotations

import argparse
import time

import torch

from deepprior.fit import native_bf16
from deepprior.mri.tddip import build_tddip
from deepprior.nets import build_net, make_code
from deepprior.presets import get_preset


def cpu_features() -> str:
    probes = {"avx512_bf16": "_is_avx512_bf16_supported", "amx_tile": "_is_amx_tile_supported"}
    return ", ".join(f"{k} {bool(getattr(torch.cpu, v, lambda: None)())}" for k, v in probes.items())


def step_timer(net: torch.nn.Module, forward, steps: int):
    """Median seconds of one Adam step in either precision (the loss in float32, as the fit loop has it)."""
    opt = torch.optim.Adam(net.parameters(), 1e-3, fused=True)

    def timed(bf16: bool) -> float:
        ts = []
        for _ in range(steps + 2):
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = forward()
            loss = out.float().square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            ts.append(time.perf_counter() - t)
        return sorted(ts[2:])[steps // 2]  # the first two pay for kernel selection

    return timed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=15)
    a = ap.parse_args()
    torch.set_num_threads(2)
    print(f"CPU: {cpu_features()}; amp 'auto' takes "
          f"{'bf16' if native_bf16('cpu') else 'float32'} here")
    tddip = build_tddip(26, (128, 128), preset="tddip-cpu", seed=0).to(memory_format=torch.channels_last)
    frame = iter(range(10**9))
    fast = get_preset("fast")
    spec = dict(fast["net"])
    net = build_net(spec.pop("name"), 32, 3, **spec)
    z = make_code("noise", 32, (256, 256), scale=0.1, generator=torch.Generator().manual_seed(0))
    nets = {"tddip-cpu, 128² frame": step_timer(tddip, lambda: tddip(index=torch.tensor([next(frame) % 26])), a.steps),
            "fast, 256² RGB": step_timer(net, lambda: net(z), a.steps)}
    print("| network | round | float32 [ms/step] | bf16 [ms/step] | bf16 / float32 |\n|---|---|---|---|---|")
    for name, timed in nets.items():
        for r in range(a.rounds):
            f32, b16 = timed(False), timed(True)
            print(f"| {name} | {r} | {1e3 * f32:.1f} | {1e3 * b16:.1f} | {b16 / f32:.2f} |", flush=True)


if __name__ == "__main__":
    main()
