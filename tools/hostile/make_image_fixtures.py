#!/usr/bin/python3
"""Writes small hostile JPEG/PNG files to tests/fixtures/hostile/ for VitSparse's HostileImageTests
(issue 19): header bombs, an inflate bomb, short tRNS chunks, a corrupt zlib stream, truncated files and
extremely thin images. Deterministic. Needs /usr/bin/python3 with Debian python3-pil (for the JPEGs).
Run from the repository root:
  /usr/bin/python3 tools/hostile/make_image_fixtures.py"""
import io
import os
import struct
import zlib

from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "hostile")
os.makedirs(OUT, exist_ok=True)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width, height, color_type, raw, depth=8, interlace=0, extra=b"", idat=None):
    """A PNG of the given IHDR; raw is the filtered scanline data (compressed here unless idat is given)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, interlace)
    data = zlib.compress(raw, 9) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} bytes")


# 1. Header bomb: 16384×16384 RGBA (1 GiB of pixels) in a few hundred bytes; only the first rows are present.
write("bomb_16384x16384_rgba.png", png(16384, 16384, 6, b"\0" * (1 + 16384 * 4) * 4))

# 2. Inflate bomb: a 1×1 RGB image whose IDAT inflates to 60 MB (a decoder must stop after the one row).
comp = zlib.compressobj(9)
idat = comp.compress(b"\0\x10\x20\x30")  # the real row: filter 0, one RGB pixel
zeros = b"\0" * (1 << 20)
for _ in range(60):
    idat += comp.compress(zeros)
idat += comp.flush()
write("inflate_1x1_60mb.png", png(1, 1, 2, b"", idat=idat))

# 3. tRNS chunks too short for their colour type (gray needs 2 bytes, RGB 6).
gray_rows = b"".join(b"\0" + bytes((x * 16 + y) % 256 for x in range(16)) for y in range(16))
write("trns_short_gray.png", png(16, 16, 0, gray_rows, extra=chunk(b"tRNS", b"\x07")))
rgb_rows = b"".join(b"\0" + bytes((x * 16 + y + c * 50) % 256 for x in range(16) for c in range(3)) for y in range(16))
write("trns_short_rgb.png", png(16, 16, 2, rgb_rows, extra=chunk(b"tRNS", b"\x00\x01\x02")))

# 4. A corrupt zlib stream: valid header, then a block with an invalid block type (BTYPE = 3).
write("corrupt_zlib.png", png(16, 16, 2, b"", idat=b"\x78\x9c\xff\xff\xff\xff" + b"\x00" * 32))

# 5. Truncated Adam7: a 64×64 interlaced RGB image cut off inside its IDAT (no IEND).
rows = b""
passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
for x0, y0, dx, dy in passes:
    for y in range(y0, 64, dy):
        rows += b"\0" + bytes((x * 4 + y * 3 + c * 85) % 256 for x in range(x0, 64, dx) for c in range(3))
full = png(64, 64, 2, rows, interlace=1)
write("truncated_adam7.png", full[:len(full) * 6 // 10])

# 6. Thin valid images: preprocessing resizes the shorter side to ⌊size/crop_pct⌋, which makes the other
#    side millions of pixels if done in full.
def thin_rows(width, height):
    return b"".join(b"\0" + bytes(((x * 97 + y * 5 + c * 60) // 3) % 256 for x in range(width) for c in range(3)) for y in range(height))


write("thin_1x16384.png", png(1, 16384, 2, thin_rows(1, 16384)))
write("thin_2x16384.png", png(2, 16384, 2, thin_rows(2, 16384)))
write("thin_16384x1.png", png(16384, 1, 2, thin_rows(16384, 1)))


# 7. JPEGs: a thin valid one, one whose header declares a huge size, one truncated.
def jpeg(width, height, **kw):
    img = Image.new("RGB", (width, height))
    img.putdata([(x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), 128) for y in range(height) for x in range(width)])
    b = io.BytesIO()
    img.save(b, "JPEG", quality=75, **kw)
    return b.getvalue()


write("thin_8x4000.jpg", jpeg(8, 4000))


def with_sof_size(data, width, height):
    """Rewrites the frame size in the SOF0 marker (FF C0: length, precision, height, width)."""
    i = data.index(b"\xff\xc0")
    return data[:i + 5] + struct.pack(">HH", height, width) + data[i + 9:]


small = jpeg(32, 32)
write("header_16000x16000.jpg", with_sof_size(small, 16000, 16000))  # 256 M pixels: over the pixel limit
write("header_65000x65000.jpg", with_sof_size(small, 65000, 65000))  # over the side limit too
photo = jpeg(96, 64)
write("truncated.jpg", photo[:len(photo) * 6 // 10])
