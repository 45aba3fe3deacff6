#!/usr/bin/python3
"""Writes the hostile sparse-weight fixtures of tests/fixtures/hostile/ (sparse_*.safetensors).

The tiny valid DeiT of make_model_fixtures.py (embed 8, one block, MLP 16) with blocks.0.mlp.fc1.weight
[16, 8] stored BSR in 8×4 blocks (2 block rows × 2 block columns, 3 kept) and blocks.0.attn.proj.weight
[8, 8] stored unstructured (CSR), as README "Sparse weights" describes. Each hostile file breaks one rule
of the issue's "Bad input" list; tests/HostileModelTests.cs names the error each must give. Stdlib only.

    /usr/bin/python3 tools/hostile/make_sparse_fixtures.py
"""
import json
import os
import struct

from make_model_fixtures import BASE, OUT, shapes, count, write

FC1, PROJ = "blocks.0.mlp.fc1.weight", "blocks.0.attn.proj.weight"


def valid_parts():
    """Tensors (name -> (dtype, shape, values)) and the vitsparse.sparse metadata of the valid sparse model."""
    tensors = {}
    for i, (name, shape) in enumerate(shapes(BASE).items()):
        if name in (FC1, PROJ):
            continue
        n = count(shape)
        tensors[name] = ("F32", shape, [((i * 7 + j) % 13 - 6) * 0.01 for j in range(n)])
    # fc1: block row 0 keeps block columns 0 and 1, block row 1 keeps column 1.
    tensors[FC1 + ".bsr_values"] = ("F32", [3, 8, 4], [((j % 11) - 5) * 0.02 for j in range(3 * 32)])
    tensors[FC1 + ".bsr_col_indices"] = ("I32", [3], [0, 1, 1])
    tensors[FC1 + ".bsr_row_ptr"] = ("I32", [3], [0, 2, 3])
    # proj: row i keeps columns i and (i + 3) % 8, sorted.
    cols = [sorted([i, (i + 3) % 8]) for i in range(8)]
    tensors[PROJ + ".csr_values"] = ("F32", [16], [((j % 7) - 3) * 0.05 for j in range(16)])
    tensors[PROJ + ".csr_col_indices"] = ("I32", [16], [c for row in cols for c in row])
    tensors[PROJ + ".csr_row_ptr"] = ("I32", [9], list(range(0, 17, 2)))
    sparse = {FC1: {"format": "bsr", "block": [8, 4], "shape": [16, 8], "density": 0.75},
              PROJ: {"format": "unstructured", "shape": [8, 8], "density": 0.25}}
    return tensors, sparse


def sparse_model(name, edit=None, metadata=True):
    tensors, sparse = valid_parts()
    if edit:
        edit(tensors, sparse)
    header, data, offset = {}, bytearray(), 0
    for tname, (dtype, shape, values) in tensors.items():
        fmt = "<%di" % len(values) if dtype == "I32" else "<%df" % len(values)
        blob = struct.pack(fmt, *values)
        header[tname] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        data += blob
        offset += len(blob)
    header["__metadata__"] = {"vitsparse.config": json.dumps(BASE), "format": "pt"}
    if metadata:
        header["__metadata__"]["vitsparse.sparse"] = json.dumps(sparse)
    write(name, json.dumps(header).encode(), bytes(data))


def set_tensor(name, dtype, shape, values):
    def edit(t, s):
        t[name] = (dtype, shape, values)
    return edit


def main():
    os.makedirs(OUT, exist_ok=True)
    sparse_model("sparse_valid.safetensors")  # the control: loads, runs, equals itself loaded dense

    def block(shape):
        def edit(t, s):
            s[FC1]["block"] = shape
        return edit
    sparse_model("sparse_block_zero.safetensors", block([0, 4]))
    sparse_model("sparse_block_negative.safetensors", block([8, -4]))
    sparse_model("sparse_col_past_row.safetensors", set_tensor(FC1 + ".bsr_col_indices", "I32", [3], [0, 2, 1]))
    sparse_model("sparse_cols_unsorted.safetensors", set_tensor(FC1 + ".bsr_col_indices", "I32", [3], [1, 0, 1]))
    sparse_model("sparse_cols_duplicate.safetensors", set_tensor(FC1 + ".bsr_col_indices", "I32", [3], [1, 1, 1]))
    sparse_model("sparse_rowptr_decreasing.safetensors", set_tensor(FC1 + ".bsr_row_ptr", "I32", [3], [0, 3, 2]))
    sparse_model("sparse_rowptr_length.safetensors", set_tensor(FC1 + ".bsr_row_ptr", "I32", [4], [0, 2, 3, 3]))
    sparse_model("sparse_rowptr_huge.safetensors", set_tensor(FC1 + ".bsr_row_ptr", "I32", [3], [0, 2**31 - 1, 3]))
    sparse_model("sparse_values_count.safetensors", set_tensor(FC1 + ".bsr_values", "F32", [2, 8, 4], [0.01] * 64))
    sparse_model("sparse_csr_col_past_row.safetensors", set_tensor(PROJ + ".csr_col_indices", "I32", [16], [0, 3] * 7 + [0, 8]))
    sparse_model("sparse_csr_values_count.safetensors", set_tensor(PROJ + ".csr_values", "F32", [15], [0.01] * 15))
    sparse_model("sparse_index_dtype.safetensors", set_tensor(FC1 + ".bsr_col_indices", "F32", [3], [0.0, 1.0, 1.0]))

    def density(t, s):
        s[FC1]["density"] = 0.25
    sparse_model("sparse_density_mismatch.safetensors", density)

    def unknown_layer(t, s):
        for suffix in ("_values", "_col_indices", "_row_ptr"):
            t["blocks.3.mlp.fc1.weight.bsr" + suffix] = t[FC1 + ".bsr" + suffix]
        s["blocks.3.mlp.fc1.weight"] = dict(s[FC1])
    sparse_model("sparse_layer_not_in_arch.safetensors", unknown_layer)

    def not_linear(t, s):
        t["blocks.0.norm1.weight.csr_values"] = ("F32", [1], [1.0])
        t["blocks.0.norm1.weight.csr_col_indices"] = ("I32", [1], [0])
        t["blocks.0.norm1.weight.csr_row_ptr"] = ("I32", [2], [0, 1])
        s["blocks.0.norm1.weight"] = {"format": "unstructured", "shape": [1, 8], "density": 0.125}
        del t["blocks.0.norm1.weight"]
    sparse_model("sparse_not_a_linear.safetensors", not_linear)
    sparse_model("sparse_no_metadata.safetensors", metadata=False)

    def huge(t, s):
        s[FC1]["shape"] = [2**20, 2**10]  # 4 GiB dense from a few KB, if it were expanded
    sparse_model("sparse_dense_huge.safetensors", huge)


if __name__ == "__main__":
    main()
