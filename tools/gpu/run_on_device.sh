#!/usr/bin/env bash
# GPU measurement for a session that is lent an NVIDIA H100/H200 through the device tool (not run in CI).
# That machine has no .NET: this script runs a self-contained build carried there, made here first with
#   tools/gpu/run_on_device.sh --publish        # → artifacts/gpu/ (git-ignored, < 64 MiB)
# then, through the device tool:  run(command="tools/gpu/run_on_device.sh", carry=["artifacts/gpu"], timeout_s=600)
# Device time is scarce (about 15 minutes a session, starts included), so the steps run in order of importance
# under one budget (BUDGET_S, default 420 s) and a step that would overrun it is cut short or skipped:
#   1. VitSparse on --device gpu, batch 1/8/64: deit_s_snp and deit_b_snp, each beside its dense model in the same
#      run (latency, images/s, the SNP speedup, launches per inference, max |Δlogit| against the CPU backend);
#   2. PyTorch eager on the same shapes (tools/gpu/torch_gpu_bench.py; TF32 off) and cuBLAS SGEMM;
#   3. VitSparse's ILGPU SGEMM (bench gemm) on DeiT-S fc1/fc2 at batch 1 and DeiT-S/B fc1/fc2 at batch 64;
#   4. block sparsity on the GPU (deit_s with half its 32×32 or 16×16 blocks zeroed) and fp16 weights;
#   5. NVML joules per inference, dense against SNP (bench --energy --meter nvml);
#   6. torch.compile, with whatever budget is left.
# SKIP="torch energy fp16 compile" leaves those steps out (a re-run after a kernel change); PROFILE=1 adds one
# Nsight Compute pass over one ILGPU GEMM launch on DeiT-S fc1 at batch 64 (registers, occupancy, throughput).
# Everything lands in $OUT (the device tool's return folder): log.txt, vitsparse_b*.json, vitsparse_bsr*.json,
# torch_eager.json, torch_compile.json.
# Smoke test on a machine without a GPU (the flow only: ILGPU's CPU accelerator is too slow to finish a model):
#   DEVICE=ilgpu-cpu TORCH_DEVICE=cpu PY=/usr/bin/python3 SMOKE=1 BUDGET_S=200 tools/gpu/run_on_device.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
pub=artifacts/gpu
if [ "${1:-}" = --publish ]; then
  set -e
  rm -rf "$pub" && mkdir -p "$pub/configs"
  # The PyTorch peer builds the same shapes from the configs bench writes for its CPU torch peer.
  for c in deit_small_patch16_224 deit_base_patch16_224 deit_s_snp deit_b_snp; do
    f=$(ls -t artifacts/peers/"$c"-*.json 2>/dev/null | head -1)
    [ -n "$f" ] || { echo "no artifacts/peers/$c-*.json: run bench --model deit_s_snp,deit_b_snp --peers torch --iterations 1 once" >&2; exit 1; }
    cp "$f" "$pub/configs/$c.json"
  done
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
DEVICE=${DEVICE:-gpu}; TORCH_DEVICE=${TORCH_DEVICE:-cuda}; py=${PY:-python3}; BUDGET_S=${BUDGET_S:-420}
BATCHES=${BATCHES:-1 8 64}
start=$SECONDS
exec > >(tee -a "$OUT/log.txt") 2>&1

