#!/usr/bin/env bash
# Runs every VitSparse test and ends with the line "N passed, N failed".
#
#  1. builds the solution (Release, warnings are errors; with samples/Classify, run by SampleTests) and installs
#     the `vitsparse` command (tools/install-cli.sh → artifacts/vitsparse/vitsparse, run by InstalledCommandTests);
#  2. runs the whole suite on this machine's widest SIMD width;
#  3. runs the kernel and parity tests again with AVX-512 off, then with AVX2 off too, so the
#     Vector256 and Vector128 paths (Vector128 is what ARM AdvSimd runs) are the ones the runtime picks;
#  4. checked mode: the kernel, guard-zone, model-loading, hostile-input and parity tests once more with
#     the GC verifying the whole heap at every collection (DOTNET_HeapVerify=1) and a small gen0 so
#     collections are frequent: an out-of-bounds write in an unsafe kernel fails the run near its cause.
#  5. edge deployment: publishes the NativeAOT command and packs the NuGet packages with samples/EdgeCamera
#     (before step 2, whose EdgeDeploymentTests run them); after step 4, the kernel and parity tests on
#     linux-arm64 under qemu (tools/arm64-check.sh), counted in the totals.
#
# Each run prints its name and a running count ("[all] 120 passed, 0 failed"), every failure as it happens
# with its message, and its totals; the last line sums all runs.
#
# Debian packages the tests need are listed in APT_PACKAGES and installed when missing (as root);
# as another user the script says which are missing and stops.
set -uo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(dataset-fashion-mnist opencv-doc)   # Fashion-MNIST test set; real photos (JPEG decoding equals PIL)
APT_PACKAGES+=(qemu-user libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross)   # edge: linux-arm64 tests under qemu

missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" || { echo "0 passed, 1 failed"; exit 1; }
  else
    echo "the tests need these Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    echo "0 passed, 1 failed"; exit 1
  fi
fi

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

echo "== build (Release, warnings are errors)"
if ! dotnet build Runtime.sln -c Release -nologo -v q; then
  echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi
echo "== install the vitsparse command"
if ! tools/install-cli.sh; then
  echo "installing vitsparse failed"; echo "0 passed, 1 failed"; exit 1
fi

# Keeps the console logger's per-test lines short: a count every 25 tests, failures in full.
progress() {   # progress NAME
  awk -v name="$1" '
    /^ +Passed [^ ]/ { p++; if (p % 25 == 0) { printf "  [%s] %d passed, %d failed\n", name, p, f; fflush() } next }
    /^ +Failed [^ ]/ { f++; sub(/^ +Failed /, ""); printf "  [%s] FAILED %s\n", name, $0; fflush(); err = 1; next }
    err && /^ +Stack Trace:/ { err = 0 }
    err { print "    " $0; fflush(); next }
    /aborted|[Ee]rror [A-Z]+[0-9]+|Could not|No test/ { print "  [" name "] " $0; fflush() }
    END { printf "  [%s] done: %d passed, %d failed\n", name, p, f }'
}

status=0
suite=0
run() {   # run NAME FILTER [ENV=VALUE ...]
  local name=$1 filter=$2; shift 2
  suite=$((suite + 1))
  echo "== tests $suite/4: $name${filter:+ ($filter)}${*:+ with $*}"
  local args=(test tests -c Release --no-build --nologo --logger "trx;LogFileName=$results/$name.trx" --logger "console;verbosity=normal")
  [ -n "$filter" ] && args+=(--filter "$filter")
  env "$@" dotnet "${args[@]}" 2>&1 | progress "$name"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
}

# ---- edge deployment (issue 15), built before the runs; EdgeDeploymentTests check them ------------------------
# The NativeAOT vitsparse at x86-64-v3 and x86-64-v4 with its launcher; the NuGet packages, and samples/EdgeCamera
# published as NativeAOT against them from the local feed.
edge_step() {   # edge_step WHAT COMMAND...
  local what=$1 start=$SECONDS; shift
  echo "== edge: $what"
  "$@" || { echo "  [edge] FAILED $what"; status=1; }
  echo "  [edge] $what took $((SECONDS - start)) s"
}
edge_step "NativeAOT vitsparse (tools/publish-aot.sh)" tools/publish-aot.sh
edge_step "NuGet packages and samples/EdgeCamera from them (tools/pack.sh)" tools/pack.sh --no-build
# ---- end of edge deployment (before the runs) ------------------------------------------------------------------

run all ""
run no-avx512 "Category=Kernels|FullyQualifiedName~ParityTests" DOTNET_EnableAVX512=0
run no-avx2 "Category=Kernels|FullyQualifiedName~ParityTests" DOTNET_EnableAVX512=0 DOTNET_EnableAVX2=0
run checked "Category=Kernels|Category=Checked|FullyQualifiedName~Hostile|FullyQualifiedName~ModelLoadingTests|FullyQualifiedName~ParityTests" \
  DOTNET_HeapVerify=1 DOTNET_GCgen0size=0x200000

# ---- edge deployment (issue 15): the kernel and parity tests on linux-arm64 under qemu (Raspberry Pi 4 and
# Jetson Nano cores); tools/arm64-check.sh writes arm64-cortex-a72.trx and arm64-cortex-a57.trx, summed below.
edge_step "linux-arm64 kernel and parity tests under qemu-aarch64 (tools/arm64-check.sh)" tools/arm64-check.sh "$results"
# ---- end of edge deployment (after the runs) -------------------------------------------------------------------

passed=0; failed=0
for f in "$results"/*.trx; do
  [ -f "$f" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$f")
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); passed=$((passed + ${p:-0}))
  x=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters"); failed=$((failed + ${x:-0}))
done
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
exit $status
