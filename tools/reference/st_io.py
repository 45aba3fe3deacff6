"""Minimal safetensors reader/writer following the format spec, used by the reference scripts.

The official `safetensors` Python package is not in Debian 12 and PyPI is not reachable here, so this
module implements the spec directly and checks everything the reference implementation checks:
header length within the file, JSON object, known dtypes, shape x dtype size == byte span, offsets
contiguous from 0 and covering the whole data buffer, no duplicate keys.
"""
import json
import struct

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def _no_dupes(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key in header")
    return dict(pairs)


def load(path, strict=True):
    """Returns (tensors: dict name -> np.ndarray, metadata: dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError("header length exceeds file")
    header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=_no_dupes)
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    out, spans = {}, []
    for name, e in header.items():
        dt = e["dtype"]
        b, end = e["data_offsets"]
        count = int(np.prod(e["shape"])) if e["shape"] else 1
        if dt == "BF16":
            u16 = np.frombuffer(data[b:end], dtype="<u2").astype(np.uint32) << 16
            arr = u16.view(np.float32)
            size = 2
        else:
            npdt = np.dtype(DTYPES[dt]).newbyteorder("<")
            arr = np.frombuffer(data[b:end], dtype=npdt)
            size = npdt.itemsize
        if count * size != end - b:
            raise ValueError(f"{name}: byte span does not match shape")
        out[name] = arr.reshape(e["shape"]).copy()
        spans.append((b, end))
    if strict:
        spans.sort()
        pos = 0
        for b, end in spans:
            if b != pos:
                raise ValueError("data offsets are not contiguous")
            pos = end
        if pos != len(data):
            raise ValueError("data buffer has trailing bytes")
        if (8 + n) % 8 != 0:
            raise ValueError("header is not 8-byte aligned")
    return out, meta


def save(path, tensors, metadata=None, bf16=False):
    """tensors: dict name -> np.ndarray (float32/float16/int32, or all floats as BF16), written in insertion order."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        if bf16 and arr.dtype != np.int32:
            bits = arr.astype(np.float32).view(np.uint32).astype(np.uint64)
            rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
            dt, blob = "BF16", rounded.tobytes()
        else:
            dt = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int32): "I32"}[arr.dtype]
            blob = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for blob in blobs:
            f.write(blob)