want() { [[ " ${SKIP:-} " != *" $1 "* ]]; }
# step NAME MAX_SECONDS COMMAND...: runs COMMAND within the budget left (skipped under 15 s), never stops the script.
step() {
  local name=$1 t=$2; shift 2
  local left=$((BUDGET_S - (SECONDS - start)))
  if [ "$left" -lt 15 ]; then echo "== $name: skipped (budget spent)"; return 0; fi
  [ "$t" -gt "$left" ] && t=$left
  echo "== $name (at $((SECONDS - start)) s, at most $t s)"
  timeout "$t" "$@"; local rc=$?
  [ $rc -eq 0 ] || echo "== $name: exit $rc"
  return 0
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || echo "no nvidia-smi"
work=/tmp/vitsparse-gpu; rm -rf "$work"; mkdir -p "$work"
tar -C "$work" -xJf "$pub/vitsparse-bench.tar.xz"
bench="$work/bench/bench"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_gcServer=0 DOTNET_TieredPGO=0
threads=$(nproc)
# ILGPU imports the CUDA driver as "cuda", which .NET resolves to libcuda.so; a driver mount may hold only libcuda.so.1.
cudalib=$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 .*x86-64/ {print $NF; exit}')
if [ -n "$cudalib" ]; then
  mkdir -p "$work/lib" && ln -sf "$cudalib" "$work/lib/libcuda.so"
  export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
echo "libcuda: ${cudalib:-not found by ldconfig}"
# A GPU that ILGPU cannot open makes every later VitSparse step pointless: stop before spending device time on them.
if ! timeout 60 "$bench" gemm --device "$DEVICE" --shapes 256x256x256 --iterations 2; then
  echo "VitSparse cannot use --device $DEVICE here; stopping."; exit 1
fi
models=${MODELS:-deit_s_snp,deit_b_snp}; bsr_model=deit_s; sb=64; few=12; compile_batches=1,64
[ -n "${SMOKE:-}" ] && { BATCHES=1; models=${MODELS:-deit_t_snp}; bsr_model=deit_t; sb=1; few=1; compile_batches=1; }

for b in $BATCHES; do
  it=30; [ "$b" = 64 ] && it=12; [ -n "${SMOKE:-}" ] && it=1
  step "VitSparse $models batch $b" 150 "$bench" --model "$models" --batch "$b" --device "$DEVICE" --breakdown \
    --warmup 3 --iterations "$it" --threads "$threads" --json "$OUT/vitsparse_b$b.json"
done

cfg=$pub/configs
torch_args=("$cfg/deit_small_patch16_224.json" "$cfg/deit_s_snp.json" "$cfg/deit_base_patch16_224.json" "$cfg/deit_b_snp.json")
[ -n "${SMOKE:-}" ] && torch_args=("$cfg/deit_s_snp.json")
want torch && step "PyTorch eager + cuBLAS" 90 "$py" tools/gpu/torch_gpu_bench.py "$OUT/torch_eager.json" "${torch_args[@]}" \
  --batches "${BATCHES// /,}" --device "$TORCH_DEVICE" --iters 30

gemm_shapes=197x384x1536,197x1536x384,12608x1536x384,12608x384x1536,12608x3072x768,12608x768x3072
[ -n "${SMOKE:-}" ] && gemm_shapes=64x64x64
step "SGEMM, VitSparse ILGPU (DeiT-S fc1, fc2 at batch 1; DeiT-S/B fc1, fc2 at batch 64: M = 64·197)" 60 "$bench" gemm --device "$DEVICE" --shapes "$gemm_shapes"
want fp16 && step "SGEMM, fp16 weights" 40 "$bench" gemm --device "$DEVICE" --fp16-weights --shapes "${gemm_shapes%%,*}"

for b in 1 $sb; do
  for blocks in 32x32 16x16; do
    step "VitSparse $bsr_model, half of its $blocks blocks zeroed, batch $b" 60 "$bench" --model "$bsr_model" \
      --sparsify "bsr$blocks:0.5" --batch "$b" --device "$DEVICE" --warmup 3 --iterations "$few" \
      --threads "$threads" --json "$OUT/vitsparse_bsr${blocks}_b$b.json"
  done
done
want fp16 && step "VitSparse fp16 weights, batch $sb" 60 "$bench" --model "$models" --batch "$sb" --device "$DEVICE" --fp16-weights \
  --warmup 3 --iterations "$few" --threads "$threads"
want energy && step "NVML energy, dense against SNP, batch $sb" 90 "$bench" --model "${models%%,*}" --batch "$sb" --device "$DEVICE" \
  --warmup 3 --iterations 5 --threads "$threads" --energy --meter nvml --energy-rounds 3 --energy-window 2

want compile && step "torch.compile" 200 "$py" tools/gpu/torch_gpu_bench.py "$OUT/torch_compile.json" "${torch_args[@]:0:2}" \
  --batches "$compile_batches" --device "$TORCH_DEVICE" --iters 30 --compile
if [ -n "${PROFILE:-}" ] && command -v ncu >/dev/null; then
  step "Nsight Compute: the ILGPU GEMM on DeiT-S fc1 at batch 64" 90 ncu --clock-control none --launch-skip 2 --launch-count 1 \
    --section LaunchStats --section Occupancy --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats \
    "$bench" gemm --device "$DEVICE" --shapes 12608x1536x384 --iterations 1
fi
echo "done in $((SECONDS - start)) s: $OUT"
