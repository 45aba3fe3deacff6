#!/usr/bin/python3
"""Writes the small models, inputs and PyTorch goldens that VitSparse's parity tests use.

Run from the repository root:  /usr/bin/python3 tools/reference/make_fixtures.py
Needs Debian's python3-torch and python3-numpy. Deterministic: rerunning gives the same files.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import deit  # noqa: E402
import seeded  # noqa: E402
import st_io  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")


def random_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    w = {}
    for name, shape in deit.expected_shapes(cfg).items():
        if "norm" in name and name.endswith(".weight"):
            t = 1 + 0.1 * torch.randn(shape, generator=g)
        elif name.endswith(".weight") and len(shape) >= 2:
            t = torch.randn(shape, generator=g) / np.sqrt(np.prod(shape[1:]))
        else:
            t = 0.05 * torch.randn(shape, generator=g)
        w[name] = t.float()
    return w


def ragged_block(qk, v, mlp, scale):
    return {"qk": qk, "v": v, "mlp": mlp, "scale": scale}


def write_case(name, cfg, weights, batch, seed, dtype="F32", with_metadata=True):
    if dtype == "F16":
        stored = {k: t.numpy().astype(np.float16) for k, t in weights.items()}
        ref = {k: torch.from_numpy(a.astype(np.float64)) for k, a in stored.items()}
    else:
        stored = {k: t.numpy() for k, t in weights.items()}
        if dtype == "BF16":  # what the file will hold after round-to-nearest-even
            ref = {k: torch.from_numpy(a).to(torch.bfloat16).double() for k, a in stored.items()}
        else:
            ref = {k: torch.from_numpy(a).double() for k, a in stored.items()}
    meta = {"vitsparse.config": json.dumps(cfg), "format": "pt"} if with_metadata else {"format": "pt"}
    st_io.save(os.path.join(OUT, f"{name}.safetensors"), stored, meta, bf16=(dtype == "BF16"))
    g = torch.Generator().manual_seed(seed + 1000)
    c, s = cfg["in_chans"], cfg["image_size"]
    x = torch.randn([batch, c, s, s], generator=g).float()
    with torch.no_grad():
        logits = deit.forward(cfg, ref, x.double())
    np.save(os.path.join(OUT, f"{name}.input.npy"), x.numpy())
    np.save(os.path.join(OUT, f"{name}.logits.npy"), logits.float().numpy())
    print(f"{name}: {len(stored)} tensors, max|logit| {logits.abs().max().item():.3f}")


def small_cfg(name, embed, image, patch, classes, blocks, distilled=False):
    return {"name": name, "image_size": image, "patch_size": patch, "in_chans": 3, "embed_dim": embed,
            "num_classes": classes, "distilled": distilled, "ln_eps": 1e-6,
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "crop_pct": 0.875, "blocks": blocks}


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_grad_enabled(False)

    ragged = small_cfg("ragged_tiny", 48, 32, 8, 10, [
        ragged_block([5, 9, 13], [7, 4, 11], 100, 0.125),
        ragged_block([8, 3], [2, 17], 37, 0.2),
        ragged_block([1, 16, 6, 7], [9, 9, 1, 20], 150, 0.125),
    ])
    write_case("ragged_tiny", ragged, random_weights(ragged, 1), batch=3, seed=1)

    # Residual-channel removal changes LayerNorm statistics, so it is checked against this reference:
    # the same channels deleted from every tensor that touches the residual stream (methods.md §1.1).
    drop = [3, 10, 17, 40, 41]
    keep = [c for c in range(ragged["embed_dim"]) if c not in drop]
    w = random_weights(ragged, 1)
    cut = {}
    for name, t in w.items():
        if name in ("cls_token", "pos_embed") or name.startswith("norm") or ".norm" in name \
                or name in ("patch_embed.proj.weight", "patch_embed.proj.bias") \
                or name.endswith("attn.proj.bias") or name.endswith("mlp.fc2.bias"):
            t = t[..., keep] if t.dim() == 3 or name.endswith("bias") or "norm" in name else t
            if name.startswith("patch_embed"):
                t = w[name][keep]
        if name.endswith("attn.qkv.weight") or name.endswith("mlp.fc1.weight") or name == "head.weight":
            t = t[:, keep]
        if name.endswith("attn.proj.weight") or name.endswith("mlp.fc2.weight"):
            t = t[keep, :]
        cut[name] = t
    cut_cfg = dict(ragged, embed_dim=len(keep))
    x = torch.from_numpy(np.load(os.path.join(OUT, "ragged_tiny.input.npy")))
    logits = deit.forward(cut_cfg, {k: v.double() for k, v in cut.items()}, x.double())
    np.save(os.path.join(OUT, "ragged_tiny.residual_pruned.logits.npy"), logits.float().numpy())
    print(f"ragged_tiny residual-pruned (dropped {drop}): max|logit| {logits.abs().max().item():.3f}")

    dist = small_cfg("ragged_distilled", 45, 48, 16, 7, [
        ragged_block([7, 3, 11], [5, 13, 2], 91, 0.125),
        ragged_block([19], [33], 45, 0.125),
    ], distilled=True)
    write_case("ragged_distilled_bf16", dist, random_weights(dist, 2), batch=2, seed=2, dtype="BF16")

    uniform = deit.uniform_config("timm_uniform", 128, 2, 2, classes=5, image=32, patch=8)
    write_case("timm_uniform_f16", uniform, random_weights(uniform, 3), batch=2, seed=3, dtype="F16", with_metadata=False)

    # Full-size DeiT-S with seeded weights: C# regenerates the same weights from the same generator.
    small = deit.uniform_config("deit_small_patch16_224", 384, 12, 6)
    w = {k: torch.from_numpy(seeded.tensor(k, v)).double() for k, v in deit.expected_shapes(small).items()}
    x = torch.from_numpy(seeded.image_batch([1, 3, 224, 224])).double()
    logits = deit.forward(small, w, x)
    np.save(os.path.join(OUT, "deit_small_seeded.logits.npy"), logits.float().numpy())
    print(f"deit_small_seeded: max|logit| {logits.abs().max().item():.3f}, "
          f"first {logits[0, :3].tolist()}")


if __name__ == "__main__":
    main()
