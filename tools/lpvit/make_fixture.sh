#!/usr/bin/env bash
# Regenerates tests/fixtures/lpvit/: the curves of LPViT on the Fashion-MNIST reference model (16×16 blocks,
# 50 % FLOPs, 256 training images; the distortion and power arrays dropped, the combined curve kept, to stay small)
# and what tools/lpvit/allocate.py allocates from them, which LpvitTests compares with the C# allocator.
# Needs Debian dataset-fashion-mnist; run from the repo root.
set -euo pipefail
out=tests/fixtures/lpvit
mkdir -p $out
if [ -z "${VITSPARSE:-}" ]; then tools/install-cli.sh >/dev/null; VITSPARSE=artifacts/vitsparse/vitsparse; fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
$VITSPARSE prune --method lpvit --weights tests/fixtures/deit_fmnist.safetensors --flops 0.5 --block 16x16 \
  --calib /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz --calib-images 256 \
  -o "$work/p.safetensors" --export-curves "$work/curves.json" >/dev/null
/usr/bin/python3 - "$work/curves.json" $out/fmnist_16x16.curves.json <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for l in doc["layers"]:
    l.pop("distortion", None); l.pop("power", None)
json.dump(doc, open(sys.argv[2], "w"), separators=(",", ":"))
PY
/usr/bin/python3 tools/lpvit/allocate.py $out/fmnist_16x16.curves.json > $out/fmnist_16x16.allocate.json
echo "wrote $out/fmnist_16x16.curves.json and $out/fmnist_16x16.allocate.json"
