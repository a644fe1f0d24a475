"""The batch layer on a local Ray instance (2 CPUs, shared by the module): same outputs as single-item runs, nothing
done twice, failures recorded, a killed worker retried from its checkpoint, and a second Ray head at --ray-address."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from conftest import smooth_image

from deepprior.cli import main
from deepprior.io import save_image

ray = pytest.importorskip("ray")

TASK = ["--preset", "fast", "--stop", "none", "--add-noise", "25"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def images(tmp_path):
    for i in range(3):
        save_image(tmp_path / f"im{i}.png", smooth_image(24, 24, 1, seed=i))
    return tmp_path


def _single(tmp_path, name, seed, *extra):
    """The single-item command with the seed the manifest recorded, at the worker's thread count."""
    out = tmp_path / f"single_{name}.png"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["denoise", str(tmp_path / f"{name}.png"), "-o", str(out), "--seed", str(seed), "-q",
                     "--device", "cpu", *TASK, *extra]) == 0
    finally:
        torch.set_num_threads(threads)
    return out.read_bytes()


def _rows(outdir):
    return [json.loads(line) for line in (outdir / "manifest.jsonl").read_text().splitlines()]


def test_batch_equals_single_runs_reruns_nothing_and_redoes_a_deleted_output(local_ray, images, capsys):
    out = images / "out"
    argv = ["batch", "denoise", str(images / "im*.png"), "-o", str(out), "-q", *TASK, "--iters", "15"]
    assert main(argv) == 0
    rows = _rows(out)
    assert sorted(r["name"] for r in rows) == ["im0", "im1", "im2"] and {r["status"] for r in rows} == {"ok"}
    assert len({r["seed"] for r in rows}) == 3
    for r in rows:  # the recorded seed reproduces each output byte for byte
        assert (out / f"{r['name']}.png").read_bytes() == _single(images, r["name"], r["seed"], "--iters", "15")
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    capsys.readouterr()
    assert main(argv) == 0  # a rerun does nothing
    assert "nothing to do" in capsys.readouterr().out and len(_rows(out)) == 3
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == mtimes
    (out / "im1.png").unlink()
    assert main(argv) == 0
    new = _rows(out)[3:]
    assert [r["name"] for r in new] == ["im1"] and (out / "im1.png").exists()
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png") if p.name != "im1.png"} == \
        {k: v for k, v in mtimes.items() if k != "im1.png"}


def test_a_corrupt_input_fails_alone_and_the_exit_code_says_so(local_ray, images, capsys):
    (images / "broken.png").write_bytes(b"not an image")
    out = images / "out"
    assert main(["batch", "denoise", str(images / "im0.png"), str(images / "broken.png"), "-o", str(out), "-q",
                 *TASK, "--iters", "3"]) == 1
    rows = {r["name"]: r for r in _rows(out)}
    assert rows["im0"]["status"] == "ok" and (out / "im0.png").exists()
    assert rows["broken"]["status"] == "failed" and "broken.png" in rows["broken"]["error"]
    assert "\n" not in rows["broken"]["error"] and not (out / "broken.png").exists()
    assert "broken" in capsys.readouterr().out  # the summary table names it


def test_bad_batch_options_are_one_line_errors(images, capsys):
    for argv, msg in ((["--overwrite"], "--force"), (["--nonsense"], "no such option"), (["--iters", "0"], "--iters"),
                      (["--per-slice"], "mri-recon")):
        assert main(["batch", "denoise", str(images / "im0.png"), "-o", str(images / "o"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err
    assert main(["batch", "denoise", str(images / "nothing*.png"), "-o", str(images / "o")]) == 2
    assert "matches no file" in capsys.readouterr().err


def test_a_killed_worker_is_retried_and_resumes_to_the_same_output(local_ray, images):
    save_image(images / "big.png", smooth_image(48, 48, 1, seed=7))
    out = images / "kill"
    partial = out / ".partial"
    killed = {}

    def killer():  # kill the worker the moment its first checkpoint lands (not after a sleep)
        t0 = time.time()
        while time.time() - t0 < 120 and not killed:
            if (partial / "big.png.ckpt").exists() and (partial / "big.running").exists():
                pid = json.loads((partial / "big.running").read_text())["pid"]
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
            time.sleep(0.002)

    th = threading.Thread(target=killer)
    th.start()
    rc = main(["batch", "denoise", str(images / "big.png"), "-o", str(out), "-q", *TASK, "--iters", "120",
               "--checkpoint-every", "10"])
    th.join()
    assert killed and rc == 0
    (row,) = _rows(out)
    assert row["status"] == "ok" and row["attempt"] == 2 and row["resumed"] is True
    assert (out / "big.png").read_bytes() == _single(images, "big", row["seed"], "--iters", "120")
    assert not list(partial.glob("big*"))  # checkpoint and marker cleaned up


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_address_runs_like_the_embedded_instance(local_ray, images):
    """A second Ray head on a loopback port, a driver in another process pointed at it: the same outputs."""
    from pathlib import Path

    embedded, remote = images / "emb", images / "rem"
    args = ["denoise", str(images / "im*.png"), "-q", *TASK, "--iters", "5"]
    assert main(["batch", *args, "-o", str(embedded)]) == 0
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # a throwaway loopback head: no token to share
    ray_bin = str(Path(sys.executable).with_name("ray"))
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=1",
                             "--include-dashboard=false", "--disable-usage-stats"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):  # the head is up when its port answers
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        p = subprocess.run([sys.executable, "-m", "deepprior", "batch", *args, "-o", str(remote),
                            "--ray-address", f"127.0.0.1:{port}"], env=env, capture_output=True, text=True, timeout=180)
        assert p.returncode == 0, p.stderr[-2000:]
    finally:
        head.send_signal(signal.SIGTERM)
        head.wait(60)
    for i in range(3):
        assert (remote / f"im{i}.png").read_bytes() == (embedded / f"im{i}.png").read_bytes()
    assert np.array_equal([r["seed"] for r in sorted(_rows(remote), key=lambda r: r["name"])],
                          [r["seed"] for r in sorted(_rows(embedded), key=lambda r: r["name"])])


def test_per_slice_items_stack_into_the_whole_file_result(local_ray, shared_data, tmp_path):
    k = np.load(shared_data / "mri" / "raw" / "brain_8coil_poisson8x_ksp.npy")
    np.save(tmp_path / "two.npy", np.stack([k, 0.5 * k[::-1]]))  # two slices at different intensity scales
    assert main(["mri", "recon", str(tmp_path / "two.npy"), "--method", "zerofill", "-o", str(tmp_path / "whole.npy"),
                 "-q"]) == 0
    out = tmp_path / "out"
    assert main(["batch", "mri-recon", str(tmp_path / "two.npy"), "-o", str(out), "--per-slice", "--ext", ".npy",
                 "--method", "zerofill", "-q"]) == 0
    rows = {r["name"]: r for r in _rows(out)}
    assert set(rows) == {"two_slice0", "two_slice1", "two"} and rows["two"]["kind"] == "volume"
    assert np.array_equal(np.load(out / "two.npy"), np.load(tmp_path / "whole.npy"))
    assert np.load(out / "two_slice1.npy").shape == (1, 230, 180)
