#!/usr/bin/python3
"""Writes the fuzz seed corpus tests/fixtures/fuzz/seeds/ (small valid files of each format the fuzzer
targets that the fixtures do not already provide). Standard library only; deterministic output."""
import gzip, json, os, shutil, struct, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIXTURES, "fuzz", "seeds")
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes), laid out in order."""
    header, offset, body = {}, 0, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        body += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def npy(version, shape, values, descr="<f4"):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, "(%s)" % "".join("%d," % s for s in shape) if shape else "()")
    prefix = 12 if version > 1 else 10
    pad = -(prefix + len(d) + 1) % 64
    header = (d + " " * pad + "\n").encode("utf-8" if version == 3 else "latin1")
    length = struct.pack("<I", len(header)) if version > 1 else struct.pack("<H", len(header))
    code = {"<f4": "f", "<i8": "q", "<i4": "i", "|u1": "B"}[descr]
    return b"\x93NUMPY" + bytes([version, 0]) + length + header + struct.pack("<%d%s" % (len(values), code), *values)


def idx(dims, data):
    return struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


def config_of(fixture):
    with open(os.path.join(FIXTURES, fixture), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))["__metadata__"]["vitsparse.config"].encode()


def main():
    os.makedirs(OUT, exist_ok=True)
    f32 = struct.pack("<4f", 1.0, -2.5, 0.0, 3.25)
    write("safetensors_dtypes.safetensors", safetensors([
        ("f32", "F32", [2, 2], f32),
        ("f16", "F16", [3], struct.pack("<3e", 1.0, -0.5, 65504.0)),
        ("bf16", "BF16", [2], bytes([0x80, 0x3F, 0x00, 0xC0])),
        ("f64", "F64", [1], struct.pack("<d", 0.125)),
        ("i64", "I64", [2], struct.pack("<2q", 7, -7)),
        ("u8", "U8", [1, 3], bytes([1, 2, 3])),
    ], {"format": "pt", "classes": json.dumps(["a", "b"])}))
    # An empty tensor between two others: the layout where overlapping ranges once went unnoticed.
    write("safetensors_empty_tensor.safetensors", safetensors([
        ("a", "F32", [2], f32[:8]), ("empty", "F32", [0], b""), ("b", "F32", [2], f32[8:])]))
    write("config_ragged_tiny.json", config_of("ragged_tiny.safetensors"))
    write("config_ragged_distilled.json", config_of("ragged_distilled_bf16.safetensors"))
    write("classes_metadata.json", json.dumps(FASHION).encode())
    write("classes_fashion.txt", ("\n".join(FASHION) + "\n").encode())
    write("classes_wordnet.txt", "tench, Tinca tinca\r\ngoldfish, Carassius auratus\r\ngreat white shark\r\ntiger shark, Galeocerdo cuvieri\r\n"
          "hammerhead\r\nelectric ray, crampfish\r\nstingray\r\ncock\r\nhen\r\nostrich, Struthio camelus\r\n".encode())
    write("ratios_blocks.json", json.dumps({"embed": 0.25, "blocks": [{"qk": 0.5, "v": 0.25, "mlp": 0.1}, {"qk": 0.0}, {"mlp": 0.75}]}).encode())
    write("ratios_default.json", json.dumps({"embed": 0.125, "default": {"qk": 0.390625, "v": 0.203125, "mlp": 0.2}}).encode())
    write("npy_v2.npy", npy(2, [2, 3], [float(i) for i in range(6)]))
    write("npy_v3.npy", npy(3, [3], [0.5, 1.5, -2.0]))
    write("npy_scalar.npy", npy(1, [], [42.0]))
    write("labels_int64.npy", npy(1, [5], [3, 0, 9, 1, 2], descr="<i8"))
    write("labels_uint8.npy", npy(1, [4], [7, 7, 0, 255], descr="|u1"))
    images = idx([3, 4, 4], [(i * 17) % 256 for i in range(48)])
    labels = idx([3], [2, 0, 1])
    write("idx_images.idx", images)
    write("idx_labels.idx", labels)
    write("idx_images.idx.gz", gzip.compress(images, mtime=0))
    write("idx_labels.idx.gz", gzip.compress(labels, mtime=0))
    # Small JPEGs (baseline colour and grayscale) from Debian's opencv-doc examples, BSD-licensed.
    opencv = "/usr/share/doc/opencv-doc/examples/data"
    for src, dst in (("LinuxLogo.jpg", "jpeg_linuxlogo.jpg"), ("blox.jpg", "jpeg_blox.jpg")):
        if os.path.exists(os.path.join(opencv, src)):
            shutil.copyfile(os.path.join(opencv, src), os.path.join(OUT, dst))
        elif not os.path.exists(os.path.join(OUT, dst)):
            sys.exit(f"{opencv}/{src} is missing (apt-get install opencv-doc) and no committed copy exists")


if __name__ == "__main__":
    main()
