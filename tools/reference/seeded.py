"""Seeded synthetic weights, bit-identical to VitSparse.Runtime.Models.SeededWeights (C#)."""
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def _splitmix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(name, count, seed=0):
    """Uniform [0,1) float32 values, 24-bit resolution."""
    with np.errstate(over="ignore"):
        state = np.uint64(fnv1a64(name) ^ seed)
        idx = np.arange(1, count + 1, dtype=np.uint64)
        z = _splitmix(state + idx * GOLDEN)
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def value_range(name, shape):
    is_norm = "norm" in name
    if is_norm and name.endswith(".weight"):
        return np.float32(0.1), np.float32(1.0)
    if is_norm:
        return np.float32(0.05), np.float32(0.0)
    if name.endswith(".bias"):
        return np.float32(0.02), np.float32(0.0)
    if name.endswith(".weight") and len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        return np.float32(1.0) / np.sqrt(np.float32(fan_in)), np.float32(0.0)
    return np.float32(0.05), np.float32(0.0)


def tensor(name, shape, seed=0):
    count = int(np.prod(shape))
    scale, offset = value_range(name, shape)
    u = uniform(name, count, seed)
    return (offset + scale * (np.float32(2.0) * u - np.float32(1.0))).astype(np.float32).reshape(shape)


def image_batch(shape, seed=0):
    """A seeded input batch in [-2, 2), the range of normalised images."""
    u = uniform("input", int(np.prod(shape)), seed)
    return (np.float32(4.0) * u - np.float32(2.0)).astype(np.float32).reshape(shape)
