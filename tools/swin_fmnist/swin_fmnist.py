#!/usr/bin/python3
"""Trains "swin_fmnist", the small Swin for DIMAP's accuracy evidence, and evaluates pruned copies of it.

A timm-layout Swin (timm >= 0.9 keys: `layers.{s}.downsample` at the start of stage s >= 1, `head.fc`) for
28x28 grayscale images: patch 2 (in_chans 1) -> 14x14 tokens, window 7 (2x2 windows, shift 3 on odd blocks),
PatchMerging (x0, x1, x2, x3 order, LN(4C), Linear without bias) -> 7x7 (window = map, no shift); widths 48/96,
depths 2/2, heads 3/6 (head_dim 16), MLP 4x, LayerNorm eps 1e-5, final LN, global average pool, head.fc.

Recipe (fixed, seeded): AdamW lr 2e-3, weight decay 0.05, batch 128, linear warm-up over 200 steps then cosine
to 0, label smoothing 0.1, horizontal flips; normalisation mean 0.2860, std 0.3530 (the training set's).

Needs Debian python3-torch, python3-numpy and dataset-fashion-mnist. From the repository root:
  /usr/bin/python3 tools/swin_fmnist/swin_fmnist.py train [--epochs 6] [--threads 2]
      writes tests/fixtures/swin_fmnist.safetensors (F16 + VitSparse Swin config metadata) and
      tools/swin_fmnist/train_log.txt, then the reference outputs below
  /usr/bin/python3 tools/swin_fmnist/swin_fmnist.py reference
      writes, from the stored F16 fixture, tests/fixtures/swin_fmnist.test_pred.npy (PyTorch's class for each of
      the 10k test images, float32), swin_fmnist.sample.input.npy (the first 16 test images, preprocessed, NCHW)
      and swin_fmnist.sample.logits.npy (their logits, computed in float64)
  /usr/bin/python3 tools/swin_fmnist/swin_fmnist.py eval FILE... [--limit N] [--threads T]
      prints "FILE top1" for each (dense or VitSparse CSR/BSR-stored) safetensors on the 10k test images
      (the first N with --limit)
"""
import gzip
import json
import math
import os
import sys
import time

