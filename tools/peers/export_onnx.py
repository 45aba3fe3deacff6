#!/usr/bin/python3
"""Exports the reference DeiT with bench's weights to ONNX (opset 17, input "images", output "logits")
for the ONNX Runtime peer.  Usage: export_onnx.py CONFIG.json OUT.onnx [--weights W.safetensors] [--batch B]"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import model  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("config")
p.add_argument("out")
p.add_argument("--weights")
p.add_argument("--batch", type=int, default=1)
a = p.parse_args()
cfg, net, x = model.load(a.config, a.weights)
x = x.repeat(a.batch, 1, 1, 1)
tmp = a.out + ".part"
with torch.no_grad():
    torch.onnx.export(net, (x,), tmp, input_names=["images"], output_names=["logits"], opset_version=17,
                      do_constant_folding=True)
os.replace(tmp, a.out)
print(f"exported {cfg.get('name')} to {a.out}")
