#!/usr/bin/env bash
# Packs VitSparse.Kernels, VitSparse.Runtime and VitSparse.Pruning (version: VitSparseVersion in
# Directory.Build.props) into artifacts/packages, a local NuGet feed, then publishes samples/EdgeCamera against
# those packages (its nuget.config names the feed) as a NativeAOT linux-x64 binary: artifacts/edgecamera/edgecamera.
# So the packages are proven to restore, compile and link into an AOT app, not only to exist.
# Usage: tools/pack.sh [--no-build]   (--no-build: pack what `dotnet build -c Release` already built)
set -euo pipefail
cd "$(dirname "$0")/.."
feed=artifacts/packages
build=(); [ "${1:-}" = --no-build ] && build=(--no-build)
rm -rf "$feed"
for p in Kernels Runtime Pruning; do
  dotnet pack "src/$p" -c Release "${build[@]}" -o "$feed" -nologo -v q
done
# The sample restores into its own package cache (samples/EdgeCamera/nuget.config): drop the VitSparse packages
# there, so a repack with an unchanged version is not shadowed by the cached copy.
rm -rf artifacts/edgecamera-nuget/vitsparse.*
dotnet publish samples/EdgeCamera -c Release -r linux-x64 -o artifacts/edgecamera -nologo -v q
rm -f artifacts/edgecamera/*.dbg artifacts/edgecamera/*.pdb artifacts/edgecamera/*.xml   # symbols and docs: not needed to run
echo "packed $(ls "$feed" | tr '\n' ' ')into $PWD/$feed; published $PWD/artifacts/edgecamera/edgecamera"
