"""A Swin Transformer in plain torch, written from the formulas with timm >= 0.9's semantics (timm is not
installed here): NHWC maps, cyclic shift by torch.roll before padding to whole windows, zero padding after
norm1, the -100 region mask computed on the padded map, the relative position bias gathered from
(2w-1)^2 x heads tables with the index recomputed, PatchMerging in x0, x1, x2, x3 order then LN(4C) and a
bias-free Linear, final LN, mean over tokens, head.fc. A stage whose map is no larger than the window uses a
window of the map's size and no shift (timm's _calc_window_shift).

`forward(cfg, w, x)` runs a state dict `w` (timm >= 0.9 names) on NCHW images; `expected_shapes(cfg)` lists
the tensors; `to_legacy(w, cfg)` renames them to the timm 0.6 / MS layout. cfg is the dict VitSparse stores
in its metadata (family "swin").
"""
import functools
import math

import torch
import torch.nn.functional as F


def uniform_config(name, embed, depths, heads, window=7, classes=1000, image=224, patch=4, mlp_ratio=4, layout="timm09"):
    return {"family": "swin", "name": name, "image_size": image, "patch_size": patch, "in_chans": 3,
            "num_classes": classes, "window": window, "key_layout": layout, "ln_eps": 1e-5,
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "crop_pct": 0.9,
            "stages": [{"depth": d, "dim": embed << s, "heads": h, "mlp": (embed << s) * mlp_ratio}
                       for s, (d, h) in enumerate(zip(depths, heads))]}


def resolution(cfg, s):
    return cfg["image_size"] // cfg["patch_size"] >> s


def stage_window(cfg, s):
    return min(cfg["window"], resolution(cfg, s))


def stage_shift(cfg, s):
    return 0 if resolution(cfg, s) <= cfg["window"] else cfg["window"] // 2


def expected_shapes(cfg):
    st = cfg["stages"]
    e, p = st[0]["dim"], cfg["patch_size"]
    s = {"patch_embed.proj.weight": [e, cfg["in_chans"], p, p], "patch_embed.proj.bias": [e],
         "patch_embed.norm.weight": [e], "patch_embed.norm.bias": [e]}
    for i, stage in enumerate(st):
        d = stage["dim"]
        if i > 0:
            prev4 = 4 * st[i - 1]["dim"]
            s[f"layers.{i}.downsample.norm.weight"] = [prev4]
            s[f"layers.{i}.downsample.norm.bias"] = [prev4]
            s[f"layers.{i}.downsample.reduction.weight"] = [d, prev4]
        w = stage_window(cfg, i)
        for b in range(stage["depth"]):
            q = f"layers.{i}.blocks.{b}."
            s[q + "norm1.weight"] = [d]; s[q + "norm1.bias"] = [d]
            s[q + "attn.relative_position_bias_table"] = [(2 * w - 1) ** 2, stage["heads"]]
            s[q + "attn.qkv.weight"] = [3 * d, d]; s[q + "attn.qkv.bias"] = [3 * d]
            s[q + "attn.proj.weight"] = [d, d]; s[q + "attn.proj.bias"] = [d]
            s[q + "norm2.weight"] = [d]; s[q + "norm2.bias"] = [d]
            s[q + "mlp.fc1.weight"] = [stage["mlp"], d]; s[q + "mlp.fc1.bias"] = [stage["mlp"]]
            s[q + "mlp.fc2.weight"] = [d, stage["mlp"]]; s[q + "mlp.fc2.bias"] = [d]
    f = st[-1]["dim"]
    s["norm.weight"] = [f]; s["norm.bias"] = [f]
    s["head.fc.weight"] = [cfg["num_classes"], f]; s["head.fc.bias"] = [cfg["num_classes"]]
    return s


def to_legacy(w, cfg):
    """timm >= 0.9 names -> timm 0.6 / MS names: the merge feeding stage s moves to the end of stage s-1, head.fc -> head."""
    out = {}
    for k, v in w.items():
        if ".downsample." in k:
            s = int(k.split(".")[1])
            k = k.replace(f"layers.{s}.downsample.", f"layers.{s - 1}.downsample.", 1)
        elif k.startswith("head.fc."):
            k = "head." + k[len("head.fc."):]
        out[k] = v
    return out


@functools.lru_cache(maxsize=None)
def relative_position_index(w):
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)  # 2, N
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()  # N, N, 2
    rel[:, :, 0] += w - 1
    rel[:, :, 1] += w - 1
    rel[:, :, 0] *= 2 * w - 1
    return rel.sum(-1)  # N, N


def window_partition(x, w, h, wd, c):
    return x.view(-1, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, c)


def window_reverse(win, w, h, wd, c):
    return win.view(-1, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, h, wd, c)


