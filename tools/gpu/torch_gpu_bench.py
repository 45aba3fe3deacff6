#!/usr/bin/env python3
"""PyTorch on the GPU, for tools/gpu/run_on_device.sh: the reference DeiT (tools/peers/model.py) on the configs
VitSparse's bench writes (dense and SNP widths), in eager mode (with cuBLAS fp32 SGEMM on DeiT's fc1/fc2 shapes) or,
with --compile, under torch.compile. Weights are the seeded synthetic ones for every name, so shapes and work equal
VitSparse's exactly; the SNP models' values differ from bench's (which slices a pruned seeded model), which does not
change timing. Times with CUDA events after warm-up; rewrites OUT.json after every row, so a run cut short by its
time budget keeps what it measured.
Usage: torch_gpu_bench.py OUT.json CONFIG.json [CONFIG.json ...] [--batches 1,8,64] [--iters 30] [--compile] [--device cuda]"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "peers"))
import model  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("configs", nargs="+")
p.add_argument("--batches", default="1,8,64")
p.add_argument("--iters", type=int, default=30)
p.add_argument("--compile", action="store_true", help="torch.compile instead of eager (and no SGEMM rows)")
p.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke test of this script")
a = p.parse_args()
torch.set_grad_enabled(False)
# fp32 means fp32: no TF32 tensor cores (VitSparse's ILGPU kernels are plain fp32 FMA).
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device(a.device)
cuda = dev.type == "cuda"


def timed(fn, iters):
    """Median milliseconds of one call, after warm-up (CUDA events on a GPU, perf_counter on the CPU)."""
    for _ in range(5):
        fn()
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        if cuda:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            torch.cuda.synchronize()
            times.append(s.elapsed_time(e))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


results = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__,
           "mode": "compile" if a.compile else "eager", "models": [], "sgemm": []}


def save():
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)


batches = [int(v) for v in a.batches.split(",")]
for cfg_path in a.configs:
    cfg, net, x = model.load(cfg_path)
    net = net.to(dev)
    run = torch.compile(net) if a.compile else net
    for b in batches:
        xb = x.repeat(b, 1, 1, 1).to(dev)
        t0 = time.perf_counter()
        run(xb)
        if cuda:
            torch.cuda.synchronize()
        first_s = time.perf_counter() - t0
        ms = timed(lambda: run(xb), a.iters)
        row = {"model": cfg["name"], "batch": b, "mode": results["mode"], "ms": ms, "images_per_s": b * 1e3 / ms,
               "first_call_seconds": first_s}
        results["models"].append(row)
        save()
        print(f"{cfg['name']} batch {b} {results['mode']}: {ms:.3f} ms, {b * 1e3 / ms:.1f} images/s "
              f"(first call {first_s:.1f} s)", flush=True)
    if a.compile or cfg["name"].endswith("snp"):  # SGEMM rows on the dense shapes only
        continue
    e, h = cfg["embed_dim"], int(cfg["embed_dim"] * 4)
    for b in batches:
        m = b * ((cfg["image_size"] // cfg["patch_size"]) ** 2 + 1)
        for name, n, k in (("fc1", h, e), ("fc2", e, h)):
            xm = torch.randn(m, k, device=dev)
            w = torch.randn(n, k, device=dev)
            bias = torch.randn(n, device=dev)
            ms = timed(lambda: torch.nn.functional.linear(xm, w, bias), a.iters)
            results["sgemm"].append({"model": cfg["name"], "layer": name, "m": m, "n": n, "k": k, "cublas_ms": ms,
                                     "cublas_tflops": 2 * m * n * k / ms / 1e9})
            save()
            print(f"cuBLAS {cfg['name']} {name} M={m} N={n} K={k}: {ms:.4f} ms, {2 * m * n * k / ms / 1e9:.2f} TFLOP/s",
                  flush=True)
save()
