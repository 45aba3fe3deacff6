#!/usr/bin/env bash
# Accuracy of the Fashion-MNIST reference model after block pruning without fine-tuning: LPViT (power term coded,
# saving, off) against the block-magnitude and block-global baselines, at 8×8 and 16×16 blocks and two FLOPs
# targets, with the modelled block power of each; prints the markdown table kept in the README.
# LPViT's gradients: mean(logits²) over the first 2000 training images, computed once and reused (--gradients).
# Needs Debian dataset-fashion-mnist; run from the repo root. LIMIT test images (default: all 10000).
set -euo pipefail
data=/usr/share/datasets/fashion-mnist
model=tests/fixtures/deit_fmnist.safetensors
limit=${LIMIT:-10000}
if [ -z "${VITSPARSE:-}" ]; then tools/install-cli.sh >/dev/null; VITSPARSE=artifacts/vitsparse/vitsparse; fi
cli() { $VITSPARSE "$@"; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
top1() { cli eval --weights "$1" --idx $data/t10k-images-idx3-ubyte.gz $data/t10k-labels-idx1-ubyte.gz --limit "$limit" --json "$work/e.json" >/dev/null
         /usr/bin/python3 -c "import json; print(f\"{json.load(open('$work/e.json'))['top1']*100:.2f}\")"; }
field() { /usr/bin/python3 -c "import json; r=json.load(open('$work/r.json')); print(f\"{r['$1']:.3f}\")"; }
echo "dense: $(top1 $model)% top-1 on $limit test images"
echo
echo "| blocks | FLOPs target | method | power term | top-1 | linear+conv FLOPs kept | modelled block power |"
echo "| --- | ---: | --- | --- | ---: | ---: | ---: |"
for block in 8x8 16x16; do
  cli prune --method lpvit --weights $model --flops 0.5 --block $block --calib $data/train-images-idx3-ubyte.gz \
    --calib-images 2000 --save-gradients "$work/g.safetensors" -o "$work/p.safetensors" >/dev/null
  for flops in 0.5 0.8; do
    for variant in "lpvit|auto, coded|--power-weight auto --power-sign coded" "lpvit|auto, saving|--power-weight auto --power-sign saving" \
                   "lpvit|off|--power-weight 0" "lpvit|off, --smooth 0.9|--power-weight 0 --smooth 0.9" "block-magnitude|-|" "block-global|-|"; do
      IFS='|' read -r method power args <<<"$variant"
      extra=""; [ "$method" = lpvit ] && extra="--gradients $work/g.safetensors"
      cli prune --method $method --weights $model --flops $flops --block $block $extra $args -o "$work/p.safetensors" --report "$work/r.json" >/dev/null
      echo "| $block | $flops | $method | $power | $(top1 "$work/p.safetensors")% | $(field flops_ratio) | $(field power_ratio) |"
    done
  done
done