@functools.lru_cache(maxsize=None)
def shift_mask(hp, wp, w, shift, dtype):
    img = torch.zeros((1, hp, wp, 1), dtype=dtype)
    cnt = 0
    for hs in ((0, -w), (-w, -shift), (-shift, None)):
        for ws in ((0, -w), (-w, -shift), (-shift, None)):
            img[:, hs[0]:hs[1], ws[0]:ws[1], :] = cnt
            cnt += 1
    mw = window_partition(img, w, hp, wp, 1).squeeze(-1)  # nW, N
    m = mw.unsqueeze(1) - mw.unsqueeze(2)
    return m.masked_fill(m != 0, -100.0).masked_fill(m == 0, 0.0)


def layer_norm(x, w, p, eps, c):
    return F.layer_norm(x, (c,), w[p + ".weight"], w[p + ".bias"], eps)


def window_attention(x, w, p, heads, win, mask, c):
    n = win * win
    qkv = F.linear(x, w[p + "qkv.weight"], w[p + "qkv.bias"]).reshape(-1, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q = q * (c // heads) ** -0.5
    attn = q @ k.transpose(-2, -1)
    table = w[p + "relative_position_bias_table"]
    bias = table[relative_position_index(win).view(-1)].view(n, n, -1).permute(2, 0, 1)
    attn = attn + bias.unsqueeze(0)
    if mask is not None:
        nw = mask.shape[0]
        attn = attn.view(-1, nw, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, heads, n, n)
    attn = attn.softmax(-1)
    out = (attn @ v).transpose(1, 2).reshape(-1, n, c)
    return F.linear(out, w[p + "proj.weight"], w[p + "proj.bias"])


def block(x, w, p, heads, win, shift, eps, h, wd, c):
    y = layer_norm(x, w, p + "norm1", eps, c)
    if shift:
        y = torch.roll(y, shifts=(-shift, -shift), dims=(1, 2))
    ph, pw = (win - h % win) % win, (win - wd % win) % win
    y = F.pad(y, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, wd + pw
    mask = shift_mask(hp, wp, win, shift, y.dtype) if shift else None
    y = window_attention(window_partition(y, win, hp, wp, c), w, p + "attn.", heads, win, mask, c)
    y = window_reverse(y, win, hp, wp, c)[:, :h, :wd, :]
    if shift:
        y = torch.roll(y, shifts=(shift, shift), dims=(1, 2))
    x = x + y
    y = layer_norm(x, w, p + "norm2", eps, c)
    y = F.linear(F.gelu(F.linear(y, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])), w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
    return x + y


def patch_merge(x, w, p, eps, h, wd, c):
    x = x.reshape(-1, h // 2, 2, wd // 2, 2, c).permute(0, 1, 3, 4, 2, 5).reshape(-1, h // 2, wd // 2, 4 * c)  # x0, x1, x2, x3
    return F.linear(layer_norm(x, w, p + "norm", eps, 4 * c), w[p + "reduction.weight"])


def forward(cfg, w, x):
    eps = cfg["ln_eps"]
    y = F.conv2d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=cfg["patch_size"]).permute(0, 2, 3, 1)
    stages = cfg["stages"]
    y = layer_norm(y, w, "patch_embed.norm", eps, stages[0]["dim"])
    for s, stage in enumerate(stages):
        r = resolution(cfg, s)
        if s > 0:
            y = patch_merge(y, w, f"layers.{s}.downsample.", eps, 2 * r, 2 * r, stages[s - 1]["dim"])
        win, shift = stage_window(cfg, s), stage_shift(cfg, s)
        for b in range(stage["depth"]):
            y = block(y, w, f"layers.{s}.blocks.{b}.", stage["heads"], win, shift if b % 2 else 0, eps, r, r, stage["dim"])
    y = layer_norm(y, w, "norm", eps, stages[-1]["dim"]).mean(dim=(1, 2))
    return F.linear(y, w["head.fc.weight"], w["head.fc.bias"])


def sharp_weights(cfg, seed):
    """Random weights that make attention sharp: qkv ~ randn/sqrt(C) and bias tables ~ randn, so a transposed
    bias index or a wrong mask moves logits by far more than the parity bound."""
    g = torch.Generator().manual_seed(seed)
    w = {}
    for name, shape in expected_shapes(cfg).items():
        if "norm" in name and name.endswith(".weight"):
            t = 1 + 0.1 * torch.randn(shape, generator=g)
        elif name.endswith("relative_position_bias_table"):
            t = torch.randn(shape, generator=g)
        elif name.endswith(".weight") and len(shape) >= 2:
            t = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
        else:
            t = 0.1 * torch.randn(shape, generator=g)
        w[name] = t.float()
    return w
