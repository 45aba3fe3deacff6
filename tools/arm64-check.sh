#!/usr/bin/env bash
# ARM64, proven under emulation: publishes kernel and parity tests (tools/arm64, a runner around the
# VitSparse.Tests assembly) self-contained for linux-arm64 and runs them under qemu-aarch64 as the Raspberry Pi
# 4's core (cortex-a72) and the Jetson Nano's (cortex-a57). Each run prints the ISA the kernels chose (it must
# be Vector128 on AdvSimd; the runner fails otherwise) and its counts; with a folder argument each run also
# writes FOLDER/arm64-CPU.trx, which test.sh adds to its totals. qemu is about 20× slower than the native CPU:
# the numbers it prints are not timings of the board.
# Needs the Debian packages qemu-user libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross.
# Usage: tools/arm64-check.sh [TRX_FOLDER]
set -uo pipefail
cd "$(dirname "$0")/.."
trx_dir=${1:-}
out=artifacts/arm64-tests
command -v qemu-aarch64 >/dev/null || { echo "arm64-check: qemu-aarch64 missing (apt-get install qemu-user libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross)" >&2; exit 1; }
# InvariantGlobalization: no arm64 ICU under qemu here (and none needed: the library formats invariantly).
dotnet publish tools/arm64 -c Release -r linux-arm64 --self-contained -p:InvariantGlobalization=true -o "$out" -nologo -v q || exit 1
# What runs, sized for qemu (~20× slower than the host, more when the host is busy; a few minutes in all):
#  - cortex-a72: the kernels, KernelTests (dense packed linear and its epilogues, ragged attention, LayerNorm,
#    GELU, softmax) and SparseKernelTests (BSR, CSR), each against its double-precision reference; and the parity
#    fixtures: ParityTests (ragged_tiny, ragged_distilled_bf16, timm_uniform_f16 against PyTorch at 1 and 2
#    threads; full-size DeiT-S against deit_small_seeded.logits.npy) and deit_fmnist's 16 sample images;
#  - cortex-a57: the same parity fixtures but the full-size DeiT-S (a single forward, about 2 minutes here).
# Kernel theories run their first cases only (3 dense, 1 sparse) at Vector128 (wider widths are software on
# ARM), and the tests of bit-identity across thread counts are left out: they check the work split, not the ISA.
# Every case left out here runs in test.sh's x64 runs (its no-avx2 run executes the same Vector128 code).
parity=(--class ParityTests --test FashionMnistTests.Matches_pytorch_logits_on_sample_images)
kernels=(--class KernelTests --class SparseKernelTests --rows KernelTests=3 --rows SparseKernelTests=1)
left_out=(--exclude Results_are_bit_identical_for_every_thread_count --exclude Concurrent_sessions_on_one_model_agree
  --exclude Linear_is_bit_identical_for_any_thread_count --exclude Single_team_is_safe_to_share_between_threads
  --exclude Sparse_kernels_are_bit_identical_for_any_thread_count)
status=0
for cpu in cortex-a72 cortex-a57; do
  args=(--name "arm64-$cpu" --require-isa "Vector128 (AdvSimd)" "${parity[@]}" "${left_out[@]}")
  if [ "$cpu" = cortex-a72 ]; then args+=("${kernels[@]}"); else args+=(--exclude Full_size_deit_small_with_seeded_weights_matches_pytorch); fi
  [ -n "$trx_dir" ] && args+=(--trx "$trx_dir/arm64-$cpu.trx")
  start=$SECONDS
  # W^X off: .NET's double-mapped code pages crash qemu-user now and then (signal 11, seen here), and cost time.
  DOTNET_EnableWriteXorExecute=0 qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu "$cpu" "$out/vitsparse-arm64-tests" "${args[@]}" || status=1
  echo "  [arm64-$cpu] qemu run took $((SECONDS - start)) s"
done
exit $status
