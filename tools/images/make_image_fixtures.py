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


# --- PNG: a small hand-rolled encoder, so every color type, bit depth, filter and Adam7 can be covered
# (PIL writes neither 16-bit RGB nor interlaced PNGs). Expected pixels come from the source arrays.
import struct  # noqa: E402
import zlib  # noqa: E402

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    if depth == 8:
        return bytes(samples.astype(np.uint8).ravel())
    if depth == 16:
        return samples.astype(">u2").tobytes()
    bits = "".join(format(int(v), f"0{depth}b") for v in samples.ravel())
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def filter_row(kind, row, prev, bpp):
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][kind]
        out[i] = (row[i] - pred) & 0xFF
    return bytes([kind]) + bytes(out)


def write_png(path, img, color_type, depth, interlace=False, palette=None, trns=None):
    """img: [H, W, samples] array of raw sample values."""
    h, w = img.shape[:2]
    samples = img.shape[2]
    bpp = max(1, samples * depth // 8)
    raw, k = b"", 0
    for x0, y0, dx, dy in (ADAM7 if interlace else [(0, 0, 1, 1)]):
        sub = img[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prev = bytes(len(pack_row(sub[0], depth)))
        for r in range(sub.shape[0]):
            row = pack_row(sub[r], depth)
            raw += filter_row(k % 5, row, prev, bpp)  # every filter type in turn
            prev, k = row, k + 1
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace)))
    if palette is not None:
        data += chunk(b"PLTE", bytes(palette.astype(np.uint8).ravel()))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


rng = np.random.default_rng(7)
H, W = 11, 13
cases = {}
g8 = rng.integers(0, 256, (H, W, 1))
cases["gray8"] = (g8, 0, 8, {}, g8)
g1 = rng.integers(0, 2, (H, W, 1))
cases["gray1"] = (g1, 0, 1, {}, g1 * 255)
g4 = rng.integers(0, 16, (H, W, 1))
cases["gray4_adam7"] = (g4, 0, 4, {"interlace": True}, g4 * 17)
g16 = rng.integers(0, 65536, (H, W, 1))
cases["gray16"] = (g16, 0, 16, {}, g16 >> 8)
rgb8 = rng.integers(0, 256, (H, W, 3))
cases["rgb8"] = (rgb8, 2, 8, {}, rgb8)
cases["rgb8_adam7"] = (rgb8, 2, 8, {"interlace": True}, rgb8)
rgb16 = rng.integers(0, 65536, (H, W, 3))
cases["rgb16"] = (rgb16, 2, 16, {}, rgb16 >> 8)
ga = rng.integers(0, 256, (H, W, 2))
cases["gray_alpha8"] = (ga, 4, 8, {}, np.concatenate([ga[..., :1]] * 3 + [ga[..., 1:]], -1))
rgba16 = rng.integers(0, 65536, (H, W, 4))
cases["rgba16_adam7"] = (rgba16, 6, 16, {"interlace": True}, rgba16 >> 8)
pal = rng.integers(0, 256, (6, 3))
idx = rng.integers(0, 6, (H, W, 1))
cases["palette4"] = (idx, 3, 4, {"palette": pal}, pal[idx[..., 0]])
alpha = bytes([0, 128, 255, 40])
cases["palette8_trns"] = (idx, 3, 8, {"palette": pal, "trns": alpha},
                          np.concatenate([pal[idx[..., 0]], np.array([alpha[i] if i < 4 else 255 for i in idx.ravel()]).reshape(H, W, 1)], -1))
for name, (img, ct, depth, kw, expected) in cases.items():
    write_png(os.path.join(OUT, f"png_{name}.png"), img, ct, depth, **kw)
    np.save(os.path.join(OUT, f"png_{name}.pixels.npy"), expected.astype(np.float32))
print(f"{len(cases)} PNG fixtures written")


# --- Preprocessing parity on real photos from Debian opencv-doc: small crops (committed as PNG) and the
# tensors torchvision's eval transform makes from them (resize shorter side to ⌊64/0.875⌋ = 73 with PIL
# bicubic, center crop 64, ToTensor; before mean/std, so the tolerance reads directly as 1/255).
PHOTOS = "/usr/share/doc/opencv-doc/examples/data"
try:
    import torchvision.transforms as T  # noqa: E402
except ImportError:
    T = None
if os.path.isdir(PHOTOS) and T is None:
    print("torchvision not installed (Debian python3-torchvision); photo crops not regenerated")
elif os.path.isdir(PHOTOS):
    eval_tf = T.Compose([T.Resize(73, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(64), T.ToTensor()])
    crops = {"fruits": ("fruits.jpg", (150, 120, 330, 260)),      # landscape, downscaled
             "baboon": ("baboon.jpg", (180, 60, 330, 300)),      # portrait, downscaled
             "chicky": ("chicky_512.png", (200, 180, 250, 240))}  # 50×60: upscaled
    for name, (file, box) in crops.items():
        crop = Image.open(os.path.join(PHOTOS, file)).convert("RGB").crop(box)
        crop.save(os.path.join(OUT, f"photo_{name}.png"))
        np.save(os.path.join(OUT, f"photo_{name}.eval64.npy"), eval_tf(crop).numpy().astype(np.float32))
    print(f"{len(crops)} photo crops written")
else:
    print(f"{PHOTOS} not found (apt-get install opencv-doc); photo fixtures not regenerated")


# --- JPEG decoding parity on every real photo in Debian opencv-doc: what PIL decodes from each (mode,
# size, SHA-256 of the pixel bytes in PIL's own mode, L or RGB). The test decodes the installed files and
# compares hashes, so nothing large is committed.
if os.path.isdir(PHOTOS):
    import hashlib  # noqa: E402

    lines = []
    for name in sorted(f for f in os.listdir(PHOTOS) if f.lower().endswith((".jpg", ".jpeg"))):
        im = Image.open(os.path.join(PHOTOS, name))
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        lines.append(f"{name} {im.width} {im.height} {im.mode} {hashlib.sha256(im.tobytes()).hexdigest()}")
    with open(os.path.join(OUT, "opencv_doc_jpeg_pil.txt"), "w") as f:
        f.write("# Debian opencv-doc examples/data/*.jpg decoded by PIL 9.4 (python3-pil): name width height mode sha256(pixels)\n")
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines)} opencv-doc JPEG hashes written")
