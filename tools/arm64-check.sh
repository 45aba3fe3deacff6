#!/usr/bin/env bash
# ARM64, proven under emulation: publishes the kernel and parity tests (tools/arm64, a runner around the
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
status=0
for cpu in cortex-a72 cortex-a57; do
  args=(--name "arm64-$cpu" --require-isa "Vector128 (AdvSimd)")
  [ -n "$trx_dir" ] && args+=(--trx "$trx_dir/arm64-$cpu.trx")
  start=$SECONDS
  qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu "$cpu" "$out/vitsparse-arm64-tests" "${args[@]}" || status=1
  echo "  [arm64-$cpu] qemu run took $((SECONDS - start)) s"
done
exit $status
