#!/bin/sh
# Runs the NativeAOT `vitsparse` built for this CPU (tools/publish-aot.sh): x86-64-v4 where the CPU has the
# AVX-512 subsets .NET uses, else x86-64-v3 (AVX2, FMA). Copy the launcher with the x86-64-v* folders beside it.
dir=$(dirname "$(readlink -f "$0")")
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { for f in "$@"; do case "$flags" in *" $f "*) ;; *) return 1 ;; esac; done; }
if has avx512f avx512bw avx512cd avx512dq avx512vl && [ -x "$dir/x86-64-v4/vitsparse" ]; then level=x86-64-v4
elif has avx avx2 fma bmi1 bmi2 f16c movbe abm; then level=x86-64-v3
else
  echo "error: this CPU lacks AVX2/FMA (x86-64-v3), which the NativeAOT vitsparse needs; use the JIT build (tools/install-cli.sh)" >&2
  exit 2
fi
exec "$dir/$level/vitsparse" "$@"
