"""Builds the reference DeiT (tools/reference/deit.py) as an nn.Module with the weights `bench` uses:
seeded synthetic weights from the same generator as VitSparse, or a safetensors checkpoint."""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "swin"))
import deit  # noqa: E402
import swin  # noqa: E402
import seeded  # noqa: E402
import st_io  # noqa: E402


class Deit(torch.nn.Module):
    def __init__(self, cfg, weights):
        super().__init__()
        self.cfg = cfg
        self.names = list(weights)
        for i, name in enumerate(self.names):
            self.register_buffer(f"w{i}", weights[name])

    def forward(self, images):
        w = {name: getattr(self, f"w{i}") for i, name in enumerate(self.names)}
        return deit.forward(self.cfg, w, images)


class Swin(Deit):
    """tools/swin/swin.py's Swin (timm >= 0.9 semantics) over buffers named as in timm >= 0.9."""

    def forward(self, images):
        w = {name: getattr(self, f"w{i}") for i, name in enumerate(self.names)}
        return swin.forward(self.cfg, w, images)


def load_swin(cfg, weights_path):
    """Swin weights by timm >= 0.9 name; a legacy-layout config reads (and seeds) its tensors under the old names."""
    shapes = swin.expected_shapes(cfg)
    legacy = cfg.get("key_layout") == "legacy"
    stored = dict(zip(swin.to_legacy(dict.fromkeys(shapes), cfg), shapes)) if legacy else {k: k for k in shapes}
    if weights_path:
        tensors, _ = st_io.load(weights_path, strict=False)
        w = {new: torch.from_numpy(np.asarray(tensors[old], dtype=np.float32)).reshape(shapes[new]) for old, new in stored.items()}
    else:
        w = {new: torch.from_numpy(seeded.tensor(old, shapes[new])) for old, new in stored.items()}
    return Swin(cfg, w).eval()


def load(config_path, weights_path=None):
    with open(config_path) as f:
        cfg = json.load(f)
    if cfg.get("family") == "swin":
        model = load_swin(cfg, weights_path)
        c, s = cfg["in_chans"], cfg["image_size"]
        return cfg, model, torch.from_numpy(seeded.image_batch([1, c, s, s]))
    shapes = deit.expected_shapes(cfg)
    if weights_path:
        tensors, _ = st_io.load(weights_path, strict=False)
        w = {k: torch.from_numpy(np.asarray(tensors[k], dtype=np.float32)) for k in shapes}
    else:
        w = {k: torch.from_numpy(seeded.tensor(k, v)) for k, v in shapes.items()}
    model = Deit(cfg, w).eval()
    c, s = cfg["in_chans"], cfg["image_size"]
    x = torch.from_numpy(seeded.image_batch([1, c, s, s]))
    return cfg, model, x
