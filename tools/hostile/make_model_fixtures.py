#!/usr/bin/python3
"""Writes the hostile model fixtures of tests/fixtures/hostile/ (model_*.safetensors, st_*.safetensors).

Each file is a few KB: a tiny valid DeiT (image 8, patch 4, embed 8, one block of two heads) whose config
metadata or safetensors header was made hostile in one way. tests/HostileModelTests.cs names, for each
file, the config field or header problem our error must report. Stdlib only, so the bytes are exactly
what is written here (the header of some cases is deliberately not valid UTF-8 or not tiling).

    /usr/bin/python3 tools/hostile/make_model_fixtures.py
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "hostile")

BASE = {"name": "hostile_tiny", "image_size": 8, "patch_size": 4, "in_chans": 3, "embed_dim": 8,
        "num_classes": 3, "distilled": False, "ln_eps": 1e-6, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
        "crop_pct": 0.875, "blocks": [{"qk": [4, 4], "v": [4, 4], "mlp": 16, "scale": 0.5}]}


def shapes(cfg):
    """The timm tensor shapes of a (small, valid) config, as VitLayout.ExpectedShapes gives them."""
    e, b = cfg["embed_dim"], cfg["blocks"][0]
    grid = cfg["image_size"] // cfg["patch_size"]
    # As 32-bit C# used to compute it: the row count wraps, so a crafted config can match small tensors.
    rows = (2 * sum(b["qk"]) + sum(b["v"]) + 2**31) % 2**32 - 2**31
    s = {"patch_embed.proj.weight": [e, cfg["in_chans"], cfg["patch_size"], cfg["patch_size"]],
         "patch_embed.proj.bias": [e], "cls_token": [1, 1, e], "pos_embed": [1, grid * grid + 1, e],
         "norm.weight": [e], "norm.bias": [e], "head.weight": [cfg["num_classes"], e], "head.bias": [cfg["num_classes"]],
         "blocks.0.norm1.weight": [e], "blocks.0.norm1.bias": [e], "blocks.0.norm2.weight": [e], "blocks.0.norm2.bias": [e],
         "blocks.0.attn.qkv.weight": [rows, e], "blocks.0.attn.qkv.bias": [rows],
         "blocks.0.attn.proj.weight": [e, sum(b["v"])], "blocks.0.attn.proj.bias": [e],
         "blocks.0.mlp.fc1.weight": [b["mlp"], e], "blocks.0.mlp.fc1.bias": [b["mlp"]],
         "blocks.0.mlp.fc2.weight": [e, b["mlp"]], "blocks.0.mlp.fc2.bias": [e]}
    return s


def count(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def entries(tensor_shapes):
    """Header entries tiling the data buffer in order, and the data (small F32 values)."""
    header, data, offset = {}, bytearray(), 0
    for i, (name, shape) in enumerate(tensor_shapes.items()):
        n = count(shape)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * n]}
        data += struct.pack(f"<{n}f", *[((i * 7 + j) % 13 - 6) * 0.01 for j in range(n)])
        offset += 4 * n
    return header, bytes(data)


def write(name, header_bytes, data):
    pad = (-len(header_bytes)) % 8
    header_bytes += b" " * pad
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)) + header_bytes + data)


def model(name, cfg=None, tensor_shapes=None, metadata=True):
    """A model whose tensors have the shapes of `tensor_shapes` (default: the valid base) and whose metadata holds `cfg`."""
    header, data = entries(tensor_shapes or shapes(BASE))
    if metadata:
        header["__metadata__"] = {"vitsparse.config": json.dumps(cfg if cfg is not None else BASE), "format": "pt"}
    write(name, json.dumps(header).encode(), data)


def with_(path, value, cfg=None):
    """A copy of BASE with one field replaced; path like 'blocks.0.qk'."""
    cfg = json.loads(json.dumps(cfg or BASE))
    keys = path.split(".")
    node = cfg
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    node[keys[-1]] = value
    return cfg


def main():
    os.makedirs(OUT, exist_ok=True)
    model("model_valid.safetensors")  # the control: loads and runs

    # Widths whose sums wrap a 32-bit int. With the old unchecked sums, 2·Σqk + Σv of this block
    # wraps to exactly the 48 rows the file's qkv tensor has, so the shape check passed and the
    # attention kernel indexed far outside its buffers.
    big = 2**31 - 1
    model("model_qk_int_max.safetensors", with_("blocks.0.qk", [big, big]))  # Σqk overflows: OverflowException before
    wrap = with_("blocks.0.v", [25, 25], with_("blocks.0.qk", [2**30, 2**30 - 1]))  # 2·Σqk + Σv = 2^32 + 48
    model("model_qkv_rows_wrap.safetensors", wrap, tensor_shapes=shapes(wrap))
    model("model_v_wrap.safetensors", with_("blocks.0.v", [2**31 - 4, 12]))
    model("model_mlp_huge.safetensors", with_("blocks.0.mlp", big))
    model("model_heads_mismatch.safetensors", with_("blocks.0.v", [4, 4, 4]))
    model("model_embed_huge.safetensors", with_("embed_dim", 2**20))
    model("model_classes_huge.safetensors", with_("num_classes", big))
    model("model_depth_zero.safetensors", with_("blocks", []))
    # image_size / patch_size give a token count that overflows (2^15 / 1)^2.
    model("model_tokens_overflow.safetensors", with_("patch_size", 1, with_("image_size", 2**15)))
    model("model_patch_zero.safetensors", with_("patch_size", 0))
    model("model_image_not_multiple.safetensors", with_("image_size", 9))
    model("model_in_chans_huge.safetensors", with_("in_chans", big))
    model("model_crop_zero.safetensors", with_("crop_pct", 0))
    model("model_crop_tiny.safetensors", with_("crop_pct", 1e-3))
    model("model_crop_huge.safetensors", with_("crop_pct", 1e39))
    model("model_mean_inf.safetensors", with_("mean", [1e39, 0.5, 0.5]))
    model("model_std_zero.safetensors", with_("std", [0.5, 0.0, 0.5]))
    model("model_std_tiny.safetensors", with_("std", [0.5, 0.5, 1e-30]))
    model("model_ln_eps_zero.safetensors", with_("ln_eps", 0))
    model("model_scale_negative.safetensors", with_("blocks.0.scale", -0.125))
    model("model_scale_huge.safetensors", with_("blocks.0.scale", 1e30))

    # A plain timm checkpoint (no metadata) whose patch-embed shape has an empty axis and a first axis of
    # 2^40: zero bytes of data, but a dimension that a narrowing cast used to turn into 0.
    s = shapes(BASE)
    s["patch_embed.proj.weight"] = [2**40, 3, 4, 0]
    model("model_timm_dim_overflow.safetensors", tensor_shapes=s, metadata=False)

    # Safetensors headers.
    header, data = entries(shapes(BASE))
    header["__metadata__"] = {"vitsparse.config": json.dumps(BASE)}
    raw = json.dumps(header).encode()
    write("st_invalid_utf8_key.safetensors", raw.replace(b'"cls_token"', b'"cls_\xfftoken"'), data)
    write("st_invalid_utf8_dtype.safetensors", raw.replace(b'"F32"', b'"F\xff2"', 1), data)
    write("st_trailing_bytes.safetensors", raw, data + b"\0" * 16)

    # Two tensors overlapping, with an empty tensor between them (the old pairwise check missed it).
    header, data = entries({"a": [4], "b": [4]})
    header["e"] = {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]}
    header["b"]["data_offsets"] = [8, 24]
    header["a"]["data_offsets"] = [0, 16]
    write("st_overlap_around_empty.safetensors", json.dumps(header).encode(), data[:24])
    header, data = entries({"a": [4], "b": [4]})
    header["b"]["data_offsets"] = [20, 36]
    write("st_gap.safetensors", json.dumps(header).encode(), data + b"\0" * 4)
    # A header length of 2^63 and one just past the 100 MB limit on a small file.
    with open(os.path.join(OUT, "st_header_len_huge.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", 2**63) + b"{}")
    # One preprocessed input for these models: float32 (1, 3, 8, 8) in NumPy's .npy v1 layout.
    npy_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 8, 8), }"
    npy_header += " " * ((-(10 + len(npy_header) + 1)) % 64) + "\n"
    with open(os.path.join(OUT, "model_input.npy"), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(npy_header)) + npy_header.encode("latin1"))
        f.write(struct.pack("<192f", *[((j * 5) % 17 - 8) * 0.1 for j in range(192)]))
    print(f"wrote hostile model fixtures to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
