#!/usr/bin/python3
"""Writes small image fixtures and the pixels PIL (Debian python3-pil, on the same libjpeg-turbo) decodes
from them, for VitSparse's decoder tests. Deterministic. Run from the repository root:
  /usr/bin/python3 tools/images/make_image_fixtures.py"""
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")

h, w = 31, 45
y, x = np.mgrid[0:h, 0:w]
rgb = np.stack([(x * 255 // (w - 1)), (y * 255 // (h - 1)), ((x + y) * 7) % 256], axis=-1).astype(np.uint8)
rgb[10:20, 15:30] = [200, 30, 60]  # a sharp-edged block, so chroma subsampling matters
path = os.path.join(OUT, "gradient.jpg")
Image.fromarray(rgb, "RGB").save(path, quality=90)  # PIL default: 4:2:0 subsampling
decoded = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
np.save(os.path.join(OUT, "gradient.jpg.pixels.npy"), decoded)
print(f"{path}: {os.path.getsize(path)} bytes, {w}x{h}")
