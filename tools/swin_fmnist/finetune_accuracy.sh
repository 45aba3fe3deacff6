#!/usr/bin/env bash
# DIMAP accuracy after fine-tuning (issue 12): swin_fmnist pruned as in prune_accuracy.sh (same fractions of the
# prunable weights, same commands), then `vitsparse finetune` for EPOCHS (default 1) over the 60k training images
# with soft distillation from the dense model, flips, lr 1e-3 (the recipe of the README's 50 % unstructured rows),
# and evaluated on the 10 000 test images before and after. Prints one markdown row as each run ends.
# VARIANTS picks rows as GRANULARITY/METHOD/FRACTION, e.g. "block:8x8/dimap/0.5 unstructured/magnitude/0.3";
# each run takes 8–13 min on one thread. Run from the repository root; needs Debian dataset-fashion-mnist.
#   [VARIANTS=...] [EPOCHS=1] [TRAIN_LIMIT=60000] [LIMIT=10000] [THREADS=1] [WORK=dir] tools/swin_fmnist/finetune_accuracy.sh [MODEL]
set -euo pipefail
model=${1:-tests/fixtures/swin_fmnist.safetensors}
epochs=${EPOCHS:-1}; threads=${THREADS:-1}
variants=${VARIANTS:-}
if [ -z "$variants" ]; then
  for f in 0.5 0.3; do for g in block:8x8 block:16x16 unstructured; do for m in dimap single-module magnitude; do
    variants+="$g/$m/$f "; done; done; done
fi
work=${WORK:-$(mktemp -d)}; mkdir -p "$work"
source tools/swin_fmnist/common.sh
count_params
echo "swin_fmnist: $N parameters, $P prunable; dense $(top1 "$model")% top-1 on the test images"
echo
echo "| granularity | method | prunable removed | non-zero params | top-1 before | top-1 after $epochs epoch(s) |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for v in $variants; do
  IFS=/ read -r g m f <<< "$v"
  out="$work/${m}_${g/:/_}_$f.safetensors"
  prune_variant "$m" "$g" "$f" "$out"
  before=$(top1 "$out")
  start=$(date +%s)
  cli finetune --weights "$out" --teacher "$model" --idx $data/train-images-idx3-ubyte.gz $data/train-labels-idx1-ubyte.gz \
    --limit "${TRAIN_LIMIT:-60000}" --epochs "$epochs" --lr 1e-3 --flip --threads "$threads" -o "${out%.safetensors}.ft.safetensors" >/dev/null
  removed=$(json "$out.report.json" "f\"{(d['params_before']-d['params_after'])/$P*100:.1f} %\"")
  echo "| $g | $m | $removed | $(json "$out.report.json" "d['params_after']") | $before% | $(top1 "${out%.safetensors}.ft.safetensors")% |  <!-- $(( $(date +%s) - start )) s -->"
done
