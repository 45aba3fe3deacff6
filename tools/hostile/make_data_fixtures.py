#!/usr/bin/python3
"""Writes the hostile data fixtures of issue 19 into tests/fixtures/hostile/: NPY, IDX (raw and gzip),
class-name and ratio files that once crashed VitSparse, made it allocate gigabytes, or were accepted
although they are nonsense. tests/HostileDataTests.cs asserts each gets our FileFormatException naming
the file, within 1 s and a 16 MB allocation budget. Standard library only; deterministic output."""
import gzip, json, os, struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "hostile")


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def npy_header(shape_text, descr="<f4", fortran="False", version=1):
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_text)
    prefix = 12 if version > 1 else 10
    header = (d + " " * (-(prefix + len(d) + 1) % 64) + "\n").encode("latin1")
    length = struct.pack("<I" if version > 1 else "<H", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header


def idx(dims, data=b""):
    return struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + data


def main():
    os.makedirs(OUT, exist_ok=True)
    # NPY: element counts that overflow or wrap, header lengths that are not headers.
    write("npy_shape_wraps_to_zero.npy", npy_header("(1073741824, 1073741824, 16)"))           # 2^64 elements: wraps to 0
    write("npy_shape_overflows_int64.npy", npy_header("(2147483647, 2147483647, 2147483647, 3)"))
    write("npy_shape_too_big.npy", npy_header("(100000, 100000)") + b"\0" * 16)              # 10^10 floats
    write("npy_shape_needs_more_data.npy", npy_header("(1000000,)") + b"\0" * 4)
    write("npy_negative_dimension.npy", npy_header("(-1, 4)") + b"\0" * 16)
    write("npy_dimension_over_int32.npy", npy_header("(4294967297,)") + b"\0" * 4)
    write("npy_v2_header_length_2pow31.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 31) + b"{'descr': '<f4'}")
    write("npy_v3_header_length_max.npy", b"\x93NUMPY\x03\x00" + struct.pack("<I", 0xFFFFFFFF) + b"{}")
    write("npy_header_over_limit.npy", npy_header("(" + " " * 20000 + "1,)", version=2) + b"\0" * 4)
    write("npy_float64.npy", npy_header("(2,)", descr="<f8") + b"\0" * 16)
    write("npy_fortran_order.npy", npy_header("(2, 2)", fortran="True") + b"\0" * 16)
    write("npy_unknown_version.npy", b"\x93NUMPY\x09\x00" + b"\0" * 8)
    write("npy_truncated_header.npy", npy_header("(2,)")[:40])
    write("npy_bad_magic.npy", b"\x93NUMPX\x01\x00\x10\x00" + b" " * 16)
    # IDX: item sizes that wrap, headers declaring far more data than the file holds.
    write("idx_item_size_wraps.idx", idx([3, 1 << 21, 1 << 21, 1 << 22]))                  # 2^64 bytes per item: wraps to 0
    write("idx_declares_6gb.idx", idx([100, 8192, 8192]))                                    # 6.7 GB from 16 bytes
    write("idx_empty_items.idx", idx([0x7FFFFFFF, 0, 4]))                                    # 2^31 items of 0 bytes
    write("idx_dimension_over_int32.idx", idx([0x80000000]))
    write("idx_rank_5.idx", idx([1, 1, 1, 1, 1], b"\0"))
    write("idx_int32_data.idx", b"\0\0\x0c\x01" + struct.pack(">I", 1) + b"\0" * 4)
    write("idx_truncated_dimensions.idx", idx([3, 28, 28])[:10])
    write("idx_truncated_data.idx", idx([3, 4, 4], b"\0" * 20))
    write("idx_gzip_declares_6gb.idx.gz", gzip.compress(idx([100, 8192, 8192], b"\0" * 64), mtime=0))
    # Declares 3 items of 4×4 and inflates to 10 MB more: inflation must stop at the declared end.
    write("idx_gzip_inflates_past_declared.idx.gz", gzip.compress(idx([3, 4, 4], b"\0" * (48 + (10 << 20))), mtime=0))
    write("idx_gzip_truncated_data.idx.gz", gzip.compress(idx([3, 4, 4], b"\0" * 20), mtime=0))
    write("idx_gzip_corrupt_stream.idx.gz", gzip.compress(idx([3, 4, 4], bytes(range(48))), mtime=0)[:12] + b"\xff" * 24)
    # Class-name files (10 classes expected).
    names = ["class%d" % i for i in range(10)]
    write("classes_invalid_utf8.txt", ("\n".join(names[:4]) + "\n").encode() + b"bad\xff\xfename\n" + ("\n".join(names[5:]) + "\n").encode())
    write("classes_terminal_escape.txt", ("\n".join(names[:3] + ["\x1b]0;pwned\x07\x1b[2Jcat"] + names[4:]) + "\n").encode())
    write("classes_nul_byte.txt", ("\n".join(names[:9] + ["nul\0name"]) + "\n").encode())
    write("classes_wrong_count.txt", ("\n".join(names[:9]) + "\n").encode())
    write("classes_empty_name.txt", ("\n".join(names[:5] + [" , synonym"] + names[6:]) + "\n").encode())
    write("classes_binary.txt", bytes(range(256)) * 4)
    # Ratio files (3 blocks expected).
    write("ratios_number_too_large.json", b'{"default": {"qk": 1e999}}')
    write("ratios_invalid_utf8.json", b'{"default": {"qk": 0.5}, "bl\xffocks": []}')
    write("ratios_deep_nesting.json", b'{"blocks": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    write("ratios_negative.json", json.dumps({"default": {"mlp": -0.5}}).encode())
    write("ratios_removes_everything.json", json.dumps({"embed": 1.0, "default": {}}).encode())
    write("ratios_not_an_object.json", b"[0.5, 0.5, 0.5]")
    write("ratios_nan_literal.json", b'{"default": {"qk": NaN}}')
    write("ratios_wrong_block_count.json", json.dumps({"blocks": [{"qk": 0.5}] * 4}).encode())
    write("ratios_string_ratio.json", json.dumps({"default": {"v": "0.5"}}).encode())
    write("ratios_truncated.json", b'{"blocks": [{"qk": 0.5}, {"v"')


if __name__ == "__main__":
    main()
