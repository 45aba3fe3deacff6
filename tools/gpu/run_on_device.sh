#!/usr/bin/env bash
# GPU measurement for a session that is lent an NVIDIA H100/H200 through the device tool (not run in CI; no GPU here).
# That machine has no .NET: this script runs a self-contained build carried there, made here first with
#   tools/gpu/run_on_device.sh --publish        # → artifacts/gpu/vitsparse-bench.tar.xz (git-ignored, < 64 MiB)
# then, through the device tool:  run(command="tools/gpu/run_on_device.sh", carry=["artifacts/gpu"], timeout_s=600)
# It measures, each at batch 1, 8 and 64 (BATCHES to change):
#   - VitSparse on --device gpu: deit_s, deit_b, deit_s_snp (dense and SNP-pruned in one run: the SNP speedup),
#     latency, images/s, launches per inference (--breakdown), max |Δlogit| of the GPU against the CPU backend;
#   - PyTorch eager and torch.compile on the same seeded weights (tools/gpu/torch_gpu_bench.py), TF32 off;
#   - SGEMM: VitSparse's ILGPU GEMM (bench gemm) and cuBLAS on DeiT-S/B fc1 and fc2 shapes at batch 64.
# Everything lands in $OUT (the device tool's return folder): at most 8 files.
set -euo pipefail
cd "$(dirname "$0")/../.."
pub=artifacts/gpu
if [ "${1:-}" = --publish ]; then
  rm -rf "$pub/bench" && mkdir -p "$pub"
  # Self-contained (no .NET there), not trimmed (ILGPU compiles kernels from IL by reflection), JIT (not AOT).
  dotnet publish bench -c Release -r linux-x64 --self-contained true -p:PublishReadyToRun=false \
    -p:SatelliteResourceLanguages=en -o "$pub/bench" -nologo -v q
  # The ONNX Runtime peer is not run there (PyTorch is the peer on the GPU): its native library stays here.
  rm -f "$pub"/bench/libonnxruntime*.so*
  tar -C "$pub" -cJf "$pub/vitsparse-bench.tar.xz" bench
  rm -rf "$pub/bench"
  size=$(stat -c %s "$pub/vitsparse-bench.tar.xz")
  echo "$pub/vitsparse-bench.tar.xz: $((size / 1024 / 1024)) MiB (the device tool carries 64 MiB with the working tree)"
  [ "$size" -lt $((56 * 1024 * 1024)) ] || { echo "too large to carry" >&2; exit 1; }
  exit 0
fi

OUT=${OUT:-/tmp/vitsparse-gpu-out}; mkdir -p "$OUT"
BATCHES=${BATCHES:-1 8 64}
log="$OUT/log.txt"
exec > >(tee -a "$log") 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
work=/tmp/vitsparse-gpu; rm -rf "$work"; mkdir -p "$work"
tar -C "$work" -xJf "$pub/vitsparse-bench.tar.xz"
bench="$work/bench/VitSparse.Bench"
[ -x "$bench" ] || bench="$work/bench/bench"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_gcServer=0

echo "== VitSparse on the GPU"
for b in $BATCHES; do
  it=30; [ "$b" = 64 ] && it=15
  for m in deit_s deit_b deit_s_snp; do
    timeout 240 "$bench" --model "$m" --batch "$b" --device gpu --breakdown --warmup 5 --iterations "$it" --threads 16 \
      --json "$work/vit_${m}_b${b}.json" || echo "bench $m batch $b failed: $?"
  done
done
echo "== SGEMM, VitSparse ILGPU (fc1, fc2 of DeiT-S and DeiT-B at batch 64: M = 64·197)"
timeout 120 "$bench" gemm --device gpu --shapes 12608x1536x384,12608x384x1536,12608x3072x768,12608x768x3072 || echo "gemm failed: $?"
timeout 120 "$bench" gemm --device gpu --fp16-weights --shapes 12608x1536x384,12608x384x1536 || echo "gemm fp16 failed: $?"

echo "== PyTorch eager and torch.compile"
python3 - "$work" <<'PY'
import json, os, sys
sys.path.insert(0, "tools/reference")
import deit
for name, e, d, h in (("deit_s", 384, 12, 6), ("deit_b", 768, 12, 12)):
    with open(os.path.join(sys.argv[1], name + ".json"), "w") as f:
        json.dump(deit.uniform_config(name, e, d, h), f)
PY
timeout 420 python3 tools/gpu/torch_gpu_bench.py "$OUT/torch.json" "$work/deit_s.json" "$work/deit_b.json" --batches "${BATCHES// /,}" || echo "torch failed: $?"

python3 - "$work" "$OUT/vitsparse.json" <<'PY'
import glob, json, os, sys
rows = {}
for f in sorted(glob.glob(os.path.join(sys.argv[1], "vit_*.json"))):
    with open(f) as fh:
        rows[os.path.basename(f)] = json.load(fh)
with open(sys.argv[2], "w") as fh:
    json.dump(rows, fh, indent=1)
PY
echo "done: $OUT"
