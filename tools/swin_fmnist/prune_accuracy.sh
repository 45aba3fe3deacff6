#!/usr/bin/env bash
# DIMAP accuracy evidence (issue 12): the trained swin_fmnist pruned without fine-tuning by DIMAP, its single-module
# ablation and uniform magnitude, at 30 % and 50 % of the PRUNABLE weights (QKV-M, PRJ-M, MLP-M) removed, single
# weights and blocks; every pruned file is evaluated on the 10 000 Fashion-MNIST test images by `vitsparse eval`
# and by tools/swin_fmnist/swin_fmnist.py eval (an independent PyTorch forward that expands our CSR/BSR tensors).
# Prints the markdown table kept in the README. From the repository root:
#   tools/swin_fmnist/prune_accuracy.sh [MODEL] [GRANULARITY...]      (default: the fixture; unstructured block:8x8 block:16x16)
# VITSPARSE=path/to/vitsparse uses that command instead of installing artifacts/vitsparse (tools/install-cli.sh).
# Pruned files and reports stay in $KEEP when it is set (else a temporary folder).
set -euo pipefail
model=${1:-tests/fixtures/swin_fmnist.safetensors}
shift || true
grans=("$@"); [ ${#grans[@]} -gt 0 ] || grans=(unstructured block:8x8 block:16x16)
if [ -n "${KEEP:-}" ]; then work=$KEEP; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
source tools/swin_fmnist/common.sh
count_params
echo "swin_fmnist: $N parameters, $P prunable (QKV-M + PRJ-M + MLP-M)"
echo
files=()
declare -A label
for g in "${grans[@]}"; do
  for m in dimap single-module magnitude; do
    for f in 0.3 0.5; do
      out="$work/${m}_${g/:/_}_$f.safetensors"
      prune_variant "$m" "$g" "$f" "$out"
      files+=("$out"); label[$out]="$m|$g|$f|$R"
    done
  done
done
# One PyTorch process for every file (loading torch and the test set once), beside the vitsparse evaluations.
/usr/bin/python3 tools/swin_fmnist/swin_fmnist.py eval "$model" "${files[@]}" --limit $limit --threads 1 > "$work/torch.txt" &
torch_pid=$!
echo "| granularity | method | prunable removed | all params removed (--params-removed) | nonzero params | top-1 vitsparse |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
echo "| dense | - | 0 % | 0 | $N | $(top1 "$model")% |"
for out in "${files[@]}"; do
  IFS='|' read -r m g f R <<< "${label[$out]}"
  after=$(json "$out.report.json" "d['params_after']"); removed=$(json "$out.report.json" "d['params_before']-d['params_after']")
  echo "| $g | $m | $(/usr/bin/python3 -c "print(f'{$removed/$P*100:.1f} %')") | $R | $after | $(top1 "$out")% |"
done
wait $torch_pid
echo
echo "PyTorch (tools/swin_fmnist/swin_fmnist.py eval), same files:"
sed "s|$work/||" "$work/torch.txt"
