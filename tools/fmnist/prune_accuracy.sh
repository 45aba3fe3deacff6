#!/usr/bin/env bash
# Accuracy of the Fashion-MNIST reference model after Q/K-only pruning without fine-tuning, for every
# criterion at 30/50/70 % of Q/K pairs removed per head; prints the markdown table kept in the README.
# SNP calibrates on the first 64 training images. Needs Debian dataset-fashion-mnist; run from the repo root.
set -euo pipefail
data=/usr/share/datasets/fashion-mnist
model=tests/fixtures/deit_fmnist.safetensors
tools/install-cli.sh >/dev/null
cli() { artifacts/vitsparse/vitsparse "$@"; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
top1() { cli eval --weights "$1" --idx $data/t10k-images-idx3-ubyte.gz $data/t10k-labels-idx1-ubyte.gz --json "$work/e.json" >/dev/null
         /usr/bin/python3 -c "import json; print(f\"{json.load(open('$work/e.json'))['top1']*100:.2f}\")"; }
echo "dense: $(top1 $model)% top-1"
echo
echo "| criterion | 30 % Q/K removed | 50 % | 70 % |"
echo "| --- | ---: | ---: | ---: |"
for crit in snp l2 gm random reverse; do
  row="| $crit |"
  for r in 0.3 0.5 0.7; do
    echo "{\"default\": {\"qk\": $r}}" > "$work/r.json"
    cli prune --weights $model --ratios "$work/r.json" --criterion $crit --calib $data/train-images-idx3-ubyte.gz \
      --calib-images 64 -o "$work/p.safetensors" >/dev/null
    row="$row $(top1 "$work/p.safetensors")% |"
  done
  echo "$row"
done
