#!/usr/bin/python3
"""Float64 PyTorch autograd reference for the Swin backward pass (SwinBackprop, issue 12 item 4).

For three small random Swins writes one safetensors file each under tests/fixtures/swin_grad/: the float32
weights (timm >= 0.9 names, config in `vitsparse.config` metadata), an input batch, labels, the float64
forward's logits, and for the losses ce (cross-entropy with label smoothing) and sq (mean of logits²) the
loss value and dL/dθ per parameter under `grad.<loss>.<timm name>`. The forward is tools/swin/swin.py.

  shift   maps 16 and 8 with window 4: both stages have a shifted block (the -100 mask matters)
  pad     maps 10 and 5 with window 4: both pad to whole windows (12 and 8) and shift by 2
  masked  shift with pruned linears stored sparse (BSR blocks or CSR entries, `vitsparse.sparse` metadata);
          the reference multiplies each by its kept-pattern mask, so dL/dW is zero on every pruned weight

Weights are "sharp" (qkv ~ randn/sqrt(C), bias tables ~ randn; see swin.sharp_weights): with 0.02-scale
weights attention is near uniform and a wrong bias index or mask would hardly move a gradient.

Run: /usr/bin/python3 tools/grad/make_swin_grad_fixtures.py  (from the repository root)
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, os.path.join(HERE, "..", "swin"))
import make_grad_fixtures as deit_fixtures  # noqa: E402  (kept patterns and the compact format's sparse encoding)
import seeded  # noqa: E402
import st_io  # noqa: E402
import swin  # noqa: E402

LABEL_SMOOTHING = 0.1
BATCH = 2


def config(name, embed, heads, image, window=4):
    c = swin.uniform_config(name, embed, [2, 2], heads, window=window, classes=5, image=image, patch=2, mlp_ratio=2)
    return c


MODELS = {
    "shift": config("swin_grad_shift", 8, [2, 2], 32),
    "pad": config("swin_grad_pad", 12, [2, 3], 20),
}

# Pruned linears of the masked model: weight -> ("bsr", bh, bw) or ("unstructured",).
MASKS = {
    "patch_embed.proj.weight": ("bsr", 4, 4),
    "layers.0.blocks.0.attn.qkv.weight": ("bsr", 4, 4),
    "layers.0.blocks.1.attn.proj.weight": ("unstructured",),
    "layers.1.downsample.reduction.weight": ("bsr", 4, 4),
    "layers.1.blocks.1.mlp.fc2.weight": ("unstructured",),
    "head.fc.weight": ("unstructured",),
}


def loss_fn(kind, logits, labels):
    if kind == "ce":
        return F.cross_entropy(logits, labels, label_smoothing=LABEL_SMOOTHING)
    if kind == "sq":
        return (logits ** 2).mean()
    raise ValueError(kind)


def main():
    out_dir = os.path.join(HERE, "..", "..", "tests", "fixtures", "swin_grad")
    os.makedirs(out_dir, exist_ok=True)
    models = list(MODELS.items()) + [("masked", dict(MODELS["shift"], name="swin_grad_masked"))]
    for seed, (key, cfg) in enumerate(models):
        shapes = swin.expected_shapes(cfg)
        w32 = {n: t.numpy() for n, t in swin.sharp_weights(cfg, 10 + seed).items()}
        masks = {}
        if key == "masked":
            for n, spec in MASKS.items():
                rows = shapes[n][0]
                m = deit_fixtures.kept_pattern(n, rows, int(np.prod(shapes[n])) // rows, spec, seed + 1)
                masks[n] = m.reshape(shapes[n])
                w32[n] = (w32[n] * masks[n]).astype(np.float32)
        s = cfg["image_size"]
        images = seeded.image_batch([BATCH, cfg["in_chans"], s, s], seed=seed + 1)
        labels = np.array([(3 * i + seed) % cfg["num_classes"] for i in range(BATCH)], dtype=np.int64)
        out = {n: w32[n] for n in shapes if n not in masks}
        sparse_meta = {}
        for n in masks:
            tensors, entry = deit_fixtures.encode_sparse(n, w32[n].reshape(shapes[n][0], -1), masks[n].reshape(shapes[n][0], -1), MASKS[n])
            out.update(tensors)
            sparse_meta[n] = entry
        out["input"] = images
        out["labels"] = labels.astype(np.float32)
        for kind in ("ce", "sq"):
            w = {n: torch.tensor(a, dtype=torch.float64, requires_grad=True) for n, a in w32.items()}
            # A pruned weight is its kept entries times the mask: autograd then gives dL/dW = mask ∘ dL/dW_eff.
            w_eff = {n: w[n] * torch.tensor(masks[n], dtype=torch.float64) if n in masks else w[n] for n in w}
            logits = swin.forward(cfg, w_eff, torch.tensor(images, dtype=torch.float64))
            loss = loss_fn(kind, logits, torch.tensor(labels))
            loss.backward()
            out["logits"] = logits.detach().numpy().astype(np.float32)
            out[f"loss.{kind}"] = np.array([loss.item()], dtype=np.float32)
            for n in shapes:
                out[f"grad.{kind}.{n}"] = w[n].grad.numpy().astype(np.float32)
        meta = {"vitsparse.config": json.dumps(cfg), "label_smoothing": str(LABEL_SMOOTHING)}
        if sparse_meta:
            meta["vitsparse.sparse"] = json.dumps(sparse_meta)
        path = os.path.join(out_dir, f"{key}.safetensors")
        st_io.save(path, out, meta)
        print(f"wrote {path} ({os.path.getsize(path)} bytes), max|logit| {np.abs(out['logits']).max():.3f}")


if __name__ == "__main__":
    main()
