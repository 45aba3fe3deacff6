# Shared by prune_accuracy.sh and finetune_accuracy.sh (sourced, not run): the CLI, the test-set top-1, the
# parameter counts and the pruning command for one (method, granularity, fraction of the prunable weights).
# Expects $model and $work to be set by the caller.
data=/usr/share/datasets/fashion-mnist
if [ -z "${VITSPARSE:-}" ]; then tools/install-cli.sh >/dev/null; VITSPARSE=artifacts/vitsparse/vitsparse; fi
cli() { "$VITSPARSE" "$@"; }
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
limit=${LIMIT:-10000}   # LIMIT=N: only the first N test images (a quick check of the pipeline)
top1() { cli eval --weights "$1" --idx $data/t10k-images-idx3-ubyte.gz $data/t10k-labels-idx1-ubyte.gz --limit $limit --threads 1 --json "$work/eval.$$.json" >/dev/null
         json "$work/eval.$$.json" "f\"{d['top1']*100:.2f}\""; }

# --params-removed is a fraction of ALL parameters (README "DIMAP pruning (Swin)"); a fraction f of the prunable
# weights is f·P/N of them. N and P are counted in the model file (every tensor; the blocks' qkv/proj/fc1/fc2
# weights), and P is checked against what the pruner itself counts as prunable (a 0 % plan's report).
count_params() {
  read -r N P < <(/usr/bin/python3 -c "
import re, sys; sys.path.insert(0, 'tools/reference'); import st_io
t, _ = st_io.load(sys.argv[1])
prunable = re.compile(r'layers\.\d+\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.fc[12])\.weight')
print(sum(v.size for v in t.values()), sum(v.size for k, v in t.items() if prunable.fullmatch(k)))" "$model")
  cli prune --method dimap --params-removed 0 --weights "$model" --report "$work/counts.json" -o "$work/counts.safetensors" >/dev/null
  [ "$(json "$work/counts.json" "d['prunable_params']")" = "$P" ] || { echo "the pruner counts $(json "$work/counts.json" "d['prunable_params']") prunable weights, the file $P" >&2; exit 1; }
}

# prune_variant METHOD GRANULARITY FRACTION OUT: METHOD is dimap, single-module or magnitude; FRACTION of the
# prunable weights; sets R (the --params-removed given); the report goes to OUT.report.json.
prune_variant() {
  local m=$1 g=$2 f=$3 out=$4 args=(--method dimap)
  R=$(/usr/bin/python3 -c "print(f'{$f*$P/$N:.12f}')")
  [ "$m" = single-module ] && args+=(--single-module); [ "$m" = magnitude ] && args=(--method magnitude)
  cli prune "${args[@]}" --granularity "$g" --params-removed "$R" --weights "$model" --report "$out.report.json" -o "$out" >/dev/null
}
