#!/usr/bin/env bash
# Accuracy of the Fashion-MNIST reference model after block pruning to 50 % of its linear+conv FLOPs, before and
# after `vitsparse finetune` (EPOCHS, default 2, over the 60k training images, soft distillation from the dense
# model, flips, lr 1e-3: the same recipe as tools/fmnist/finetune_accuracy.sh), for LPViT with its power term
# off and on (coded) and the block-magnitude and block-global baselines, at 8×8 and 16×16 blocks.
# Prints one markdown row as each run ends (the README keeps the table). VARIANTS picks rows ("8x8:lpvit-off
# 16x16:block-global ..."); each run takes about 25 min on one core. Needs Debian dataset-fashion-mnist; run
# from the repo root.
set -euo pipefail
data=/usr/share/datasets/fashion-mnist
model=tests/fixtures/deit_fmnist.safetensors
epochs=${EPOCHS:-2}; limit=${LIMIT:-60000}; threads=${THREADS:-2}
variants=${VARIANTS:-8x8:lpvit-off 8x8:block-global 16x16:lpvit-off 16x16:block-global 8x8:lpvit-coded 16x16:lpvit-coded 8x8:block-magnitude 16x16:block-magnitude}
if [ -z "${VITSPARSE:-}" ]; then tools/install-cli.sh >/dev/null; VITSPARSE=artifacts/vitsparse/vitsparse; fi
cli() { $VITSPARSE "$@"; }
work=${WORK:-$(mktemp -d)}
top1() { cli eval --weights "$1" --idx $data/t10k-images-idx3-ubyte.gz $data/t10k-labels-idx1-ubyte.gz --threads "$threads" --json "$work/e.json" >/dev/null
         /usr/bin/python3 -c "import json; print(f\"{json.load(open('$work/e.json'))['top1']*100:.2f}\")"; }
field() { /usr/bin/python3 -c "import json; r=json.load(open('$work/r.json')); print(f\"{r['$1']:.3f}\")"; }
echo "dense: $(top1 $model)% top-1 on the 10000 test images"
echo
echo "| blocks | method | power term | top-1 before | top-1 after $epochs epochs | FLOPs kept | modelled block power |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: |"
for v in $variants; do
  block=${v%%:*}; name=${v#*:}
  case $name in
    lpvit-off) method=lpvit; power=off; args=(--power-weight 0) ;;
    lpvit-coded) method=lpvit; power="auto, coded"; args=(--power-weight auto --power-sign coded) ;;
    block-magnitude|block-global) method=$name; power=-; args=() ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
  if [ "$method" = lpvit ]; then
    [ -f "$work/g_$block.safetensors" ] || cli prune --method lpvit --weights $model --flops 0.5 --block "$block" \
      --calib $data/train-images-idx3-ubyte.gz --calib-images 2000 --save-gradients "$work/g_$block.safetensors" -o "$work/p.safetensors" >/dev/null
    args+=(--gradients "$work/g_$block.safetensors")
  fi
  cli prune --method $method --weights $model --flops 0.5 --block "$block" "${args[@]}" -o "$work/$block-$name.safetensors" --report "$work/r.json" >/dev/null
  before=$(top1 "$work/$block-$name.safetensors")
  start=$(date +%s)
  cli finetune --weights "$work/$block-$name.safetensors" --teacher $model --idx $data/train-images-idx3-ubyte.gz $data/train-labels-idx1-ubyte.gz \
    --limit "$limit" --epochs "$epochs" --lr 1e-3 --flip --threads "$threads" -o "$work/$block-$name.ft.safetensors" >/dev/null
  echo "| $block | $method | $power | $before% | $(top1 "$work/$block-$name.ft.safetensors")% | $(field flops_ratio) | $(field power_ratio) |  <!-- $(( $(date +%s) - start )) s -->"
done
