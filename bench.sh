#!/usr/bin/env bash
# The main job: VitSparse's end-to-end benchmark with its peers measured in the same run.
#   ./bench.sh                         dense DeiT-S vs ONNX Runtime and PyTorch
#   ./bench.sh --model deit_t,deit_s_snp --breakdown
# Any argument is passed to `bench` (see ./bench.sh --help). When run as root it first installs what the
# peers need: Debian python3-torch + libopenblas0-pthread (PyTorch peer, ONNX export) and ONNX Runtime's
# native library from the npm package onnxruntime-node. A peer that cannot be installed is reported as
# skipped; it never fails the benchmark. npm installs into the git-ignored tools/peers/node_modules and
# writes no package-lock.json, so the tree stays clean. It also installs the `vitsparse` command
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
if [ ! -e tools/peers/node_modules/onnxruntime-node ] && command -v npm >/dev/null; then
  echo "installing onnxruntime-node (native library only) for the ONNX Runtime peer…" >&2
  (cd tools/peers && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --no-package-lock --silent) >/dev/null 2>&1 \
    || echo "could not install onnxruntime-node; the ONNX Runtime peer will be skipped" >&2
fi

tools/install-cli.sh >&2 || echo "could not install the vitsparse command (see above); the benchmark still runs" >&2

case " $* " in *" --peers "*) peers=() ;; *) peers=(--peers ort,torch) ;; esac
exec dotnet run -c Release --project bench -- "${peers[@]}" "$@"
