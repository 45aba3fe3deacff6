#!/usr/bin/env bash
# Coverage-guided fuzzing of one fuzz target (fuzz/Targets.cs) with AFL++ and SharpFuzz 2.3.0.
# Optional, for long local runs; CI runs the seeded fuzzer (tests/FuzzSmokeTests) instead.
#   tools/fuzz/afl.sh TARGET [SECONDS]      e.g. tools/fuzz/afl.sh npy 600
# Crashes land in /tmp/vitsparse-afl/TARGET/findings/default/crashes; judge one with
#   dotnet fuzz/bin/Release/net10.0/fuzz.dll --replay TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:?usage: tools/fuzz/afl.sh TARGET [SECONDS]}
seconds=${2:-600}
export PATH="$PATH:$HOME/.dotnet/tools"

command -v afl-fuzz >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++; }
command -v sharpfuzz >/dev/null || dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0

work=/tmp/vitsparse-afl/$target
rm -rf "$work/bin" "$work/in"
mkdir -p "$work/in"
dotnet build fuzz -c Release -nologo -v q
dotnet publish tools/fuzz/afl -c Release -o "$work/bin" -nologo -v q
# Instrument our code only: the runtime (formats, data, images, models) and pruning (ratio files).
for dll in VitSparse.Runtime.dll VitSparse.Pruning.dll VitSparse.Kernels.dll; do sharpfuzz "$work/bin/$dll"; done
dotnet fuzz/bin/Release/net10.0/fuzz.dll --seeds "$target" | while read -r seed; do cp "$seed" "$work/in/"; done

# .NET is no plain binary for afl-fuzz's checks; the 5 s timeout covers the runtime's start-up.
AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
  afl-fuzz -V "$seconds" -i "$work/in" -o "$work/findings" -t 5000 -m none -- dotnet "$work/bin/fuzz-afl.dll" "$target"
echo "crashes: $(ls "$work/findings/default/crashes" 2>/dev/null | grep -vc README || true)"
