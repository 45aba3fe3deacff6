#!/usr/bin/python3
"""Writes the small Swin models, inputs and PyTorch goldens of VitSparse's Swin parity tests.

Run from the repository root:  /usr/bin/python3 tools/swin/make_swin_fixtures.py
Needs Debian's python3-torch and python3-numpy. Deterministic: rerunning gives the same files.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
import seeded  # noqa: E402
import st_io  # noqa: E402
import swin  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")


def write_case(name, cfg, weights, batch, seed, legacy=False, with_metadata=True):
    stored = swin.to_legacy(weights, cfg) if legacy else weights
    stored = {k: t.numpy() for k, t in stored.items()}
    meta = {"format": "pt"}
    if with_metadata:
        meta["vitsparse.config"] = json.dumps(dict(cfg, key_layout="legacy" if legacy else "timm09"))
    st_io.save(os.path.join(OUT, f"{name}.safetensors"), stored, meta)
    g = torch.Generator().manual_seed(seed + 1000)
    s = cfg["image_size"]
    x = torch.randn([batch, cfg["in_chans"], s, s], generator=g).float()
    logits = swin.forward(cfg, {k: v.double() for k, v in weights.items()}, x.double())
    np.save(os.path.join(OUT, f"{name}.input.npy"), x.numpy())
    np.save(os.path.join(OUT, f"{name}.logits.npy"), logits.float().numpy())
    print(f"{name}: {len(stored)} tensors, max|logit| {logits.abs().max().item():.3f}")
    return x, logits


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_grad_enabled(False)
    # Maps 16, 8, 4 with window 4: shifted stages 0 and 1, stage 2 one unshifted window. Heads of width 8.
    tiny = swin.uniform_config("swin_tiny_test", 16, [2, 2, 2], [2, 2, 4], window=4, classes=10, image=32, patch=2)
    w = swin.sharp_weights(tiny, 1)
    x, logits = write_case("swin_tiny_t09", tiny, w, batch=2, seed=1)
    # The same weights in the timm 0.6 / MS layout, without our metadata (config inferred from the keys).
    write_case("swin_tiny_legacy", tiny, w, batch=2, seed=1, legacy=True, with_metadata=False)
    # Maps 24, 12, 6 with window 7: stages 0 and 1 pad (to 28 and 14) and shift by 3; stage 2's 6×6 map
    # shrinks the window to 6 (an 11² table) without a shift. Heads 6 and 8 wide.
    pad = swin.uniform_config("swin_pad_test", 12, [2, 2, 1], [2, 3, 6], window=7, classes=7, image=48, patch=2)
    write_case("swin_pad_t09", pad, swin.sharp_weights(pad, 2), batch=2, seed=2)

    # Full-size swin_t with seeded weights: C# regenerates the same weights from the same generator.
    t = swin.uniform_config("swin_tiny_patch4_window7_224", 96, [2, 2, 6, 2], [3, 6, 12, 24])
    w = {k: torch.from_numpy(seeded.tensor(k, v)).double() for k, v in swin.expected_shapes(t).items()}
    x = torch.from_numpy(seeded.image_batch([1, 3, 224, 224])).double()
    logits = swin.forward(t, w, x)
    np.save(os.path.join(OUT, "swin_tiny_seeded.logits.npy"), logits.float().numpy())
    print(f"swin_tiny_seeded: max|logit| {logits.abs().max().item():.3f}, first {logits[0, :3].tolist()}")


if __name__ == "__main__":
    main()
