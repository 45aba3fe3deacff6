#!/usr/bin/python3
"""LPViT's layer-wise block-sparsity allocation, redone in numpy from the formulas of methods.md §3.3 alone.

Reads the curves `vitsparse prune --method lpvit --export-curves FILE` writes and prints, as JSON, the amount and
kept blocks per layer, the slope exponent s (λ = 2^s) and the remaining linear+conv FLOPs ratio. The C# allocator
(src/Pruning/Lpvit/Slopes.cs) must agree with it within one curve step; tests/LpvitTests.cs checks that on the
committed fixture, which tools/lpvit/make_fixture.sh regenerates.

Formulas: slopes by the five-point stencil (-y[i+k] + 8y[i+k/2] - 8y[i-k/2] + y[i-k]) / (6 (x[i+k] - x[i])),
k = min(h, i, n-1-i), simple differences where k < 2 (forward in the first two points, central at the end);
per layer a = min(1 - min_sp, x[argmin |slope - 2^s|]); s bisected on [-100, 100], at most 40 steps, until the
FLOPs ratio is within the tolerance of the target. FLOPs of a layer: kept weights x rows per image + bias.
"""
import json
import sys

import numpy as np


def slopes(x, y, h):
    n = len(x)
    out = np.empty(n - 1)
    for i in range(n - 1):
        k = min(h, i, n - 1 - i)
        if k < 2:
            if i < 2:
                out[i] = (y[i + 1] - y[i]) / (x[i + 1] - x[i])
            else:
                out[i] = (y[i + 1] - y[i - 1]) / (x[i + 1] - x[i - 1])
        else:
            j = k // 2
            out[i] = (-y[i + k] + 8 * y[i + j] - 8 * y[i - j] + y[i - k]) / (6 * (x[i + k] - x[i]))
    return out


def main(path):
    with open(path) as f:
        doc = json.load(f)
    layers = doc["layers"]
    target, min_sp, tol, h = doc["target_flops"], doc["min_sp"], doc["tolerance"], doc["h"]
    dense = float(doc["dense_flops"])
    x = [np.asarray(l["amounts"], dtype=np.float64) for l in layers]
    y = [np.asarray(l.get("combined", l.get("distortion")), dtype=np.float64) for l in layers]
    for l, yl in zip(layers, y):
        if not np.all(np.isfinite(yl)):
            sys.exit(f"error: the curve of layer {l['name']} has a NaN/Inf value")
    d = [slopes(xl, yl, h) for xl, yl in zip(x, y)]
    kept_by_blocks = [np.asarray(l["kept_weights_by_blocks"], dtype=np.int64) for l in layers]
    layer_dense = sum(l["rows_per_image"] * (l["rows"] * l["cols"]) + l["bias_flops"] for l in layers)
    fixed = dense - layer_dense

    def kept_blocks(l, a):
        return int(np.clip(int((1.0 - a) * l["blocks"]), 0, l["blocks"]))

    def allocate(s):
        lam = 2.0 ** s
        return [min(1 - min_sp, xl[int(np.argmin(np.abs(dl - lam)))]) for xl, dl in zip(x, d)]

    def ratio(amounts):
        flops = fixed
        for l, kw, a in zip(layers, kept_by_blocks, amounts):
            flops += kw[kept_blocks(l, a)] * l["rows_per_image"] + l["bias_flops"]
        return flops / dense

    lo, hi, s, steps = -100.0, 100.0, 0.0, 0
    while lo < hi:
        s = (lo + hi) / 2
        r = ratio(allocate(s))
        steps += 1
        if abs(r - target) <= tol:
            break
        if r > target:
            lo = s
        else:
            hi = s
        if steps >= 40:
            gaps = {s: abs(r - target), lo: abs(ratio(allocate(lo)) - target), hi: abs(ratio(allocate(hi)) - target)}
            if gaps[s] > gaps[lo] and gaps[hi] > gaps[lo]:
                s = lo
            elif gaps[s] > gaps[hi] and gaps[lo] > gaps[hi]:
                s = hi
            break
    amounts = allocate(s)
    result = {
        "log2_slope": s,
        "flops_ratio": ratio(amounts),
        "layers": [{"name": l["name"], "amount": float(a), "kept_blocks": kept_blocks(l, a)} for l, a in zip(layers, amounts)],
    }
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: allocate.py CURVES.json")
    main(sys.argv[1])
