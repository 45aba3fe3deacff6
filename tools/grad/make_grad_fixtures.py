"""Float64 PyTorch autograd reference for `vitsparse grad` (issue 10).

For three small seeded models (uniform, ragged per-head widths, distilled) writes one safetensors file
each under tests/fixtures/grad/: the float32 weights (timm names, config in `vitsparse.config`
metadata), an input batch, labels, teacher logits, and for every loss the loss value and dL/dθ per
parameter under `grad.<loss>.<timm name>`. The forward is tools/reference/deit.py; losses are batch
means and are defined on the model's output logits (for a distilled model, the mean of both heads):

  ce   cross-entropy with label smoothing LS (PyTorch's definition)
  kl   T² · KL(softmax(teacher/T) ‖ softmax(logits/T)), averaged over the batch
  mse  mean over batch and classes of (logits − teacher)²
  sq   mean over batch and classes of logits²  (LPViT's label-free loss)

masked.safetensors is the ragged model with pruned linears stored sparse in our compact format (BSR
blocks or CSR entries, `vitsparse.sparse` metadata): the reference multiplies each such weight by its
kept-pattern mask, so dL/dW is zero on every pruned weight (see MASKS).

adamw.safetensors holds the ragged model's parameters after three torch.optim.AdamW steps (see
adamw_fixture), for the C# optimizer's parity test.

Run: /usr/bin/python3 tools/grad/make_grad_fixtures.py  (from the repository root)
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import deit  # noqa: E402
import seeded  # noqa: E402
import st_io  # noqa: E402

LABEL_SMOOTHING = 0.1
TEMPERATURE = 2.0
BATCH = 3


def small_config(name, qk, v, distilled):
    blocks = [{"qk": list(q), "v": list(w), "mlp": 32, "scale": 8 ** -0.5} for q, w in zip(qk, v)]
    return {"name": name, "image_size": 8, "patch_size": 4, "in_chans": 1, "embed_dim": 16, "num_classes": 5,
            "distilled": distilled, "ln_eps": 1e-6, "mean": [0.5], "std": [0.5], "crop_pct": 1.0, "blocks": blocks}


MODELS = {
    "uniform": small_config("grad_uniform", [[8, 8], [8, 8]], [[8, 8], [8, 8]], False),
    "ragged": small_config("grad_ragged", [[5, 9, 13], [3, 1]], [[7, 4, 11], [2, 6]], False),
    "distilled": small_config("grad_distilled", [[5, 9, 13], [8, 8]], [[7, 4, 11], [8, 8]], True),
}


# Pruned linears of the masked model: weight -> ("bsr", bh, bw) or ("unstructured",), with a seeded kept pattern.
MASKS = {
    "patch_embed.proj.weight": ("bsr", 4, 4),
    "blocks.0.attn.qkv.weight": ("bsr", 4, 4),
    "blocks.0.attn.proj.weight": ("unstructured",),
    "blocks.0.mlp.fc2.weight": ("unstructured",),
    "blocks.1.mlp.fc1.weight": ("bsr", 8, 4),
    "head.weight": ("unstructured",),
}
KEEP = 0.5


def kept_pattern(name, rows, cols, spec, seed):
    """A seeded 0/1 mask of [rows, cols]: whole bh×bw blocks for bsr, single weights for unstructured."""
    bh, bw = (spec[1], spec[2]) if spec[0] == "bsr" else (1, 1)
    assert rows % bh == 0 and cols % bw == 0, name
    u = seeded.uniform("mask." + name, (rows // bh) * (cols // bw), seed).reshape(rows // bh, cols // bw)
    blocks = (u < KEEP).astype(np.float32)
    return np.kron(blocks, np.ones((bh, bw), dtype=np.float32))


def encode_sparse(name, w2d, mask, spec):
    """The compact format's tensors for a masked weight, and its `vitsparse.sparse` entry."""
    rows, cols = w2d.shape
    if spec[0] == "bsr":
        bh, bw = spec[1], spec[2]
        values, col_idx, row_ptr = [], [], [0]
        for br in range(rows // bh):
            for bc in range(cols // bw):
                if mask[br * bh, bc * bw]:
                    values.append(w2d[br * bh:(br + 1) * bh, bc * bw:(bc + 1) * bw])
                    col_idx.append(bc)
            row_ptr.append(len(col_idx))
        total = (rows // bh) * (cols // bw)
        tensors = {name + ".bsr_values": np.array(values, dtype=np.float32).reshape(-1, bh, bw),
                   name + ".bsr_col_indices": np.array(col_idx, dtype=np.int32),
                   name + ".bsr_row_ptr": np.array(row_ptr, dtype=np.int32)}
        entry = {"format": "bsr", "block": [bh, bw], "shape": [rows, cols], "density": round(len(col_idx) / total, 6)}
    else:
        values, col_idx, row_ptr = [], [], [0]
        for r in range(rows):
            for c in range(cols):
                if mask[r, c]:
                    values.append(w2d[r, c])
                    col_idx.append(c)
            row_ptr.append(len(col_idx))
        tensors = {name + ".csr_values": np.array(values, dtype=np.float32),
                   name + ".csr_col_indices": np.array(col_idx, dtype=np.int32),
                   name + ".csr_row_ptr": np.array(row_ptr, dtype=np.int32)}
        entry = {"format": "unstructured", "shape": [rows, cols], "density": round(len(col_idx) / (rows * cols), 6)}
    return tensors, entry


def loss_fn(kind, logits, labels, teacher):
    if kind == "ce":
        return F.cross_entropy(logits, labels, label_smoothing=LABEL_SMOOTHING)
    if kind == "kl":
        t = TEMPERATURE
        return F.kl_div(F.log_softmax(logits / t, dim=-1), F.log_softmax(teacher / t, dim=-1),
                        reduction="batchmean", log_target=True) * t * t
    if kind == "mse":
        return F.mse_loss(logits, teacher)
    if kind == "sq":
        return (logits ** 2).mean()
    raise ValueError(kind)


def main():
    out_dir = os.path.join(HERE, "..", "..", "tests", "fixtures", "grad")
    os.makedirs(out_dir, exist_ok=True)
    models = list(MODELS.items()) + [("masked", dict(MODELS["ragged"], name="grad_masked"))]
    for seed, (key, cfg) in enumerate(models):
        shapes = deit.expected_shapes(cfg)
        w32 = {n: seeded.tensor(n, s, seed=seed + 1) for n, s in shapes.items()}
        masks = {}
        if key == "masked":
            for n, spec in MASKS.items():
                rows = shapes[n][0]
                m = kept_pattern(n, rows, int(np.prod(shapes[n])) // rows, spec, seed + 1)
                masks[n] = m.reshape(shapes[n])
                w32[n] = (w32[n] * masks[n]).astype(np.float32)
        images = seeded.image_batch([BATCH, cfg["in_chans"], cfg["image_size"], cfg["image_size"]], seed=seed + 1)
        labels = np.array([(3 * i + seed) % cfg["num_classes"] for i in range(BATCH)], dtype=np.int64)
        teacher = (4.0 * seeded.uniform("teacher", BATCH * cfg["num_classes"], seed + 1) - 2.0).astype(np.float32)
        teacher = teacher.reshape(BATCH, cfg["num_classes"])
        out = {n: w32[n] for n in shapes if n not in masks}
        sparse_meta = {}
        for n in masks:
            tensors, entry = encode_sparse(n, w32[n].reshape(shapes[n][0], -1), masks[n].reshape(shapes[n][0], -1), MASKS[n])
            out.update(tensors)
            sparse_meta[n] = entry
        out["input"] = images
        out["labels"] = labels.astype(np.float32)
        out["teacher_logits"] = teacher
        for kind in ("ce", "kl", "mse", "sq"):
            w = {n: torch.tensor(a, dtype=torch.float64, requires_grad=True) for n, a in w32.items()}
            # A pruned weight is its kept entries times the mask: autograd then gives dL/dW = mask ∘ dL/dW_eff.
            w_eff = {n: w[n] * torch.tensor(masks[n], dtype=torch.float64) if n in masks else w[n] for n in w}
            logits = deit.forward(cfg, w_eff, torch.tensor(images, dtype=torch.float64))
            loss = loss_fn(kind, logits, torch.tensor(labels), torch.tensor(teacher, dtype=torch.float64))
            loss.backward()
            out[f"loss.{kind}"] = np.array([loss.item()], dtype=np.float32)
            for n in shapes:
                out[f"grad.{kind}.{n}"] = w[n].grad.numpy().astype(np.float32)
        meta = {"vitsparse.config": json.dumps(cfg), "label_smoothing": str(LABEL_SMOOTHING),
                "temperature": str(TEMPERATURE)}
        if sparse_meta:
            meta["vitsparse.sparse"] = json.dumps(sparse_meta)
        path = os.path.join(out_dir, f"{key}.safetensors")
        st_io.save(path, out, meta)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")



def adamw_fixture(out_dir):
    """Three AdamW steps (float64) on the ragged model, with the ce, kl and sq gradients as the steps'
    gradients, global-norm clipping, and DeiT's parameter groups (no decay on norms, biases, tokens, pos)."""
    t, _ = st_io.load(os.path.join(out_dir, "ragged.safetensors"))
    names = list(deit.expected_shapes(MODELS["ragged"]))
    w = {n: torch.tensor(t[n], dtype=torch.float64, requires_grad=True) for n in names}
    decay = [w[n] for n in names if n.endswith(".weight") and "norm" not in n]
    rest = [w[n] for n in names if not (n.endswith(".weight") and "norm" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": ADAMW_WD}, {"params": rest, "weight_decay": 0.0}],
                            lr=ADAMW_LR[0], betas=(0.9, 0.999), eps=1e-8)
    for step, kind in enumerate(("ce", "kl", "sq")):
        for g in opt.param_groups:
            g["lr"] = ADAMW_LR[step]
        for n in names:
            w[n].grad = torch.tensor(t[f"grad.{kind}.{n}"], dtype=torch.float64)
        torch.nn.utils.clip_grad_norm_(list(w.values()), ADAMW_CLIP)
        opt.step()
    out = {n: w[n].detach().numpy().astype(np.float32) for n in names}
    path = os.path.join(out_dir, "adamw.safetensors")
    st_io.save(path, out, {"lr": json.dumps(ADAMW_LR), "weight_decay": str(ADAMW_WD), "clip": str(ADAMW_CLIP)})
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


ADAMW_LR = [1e-2, 5e-3, 2e-3]
ADAMW_WD = 0.05
ADAMW_CLIP = 0.5

if __name__ == "__main__":
    main()
    adamw_fixture(os.path.join(HERE, "..", "..", "tests", "fixtures", "grad"))
