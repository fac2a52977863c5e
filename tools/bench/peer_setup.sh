#!/usr/bin/env bash
# The peer: a current PyTorch (PyPI torch 2.11, the CUDA wheel run on the CPU) with torchvision,
# timm, transformers, safetensors, onnx and onnxruntime, in a virtual environment of its own. The
# speed benchmarks (tools/bench/peer_compare.py) measure this toolkit against it, and the weight
# and ONNX tests use its packages as oracles (models they build and save themselves; nothing is
# downloaded from a model hub).
#
#   tools/bench/peer_setup.sh            (tools/setup.sh runs it; idempotent)
#   PEER_VENV=/somewhere tools/bench/peer_setup.sh
#
# PyPI has no CPU-only torch 2.11 wheel. The CUDA wheel runs on the CPU once the CUDA toolkit's
# libraries (/usr/local/cuda/lib64) and three libraries the toolkit lacks are on the library
# path: libcufile.so.0, libcusparseLt.so.0 and libnvshmem_host.so.3 are built here as stubs that
# define the symbols libtorch_cuda.so imports from them (never called without a GPU), and
# libcuda.so.1 is the toolkit's own stub. The nvidia-* wheels (several GB) are not installed.
# Python programs run through $PEER_VENV/bin/peer-python, which sets LD_LIBRARY_PATH (Bazel's
# strict action environment drops it). Nothing outside the venv is changed.
set -euo pipefail

VENV=${PEER_VENV:-/opt/convnextv2-peer}
CUDA_LIB=${CUDA_LIB:-/usr/local/cuda/lib64}
PY=${PEER_BASE_PYTHON:-/usr/bin/python3}
# Pinned: the versions the figures and the oracle tests were made with.
TORCH=(torch==2.11.0 torchvision==0.26.0)
NO_DEPS=(timm==1.0.31 transformers==5.25.0)
WITH_DEPS=(onnx==1.23.2 onnxruntime==1.32.0 safetensors huggingface_hub tokenizers numpy pillow
  sympy networkx jinja2 filelock fsspec typing_extensions pyyaml regex tqdm packaging typer)
STAMP="$VENV/.ready"
WANT="${TORCH[*]} ${NO_DEPS[*]} ${WITH_DEPS[*]}"

die() { echo "peer_setup: $*" >&2; exit 1; }

if [[ -e $STAMP && "$(cat "$STAMP")" == "$WANT" ]] && "$VENV/bin/peer-python" -c 'import torch' 2>/dev/null; then
  echo "peer_setup: $VENV is ready (torch $("$VENV/bin/peer-python" -c 'import torch; print(torch.__version__)'))"
  exit 0
fi
[[ -d $CUDA_LIB ]] || die "no CUDA toolkit libraries at $CUDA_LIB (set CUDA_LIB): the torch wheel needs cuBLAS, cuDNN and cudart from it"
[[ -e $CUDA_LIB/stubs/libcuda.so ]] || die "no $CUDA_LIB/stubs/libcuda.so (the toolkit's driver stub)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$PY is older than Python 3.11 (transformers 5 needs 3.11)"
"$PY" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || die "no Python.h for $PY: torch.compile's C++ backend needs it (apt-get install python3-dev)"
command -v gcc >/dev/null || die "no gcc: the stub libraries and torch.compile need it"

rm -f "$STAMP"
[[ -x $VENV/bin/python ]] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
echo "peer_setup: installing ${TORCH[*]} ${NO_DEPS[*]} (without their nvidia-*/triton dependencies) into $VENV"
"${PIP[@]}" --no-deps "${TORCH[@]}" "${NO_DEPS[@]}"
echo "peer_setup: installing ${WITH_DEPS[*]}"
"${PIP[@]}" "${WITH_DEPS[@]}"

# The stubs: one empty function per symbol that torch's libraries import from each library.
TORCH_LIB=$("$VENV/bin/python" -c 'import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec("torch").origin), "lib"))')
STUBS="$VENV/stubs"
mkdir -p "$STUBS"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
imports() {  # symbols (without version) that torch's libraries import, matching a prefix
  for lib in "$TORCH_LIB"/*.so; do
    [[ -e $lib ]] && nm -D --undefined-only "$lib" | awk '{print $NF}'
  done | sed 's/@.*//' | grep -E "^$1" | sort -u || true
}
build_stub() {  # name prefix [version-node]
  local name=$1 prefix=$2 node=${3:-} c="$work/$1.c" syms
  syms=$(imports "$prefix")
  { echo "/* stub for $name: torch imports these; nothing calls them without a GPU */"
    for s in $syms; do echo "void $s(void) {}"; done
    echo "int convnextv2_peer_stub_${prefix}(void) { return 0; }"
  } >"$c"
  local flags=(-shared -fPIC -O0 -Wl,-soname,"$name" -o "$STUBS/$name")
  if [[ -n $node ]]; then
    { echo "$node {"; echo "  global:"; for s in $syms; do echo "    $s;"; done; echo "    convnextv2_peer_stub_${prefix};"; echo "  local: *;"; echo "};"; } >"$work/$1.map"
    flags+=(-Wl,--version-script="$work/$1.map")
  fi
  gcc "${flags[@]}" "$c"
}
build_stub libcufile.so.0 cuFile
build_stub libcusparseLt.so.0 cusparseLt
build_stub libnvshmem_host.so.3 nvshmem NVSHMEM
ln -sf "$CUDA_LIB/stubs/libcuda.so" "$STUBS/libcuda.so.1"

cat >"$VENV/bin/peer-python" <<EOF
#!/bin/sh
# Python of the peer venv with the libraries torch 2.11 needs on the CPU (tools/bench/peer_setup.sh).
# CPU only: no CUDA device is looked for (the driver is a stub).
export CUDA_VISIBLE_DEVICES=""
export LD_LIBRARY_PATH="$CUDA_LIB:$STUBS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$VENV/bin/python" "\$@"
EOF
chmod +x "$VENV/bin/peer-python"

"$VENV/bin/peer-python" - <<'EOF' || die "the venv was built but a package does not import (see above)"
import torch, torchvision, timm, transformers, safetensors, onnx, onnxruntime
assert not torch.cuda.is_available()
x = torch.randn(2, 3)
assert torch.allclose(torch.nn.functional.linear(x, torch.eye(3)), x)
print("peer_setup: torch", torch.__version__, "torchvision", torchvision.__version__, "timm", timm.__version__,
      "transformers", transformers.__version__, "onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__)
EOF
echo "$WANT" >"$STAMP"
echo "peer_setup: ready: $VENV/bin/peer-python"
