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
data=/usr/share/datasets/fashion-mnist
model=${1:-tests/fixtures/swin_fmnist.safetensors}
shift || true
grans=("$@"); [ ${#grans[@]} -gt 0 ] || grans=(unstructured block:8x8 block:16x16)
if [ -z "${VITSPARSE:-}" ]; then tools/install-cli.sh >/dev/null; VITSPARSE=artifacts/vitsparse/vitsparse; fi
cli() { "$VITSPARSE" "$@"; }
if [ -n "${KEEP:-}" ]; then work=$KEEP; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
limit=${LIMIT:-10000}   # LIMIT=N: only the first N test images (a quick check of the pipeline)
top1() { cli eval --weights "$1" --idx $data/t10k-images-idx3-ubyte.gz $data/t10k-labels-idx1-ubyte.gz --limit $limit --threads 1 --json "$work/eval.json" >/dev/null
         json "$work/eval.json" "f\"{d['top1']*100:.2f}\""; }

# --params-removed is a fraction of ALL parameters (README "DIMAP pruning (Swin)"); a fraction f of the prunable
# weights is f·P/N of them. N and P are counted in the model file (every tensor; the blocks' qkv/proj/fc1/fc2
# weights), and P is checked against what the pruner itself counts as prunable (a 0 % plan's report).
read -r N P < <(/usr/bin/python3 -c "
import re, sys; sys.path.insert(0, 'tools/reference'); import st_io
t, _ = st_io.load(sys.argv[1])
prunable = re.compile(r'layers\.\d+\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.fc[12])\.weight')
print(sum(v.size for v in t.values()), sum(v.size for k, v in t.items() if prunable.fullmatch(k)))" "$model")
cli prune --method dimap --params-removed 0 --weights "$model" --report "$work/counts.json" -o "$work/counts.safetensors" >/dev/null
[ "$(json "$work/counts.json" "d['prunable_params']")" = "$P" ] || { echo "the pruner counts $(json "$work/counts.json" "d['prunable_params']") prunable weights, the file $P" >&2; exit 1; }
echo "swin_fmnist: $N parameters, $P prunable (QKV-M + PRJ-M + MLP-M)"
echo
files=()
declare -A label
for g in "${grans[@]}"; do
  for m in dimap single-module magnitude; do
    for f in 0.3 0.5; do
      R=$(/usr/bin/python3 -c "print(f'{$f*$P/$N:.12f}')")
      out="$work/${m}_${g/:/_}_$f.safetensors"
      args=(--method dimap); [ $m = single-module ] && args+=(--single-module); [ $m = magnitude ] && args=(--method magnitude)
      cli prune "${args[@]}" --granularity "$g" --params-removed "$R" --weights "$model" --report "$out.report.json" -o "$out" >/dev/null
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
