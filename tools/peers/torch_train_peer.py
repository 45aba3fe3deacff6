#!/usr/bin/python3
"""PyTorch training peer for `bench train`: one training step (forward, cross-entropy with label smoothing
0.1, backward, global-norm clipping to 1.0, AdamW with DeiT's groups: weight decay 0.05 on linear and
patch-embedding weights only) on a fixed seeded batch, timed per step. It answers commands on stdin so
bench can alternate its steps with VitSparse's:
  "run N"  -> two lines: N step wall times in ms, then N step process CPU times in ms (all threads)
  "loss"   -> one line: the loss of the current weights on the batch
  "quit"
The model is PyTorch at its fastest for the shape: when every block has equal heads it is timm's layout
(one fused qkv linear, [B, heads, N, d] batched matmuls, F.gelu, F.layer_norm); ragged models use the
reference per-head loop. Start it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset and
OPENBLAS_NUM_THREADS set to the thread count; torch's own intra-op threads stay at 1 (two pools on the
same cores oversubscribe them: docs/environment.md).
Usage: torch_train_peer.py WEIGHTS.safetensors --batch B [--seed S]"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
import deit  # noqa: E402
import st_io  # noqa: E402


def uniform_heads(cfg):
    return all(len(set(b["qk"])) == 1 and b["qk"] == b["v"] for b in cfg["blocks"])


def fused_forward(cfg, w, x):
    """timm's DeiT forward for equal heads (the layout PyTorch users train)."""
    eps = cfg.get("ln_eps", 1e-6)
    e = cfg["embed_dim"]
    x = F.conv2d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=cfg["patch_size"]).flatten(2).transpose(1, 2)
    b = x.shape[0]
    prefix = [w["cls_token"].expand(b, -1, -1)]
    if cfg["distilled"]:
        prefix.append(w["dist_token"].expand(b, -1, -1))
    x = torch.cat(prefix + [x], dim=1) + w["pos_embed"]
    n = x.shape[1]
    for i, blk in enumerate(cfg["blocks"]):
        p = f"blocks.{i}."
        h, d = len(blk["qk"]), blk["qk"][0]
        y = F.layer_norm(x, (e,), w[p + "norm1.weight"], w[p + "norm1.bias"], eps)
        qkv = F.linear(y, w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"]).reshape(b, n, 3, h, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = ((q @ k.transpose(-2, -1)) * blk["scale"]).softmax(dim=-1)
        y = (a @ v).transpose(1, 2).reshape(b, n, h * d)
        x = x + F.linear(y, w[p + "attn.proj.weight"], w[p + "attn.proj.bias"])
        y = F.layer_norm(x, (e,), w[p + "norm2.weight"], w[p + "norm2.bias"], eps)
        y = F.linear(F.gelu(F.linear(y, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])), w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
        x = x + y
    x = F.layer_norm(x, (e,), w["norm.weight"], w["norm.bias"], eps)
    logits = F.linear(x[:, 0], w["head.weight"], w["head.bias"])
    if cfg["distilled"]:
        logits = (logits + F.linear(x[:, 1], w["head_dist.weight"], w["head_dist.bias"])) / 2
    return logits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    tensors, meta = st_io.load(a.weights, strict=False)
    cfg = json.loads(meta["vitsparse.config"])
    shapes = deit.expected_shapes(cfg)
    w = {k: torch.tensor(np.asarray(tensors[k], dtype=np.float32).reshape(shapes[k]), requires_grad=True) for k in shapes}
    names = list(shapes)
    decay = [w[n] for n in names if n.endswith(".weight") and "norm" not in n]
    rest = [w[n] for n in names if not (n.endswith(".weight") and "norm" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}], lr=1e-4)
    g = torch.Generator().manual_seed(a.seed)
    x = torch.randn(a.batch, cfg["in_chans"], cfg["image_size"], cfg["image_size"], generator=g)
    y = torch.randint(0, cfg["num_classes"], (a.batch,), generator=g)
    forward = fused_forward if uniform_heads(cfg) else deit.forward
    params = list(w.values())

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(cfg, w, x), y, label_smoothing=0.1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] == "run":
            times, cpu = [], []
            for _ in range(int(cmd[1])):
                t0, c0 = time.perf_counter(), time.process_time()
                step()
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
            print(" ".join(f"{t:.4f}" for t in times), flush=True)
            print(" ".join(f"{t:.4f}" for t in cpu), flush=True)
        elif cmd[0] == "loss":
            with torch.no_grad():
                print(f"{F.cross_entropy(forward(cfg, w, x), y, label_smoothing=0.1).item():.7g}", flush=True)


if __name__ == "__main__":
    main()
