#!/usr/bin/env bash
# Installs the `vitsparse` command as artifacts/vitsparse/vitsparse (git-ignored): a framework-dependent
# apphost with ReadyToRun code for this machine's architecture, SkiaSharp's native library beside it.
# It starts in well under a second (`vitsparse --help`: about 0.06 s; `dotnet run`: 3.5-7 s, see README).
# Hot kernels are still compiled by the JIT for this CPU's widest SIMD (ReadyToRun code that needs an ISA
# beyond the baseline is rejected at load and rejitted), so the installed command runs as fast as `dotnet run`.
# Needs only the .NET SDK; ./test.sh and ./bench.sh run it (it does nothing when the sources are older than
# the installed command; --force publishes anyway). Use the command as
#   export PATH="$PWD/artifacts/vitsparse:$PATH"
set -euo pipefail
cd "$(dirname "$0")/.."
case "$(uname -m)" in
  x86_64) rid=linux-x64 ;;
  aarch64 | arm64) rid=linux-arm64 ;;
  *) echo "install-cli: no SkiaSharp native library for $(uname -m)" >&2; exit 1 ;;
esac
bin=artifacts/vitsparse/vitsparse
newer=$( [ -x "$bin" ] && find src Directory.Build.props Directory.Build.targets -newer "$bin" \( -name '*.cs' -o -name '*.proto' -o -name '*.csproj' -o -name '*.props' -o -name '*.targets' \) -not -path '*/obj/*' -not -path "*/bin/*" -print -quit || true)
if [ -x "$bin" ] && [ -z "$newer" ] && [ "${1:-}" != --force ]; then echo "vitsparse is up to date: $PWD/$bin"; exit 0; fi
dotnet publish src/Cli -c Release -r "$rid" --self-contained false -p:PublishReadyToRun=true -o artifacts/vitsparse -nologo -v q
touch "$bin"   # publish keeps the apphost's time when nothing changed; the check above compares with it
echo "installed $PWD/$bin"
