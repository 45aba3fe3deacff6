#!/usr/bin/python3
"""Reads a safetensors file written by VitSparse's C# writer with the spec-strict Python reader and
records what Python sees (dtypes, shapes, values, metadata) as JSON next to it. The C# test
`Writer_output_is_what_the_python_reader_verified` checks both files.

Usage: /usr/bin/python3 tools/reference/check_writer.py tests/fixtures/writer_sample.safetensors
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import st_io  # noqa: E402

path = sys.argv[1]
tensors, meta = st_io.load(path, strict=True)
raw = open(path, "rb").read()
import struct  # noqa: E402
(n,) = struct.unpack("<Q", raw[:8])
dtypes = {k: v["dtype"] for k, v in json.loads(raw[8:8 + n]).items() if k != "__metadata__"}
out = {"metadata": meta,
       "tensors": {k: {"dtype": dtypes[k], "shape": list(v.shape), "values": [float(x) for x in v.reshape(-1)]}
                   for k, v in tensors.items()}}
with open(os.path.splitext(path)[0] + ".python.json", "w") as f:
    json.dump(out, f, indent=1)
print(f"{path}: {len(tensors)} tensors read by the strict reader")
