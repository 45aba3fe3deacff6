"""Plain-PyTorch DeiT with ragged per-head widths: the reference VitSparse is checked against.

Config (same JSON as VitSparse's `vitsparse.config` metadata): one global embed width, and per block
per-head Q/K widths `qk`, per-head V widths `v`, FFN width `mlp` and attention `scale` (kept from the
unpruned head dim). The fused qkv weight has rows [q heads | k heads | v heads], head-major.
Runs in float64 so goldens carry no float32 rounding of their own.
"""
import torch
import torch.nn.functional as F


def expected_shapes(cfg):
    e, n = cfg["embed_dim"], (cfg["image_size"] // cfg["patch_size"]) ** 2 + (2 if cfg["distilled"] else 1)
    p, c, k = cfg["patch_size"], cfg["in_chans"], cfg["num_classes"]
    s = {"patch_embed.proj.weight": [e, c, p, p], "patch_embed.proj.bias": [e], "cls_token": [1, 1, e],
         "pos_embed": [1, n, e]}
    if cfg["distilled"]:
        s["dist_token"] = [1, 1, e]
    for i, b in enumerate(cfg["blocks"]):
        qkv = 2 * sum(b["qk"]) + sum(b["v"])
        pre = f"blocks.{i}."
        s.update({pre + "norm1.weight": [e], pre + "norm1.bias": [e],
                  pre + "attn.qkv.weight": [qkv, e], pre + "attn.qkv.bias": [qkv],
                  pre + "attn.proj.weight": [e, sum(b["v"])], pre + "attn.proj.bias": [e],
                  pre + "norm2.weight": [e], pre + "norm2.bias": [e],
                  pre + "mlp.fc1.weight": [b["mlp"], e], pre + "mlp.fc1.bias": [b["mlp"]],
                  pre + "mlp.fc2.weight": [e, b["mlp"]], pre + "mlp.fc2.bias": [e]})
    s.update({"norm.weight": [e], "norm.bias": [e], "head.weight": [k, e], "head.bias": [k]})
    if cfg["distilled"]:
        s.update({"head_dist.weight": [k, e], "head_dist.bias": [k]})
    return s


def attention(x, w, b, blk):
    qk, v = blk["qk"], blk["v"]
    t = F.linear(x, w, b)  # [B, N, 2Σqk + Σv]
    sq = sum(qk)
    q_all, k_all, v_all = t[..., :sq], t[..., sq:2 * sq], t[..., 2 * sq:]
    outs, qo, vo = [], 0, 0
    for dq, dv in zip(qk, v):
        q = q_all[..., qo:qo + dq]
        k = k_all[..., qo:qo + dq]
        vv = v_all[..., vo:vo + dv]
        a = (q @ k.transpose(-2, -1)) * blk["scale"]
        outs.append(a.softmax(dim=-1) @ vv)
        qo += dq
        vo += dv
    return torch.cat(outs, dim=-1)


def forward(cfg, w, images):
    """w: dict of float64 tensors with timm names; images: [B, C, H, W] float64. Returns logits [B, classes]."""
    eps = cfg.get("ln_eps", 1e-6)
    e = cfg["embed_dim"]
    x = F.conv2d(images, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=cfg["patch_size"])
    x = x.flatten(2).transpose(1, 2)
    bsz = x.shape[0]
    prefix = [w["cls_token"].expand(bsz, -1, -1)]
    if cfg["distilled"]:
        prefix.append(w["dist_token"].expand(bsz, -1, -1))
    x = torch.cat(prefix + [x], dim=1) + w["pos_embed"]
    for i, blk in enumerate(cfg["blocks"]):
        p = f"blocks.{i}."
        h = F.layer_norm(x, (e,), w[p + "norm1.weight"], w[p + "norm1.bias"], eps)
        a = attention(h, w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"], blk)
        x = x + F.linear(a, w[p + "attn.proj.weight"], w[p + "attn.proj.bias"])
        h = F.layer_norm(x, (e,), w[p + "norm2.weight"], w[p + "norm2.bias"], eps)
        h = F.gelu(F.linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"]))
        x = x + F.linear(h, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
    x = F.layer_norm(x, (e,), w["norm.weight"], w["norm.bias"], eps)
    out = F.linear(x[:, 0], w["head.weight"], w["head.bias"])
    if cfg["distilled"]:
        out = (out + F.linear(x[:, 1], w["head_dist.weight"], w["head_dist.bias"])) / 2
    return out


def uniform_config(name, embed, depth, heads, classes=1000, distilled=False, image=224, patch=16, mlp_ratio=4):
    hd = embed // heads
    return {"name": name, "image_size": image, "patch_size": patch, "in_chans": 3, "embed_dim": embed,
            "num_classes": classes, "distilled": distilled, "ln_eps": 1e-6,
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "crop_pct": 0.875,
            "blocks": [{"qk": [hd] * heads, "v": [hd] * heads, "mlp": embed * mlp_ratio, "scale": hd ** -0.5}
                       for _ in range(depth)]}
