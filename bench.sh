#!/usr/bin/env bash
# The main job: VitSparse's end-to-end benchmark with its peers measured in the same run.
#   ./bench.sh                         dense DeiT-S vs ONNX Runtime and PyTorch
#   ./bench.sh --model deit_t,deit_s_snp --breakdown
# Any argument is passed to `bench` (see ./bench.sh --help). When run as root it first installs what the
# peers need: Debian python3-torch + libopenblas0-pthread (PyTorch peer, and the torch.onnx export the ONNX
# Runtime peer runs; without PyTorch that peer runs vitsparse's own export). ONNX Runtime itself is the NuGet
# package Microsoft.ML.OnnxRuntime, restored with the bench project. A peer that cannot be installed is reported
# as skipped; it never fails the benchmark. It also installs the `vitsparse` command
# (tools/install-cli.sh → artifacts/vitsparse/vitsparse), so either set-up command leaves it.
set -uo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" = 0 ]; then
  need=()
  for p in python3-torch libopenblas0-pthread; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} for the PyTorch peer…" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null 2>&1 \
      || echo "could not install ${need[*]}; the PyTorch peer will be skipped" >&2
  fi
fi

tools/install-cli.sh >&2 || echo "could not install the vitsparse command (see above); the benchmark still runs" >&2

case " $* " in *" --peers "*) peers=() ;; *) peers=(--peers ort,torch) ;; esac
exec dotnet run -c Release --project bench -- "${peers[@]}" "$@"