_threads = next((sys.argv[i + 1] for i, v in enumerate(sys.argv) if v == "--threads" and i + 1 < len(sys.argv)), "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", _threads)
os.environ["OMP_NUM_THREADS"] = _threads

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import st_io  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530
EMBED, DEPTHS, HEADS, WINDOW, PATCH = 48, [2, 2], [3, 6], 7, 2
CFG = {"family": "swin", "name": "swin_fmnist", "image_size": 28, "patch_size": PATCH, "in_chans": 1, "num_classes": 10,
       "window": WINDOW, "key_layout": "timm09", "ln_eps": 1e-5, "mean": [MEAN], "std": [STD], "crop_pct": 1.0,
       "stages": [{"depth": d, "dim": EMBED << s, "heads": h, "mlp": 4 * (EMBED << s)} for s, (d, h) in enumerate(zip(DEPTHS, HEADS))]}
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(magic & 0xFF)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def images(prefix):
    x = (torch.from_numpy(idx(f"{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255.0).unsqueeze(1) - MEAN) / STD
    return x, torch.from_numpy(idx(f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64))


class Attention(nn.Module):
    def __init__(self, dim, heads, window):
        super().__init__()
        self.heads, self.window = heads, window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.randn((2 * window - 1) ** 2, heads) * 0.02)
        c = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (c[:, :, None] - c[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("relative_position_index", rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1], persistent=False)

    def forward(self, x, mask):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        a = a + self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        if mask is not None:
            nw = mask.shape[0]
            a = a.view(b // nw, nw, self.heads, n, n) + mask[None, :, None]
            a = a.view(b, self.heads, n, n)
        return self.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim, heads, res, window, shift):
        super().__init__()
        self.res, self.window, self.shift = res, window, shift
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads, window)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, 4 * dim)
        self.mlp.fc2 = nn.Linear(4 * dim, dim)
        mask = None
        if shift:
            img = torch.zeros(res, res)
            cnt = 0
            for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
                for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
                    img[hs, ws] = cnt
                    cnt += 1
            mw = self.partition(img[None, :, :, None]).squeeze(-1)
            mask = (mw[:, None, :] - mw[:, :, None]).ne(0).float() * -100.0
        self.register_buffer("attn_mask", mask, persistent=False)

    def partition(self, x):
        b, h, w, c = x.shape
        s = self.window
        return x.view(b, h // s, s, w // s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, s * s, c)

    def forward(self, x):
        b, h, w, c = x.shape
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
        s = self.window
        y = self.attn(self.partition(y), self.attn_mask)
        y = y.view(b, h // s, w // s, s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = x + y
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class Merge(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim, eps=1e-5)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class SwinFmnist(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(1, EMBED, PATCH, PATCH)
        self.patch_embed.norm = nn.LayerNorm(EMBED, eps=1e-5)
        self.layers = nn.ModuleList()
        res = 28 // PATCH
        for s, (depth, heads) in enumerate(zip(DEPTHS, HEADS)):
            stage = nn.Module()
            dim = EMBED << s
            if s > 0:
                stage.downsample = Merge(dim // 2)
                res //= 2
            window = min(WINDOW, res)
            stage.blocks = nn.ModuleList([Block(dim, heads, res, window, 0 if b % 2 == 0 or res <= WINDOW else WINDOW // 2) for b in range(depth)])
            self.layers.append(stage)
        self.norm = nn.LayerNorm(EMBED << (len(DEPTHS) - 1), eps=1e-5)
        self.head = nn.Module()
        self.head.fc = nn.Linear(EMBED << (len(DEPTHS) - 1), 10)

    def forward(self, x):
        x = self.patch_embed.norm(self.patch_embed.proj(x).permute(0, 2, 3, 1))
        for s, stage in enumerate(self.layers):
            if s > 0:
                x = stage.downsample(x)
            for blk in stage.blocks:
                x = blk(x)
        return self.head.fc(self.norm(x).mean((1, 2)))


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, len(x), 500)])
    model.train()
    return (pred == y).float().mean().item()


def load_vitsparse(path):
    """Dense tensors of a VitSparse safetensors, CSR/BSR-stored weights expanded (README "Sparse weights")."""
    t, meta = st_io.load(path)
    out = {k: v.astype(np.float32) for k, v in t.items() if not any(s in k for s in (".csr_", ".bsr_"))}
    for name, l in json.loads(meta.get("vitsparse.sparse", "{}")).items():
        rows, cols = l["shape"]
        w = np.zeros((rows, cols), np.float32)
        if l["format"] == "unstructured":
            vals, ci, rp = t[name + ".csr_values"].astype(np.float32), t[name + ".csr_col_indices"], t[name + ".csr_row_ptr"]
            for r in range(rows):
                w[r, ci[rp[r]:rp[r + 1]]] = vals[rp[r]:rp[r + 1]]
        else:
            bh, bw = l["block"]
            vals, ci, rp = t[name + ".bsr_values"].astype(np.float32), t[name + ".bsr_col_indices"], t[name + ".bsr_row_ptr"]
            for br in range(len(rp) - 1):
                for b in range(rp[br], rp[br + 1]):
                    r0, c0 = br * bh, ci[b] * bw
                    h, wd = min(bh, rows - r0), min(bw, cols - c0)
                    w[r0:r0 + h, c0:c0 + wd] = vals[b, :h, :wd]
        out[name] = w
    return out


def train(epochs, threads):
    torch.manual_seed(0)
    torch.set_num_threads(int(threads))
    g = torch.Generator().manual_seed(1)
    xtr, ytr = images("train")
    xte, yte = images("t10k")
    model = SwinFmnist()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    steps = epochs * math.ceil(len(xtr) / 128)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 200) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    log = open(os.path.join(ROOT, "tools", "swin_fmnist", "train_log.txt"), "w")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    say(f"swin_fmnist: {sum(p.numel() for p in model.parameters())} parameters, torch {torch.__version__}, {threads} threads, "
        f"{epochs} epochs, batch 128, lr 2e-3, warm-up 200 steps, flips")
    start = time.time()
    for epoch in range(epochs):
        perm = torch.randperm(len(xtr), generator=g)
        total, n = 0.0, 0
        for i in range(0, len(xtr), 128):
            ix = perm[i:i + 128]
            xb = xtr[ix]
            flip = torch.rand(len(ix), generator=g) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            loss = F.cross_entropy(model(xb), ytr[ix], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(ix)
            n += len(ix)
            if (i // 128) % 100 == 99:
                print(f"  epoch {epoch + 1} step {i // 128 + 1}: loss {total / n:.4f}, {time.time() - start:.0f} s", flush=True)
        say(f"epoch {epoch + 1}: train loss {total / n:.4f}, test top-1 {evaluate(model, xte, yte) * 100:.2f}%, elapsed {time.time() - start:.0f} s")
        save(model)   # every epoch, so a cut-short run still leaves its best model
    w = {k: torch.from_numpy(v) for k, v in load_vitsparse(os.path.join(ROOT, "tests", "fixtures", "swin_fmnist.safetensors")).items()}
    model.load_state_dict(w)
    say(f"stored F16 weights: test top-1 {evaluate(model, xte, yte) * 100:.2f}% after {time.time() - start:.0f} s")
    write_reference()


def write_reference():
    """PyTorch's predictions and sample logits of the stored fixture, for the C# tests (SwinFashionMnistTests)."""
    out = os.path.join(ROOT, "tests", "fixtures")
    xte, yte = images("t10k")
    model = SwinFmnist()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in load_vitsparse(os.path.join(out, "swin_fmnist.safetensors")).items()})
    model.eval()
    with torch.no_grad():
        preds = torch.cat([model(xte[i:i + 500]).argmax(1) for i in range(0, len(xte), 500)])
        sample = model.double()(xte[:16].double())
    np.save(os.path.join(out, "swin_fmnist.test_pred.npy"), preds.numpy().astype(np.float32))
    np.save(os.path.join(out, "swin_fmnist.sample.input.npy"), xte[:16].numpy())
    np.save(os.path.join(out, "swin_fmnist.sample.logits.npy"), sample.float().numpy())
    print(f"reference: top-1 {(preds == yte).float().mean().item() * 100:.2f}% (10k), "
          f"{(preds[:2000] == yte[:2000]).float().mean().item() * 100:.2f}% (first 2000)", flush=True)


def save(model, path=os.path.join(ROOT, "tests", "fixtures", "swin_fmnist.safetensors")):
    w = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    meta = {"vitsparse.config": json.dumps(CFG), "format": "pt", "classes": json.dumps(CLASSES)}
    st_io.save(path, w, meta)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "train":
        epochs = int(next((sys.argv[i + 1] for i, v in enumerate(sys.argv) if v == "--epochs"), "6"))
        train(epochs, _threads)
    elif len(sys.argv) >= 2 and sys.argv[1] == "reference":
        torch.set_num_threads(int(_threads))
        write_reference()
    elif len(sys.argv) >= 3 and sys.argv[1] == "eval":
        torch.set_num_threads(int(_threads))
        xte, yte = images("t10k")
        limit = int(next((sys.argv[i + 1] for i, v in enumerate(sys.argv) if v == "--limit"), len(xte)))
        xte, yte = xte[:limit], yte[:limit]
        model = SwinFmnist()
        values = {sys.argv[i + 1] for i, v in enumerate(sys.argv[:-1]) if v in ("--threads", "--limit")}
        for path in [a for a in sys.argv[2:] if not a.startswith("--") and a not in values]:
            model.load_state_dict({k: torch.from_numpy(v) for k, v in load_vitsparse(path).items()})
            print(f"{path} {evaluate(model, xte, yte) * 100:.2f}", flush=True)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
