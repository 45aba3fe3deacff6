#!/usr/bin/python3
"""PyTorch peer for `bench`: builds the reference DeiT with bench's weights, then answers commands on
stdin so bench can alternate its runs with VitSparse's and ONNX Runtime's:
  "run N"     -> one line: N latencies in ms, space-separated
  "logits"    -> one line: the logits of the seeded input, space-separated
  "quit"
Start it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (they force slow kernels) and
OPENBLAS_NUM_THREADS set to the thread count; torch's own intra-op threads stay at 1 so the two
thread pools do not oversubscribe the cores.
Usage: torch_peer.py CONFIG.json [--weights W.safetensors] [--batch B]"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
import model  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("config")
p.add_argument("--weights")
p.add_argument("--batch", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(1)
torch.set_grad_enabled(False)
cfg, net, x = model.load(a.config, a.weights)
x = x.repeat(a.batch, 1, 1, 1)
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd or cmd[0] == "quit":
        break
    if cmd[0] == "run":
        times = []
        for _ in range(int(cmd[1])):
            t0 = time.perf_counter()
            net(x)
            times.append((time.perf_counter() - t0) * 1000)
        print(" ".join(f"{t:.4f}" for t in times), flush=True)
    elif cmd[0] == "logits":
        print(" ".join(f"{v:.7g}" for v in net(x)[0].tolist()), flush=True)
