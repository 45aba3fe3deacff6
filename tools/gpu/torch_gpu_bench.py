#!/usr/bin/env python3
"""PyTorch on the GPU, for tools/gpu/run_on_device.sh: the reference DeiT (tools/peers/model.py, the seeded
weights VitSparse's bench uses) in eager mode and under torch.compile, and cuBLAS fp32 SGEMM on DeiT's fc1/fc2
shapes. Times with CUDA events after warm-up; writes one JSON file.
Usage: torch_gpu_bench.py OUT.json CONFIG.json [CONFIG.json ...] [--batches 1,8,64] [--iters 50]"""
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
p.add_argument("--iters", type=int, default=50)
a = p.parse_args()
torch.set_grad_enabled(False)
# fp32 means fp32: no TF32 tensor cores (VitSparse's ILGPU kernels are plain fp32 FMA).
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device("cuda")


def timed(fn, iters):
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


results = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "models": [], "sgemm": []}
for cfg_path in a.configs:
    cfg, net, x = model.load(cfg_path)
    net = net.to(dev)
    compiled = torch.compile(net)
    for b in [int(v) for v in a.batches.split(",")]:
        xb = x.repeat(b, 1, 1, 1).to(dev)
        t0 = time.perf_counter()
        compiled(xb)
        torch.cuda.synchronize()
        compile_s = time.perf_counter() - t0
        row = {"model": cfg["name"], "batch": b,
               "eager_ms": timed(lambda: net(xb), a.iters),
               "compile_ms": timed(lambda: compiled(xb), a.iters),
               "compile_seconds": compile_s,
               "logits0": net(xb)[0].float().cpu().tolist()}
        results["models"].append(row)
        print(f"{cfg['name']} batch {b}: eager {row['eager_ms']:.3f} ms, compile {row['compile_ms']:.3f} ms", flush=True)
    e, h = cfg["embed_dim"], int(cfg["embed_dim"] * 4)
    for b in [int(v) for v in a.batches.split(",")]:
        m = b * ((cfg["image_size"] // cfg["patch_size"]) ** 2 + 1)
        for name, n, k in (("fc1", h, e), ("fc2", e, h)):
            xm = torch.randn(m, k, device=dev)
            w = torch.randn(n, k, device=dev)
            ms = timed(lambda: torch.nn.functional.linear(xm, w), a.iters)
            results["sgemm"].append({"model": cfg["name"], "layer": name, "m": m, "n": n, "k": k, "cublas_ms": ms,
                                     "cublas_tflops": 2 * m * n * k / ms / 1e9})
with open(a.out, "w") as f:
    json.dump(results, f, indent=1)
