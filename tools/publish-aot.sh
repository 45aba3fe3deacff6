#!/usr/bin/env bash
# Publishes the `vitsparse` command as NativeAOT for linux-x64 at the two instruction-set levels we ship, and a
# launcher that runs the one this CPU supports:
#   artifacts/vitsparse-aot/x86-64-v4/vitsparse   AVX-512 (F, BW, CD, DQ, VL): Zen 4/5, Skylake-SP, Ice Lake and later
#   artifacts/vitsparse-aot/x86-64-v3/vitsparse   AVX2 + FMA: Haswell, Zen 1-3 and later
#   artifacts/vitsparse-aot/vitsparse             launcher (tools/vitsparse-aot-launcher.sh)
# Why two: a NativeAOT binary is compiled for one instruction-set level, fixed at publish time (there is no JIT
# to recompile for the CPU it meets). The default level, baseline x64, has no FMA and no AVX: the kernels then
# run 128-bit SSE without fused multiply-add, several times slower than the JIT build. x86-64-v3 runs the
# Vector256 kernels, x86-64-v4 the Vector512 ones, each as fast as the JIT build on such a CPU (README, "NativeAOT").
# Older x64 CPUs (no AVX2) use the JIT build (tools/install-cli.sh). Warnings are errors, the AOT ones included.
# Usage: tools/publish-aot.sh [LEVEL ...]   (default: both levels)
set -euo pipefail
cd "$(dirname "$0")/.."
out=artifacts/vitsparse-aot
levels=("$@"); [ ${#levels[@]} -gt 0 ] || levels=(x86-64-v3 x86-64-v4)
for level in "${levels[@]}"; do
  case "$level" in x86-64-v3 | x86-64-v4) ;; *) echo "publish-aot: $level: not a level we ship (x86-64-v3, x86-64-v4)" >&2; exit 2 ;; esac
  # Each level compiles in its own folder: ILC's incremental check does not see a changed instruction set.
  dotnet publish src/Cli -c Release -r linux-x64 -p:PublishAot=true -p:IlcInstructionSet="$level" \
    -p:NativeIntermediateOutputPath="obj/Release/net10.0/linux-x64/native-$level/" \
    -o "$out/$level" -nologo -v q
  # The binary and libSkiaSharp.so are all it needs: drop the native symbols (vitsparse.dbg, twice the binary)
  # and the libraries' .pdb/.xml files that publish copies beside it.
  rm -f "$out/$level"/*.dbg "$out/$level"/*.pdb "$out/$level"/*.xml
done
install -m 755 tools/vitsparse-aot-launcher.sh "$out/vitsparse"
echo "published $PWD/$out (${levels[*]}); run $out/vitsparse"
