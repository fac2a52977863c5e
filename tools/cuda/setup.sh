#!/usr/bin/env bash
# Puts a CUDA libtorch on this machine for `bazel build --config=cuda`, and prints the
# LIBTORCH_HOME to build with. Idempotent: a second run only prints.
#
#   eval "$(tools/cuda/setup.sh | grep ^export)"     # or copy the printed line
#   LIBTORCH_HOME=... bazel build --config=cuda //...
#
# What it does: `pip download --no-deps` of PyTorch's CUDA wheel (the version the GPU machine
# has, so that what is built here runs there; its nvidia-* dependencies, several GB, are not
# fetched: the build links the CUDA 13 toolkit's own libraries under CUDA_HOME), checks that it
# was built for the toolkit's CUDA major version and with the C++11 ABI (what g++ uses here),
# and keeps torch/include and torch/lib (without the Python bindings) in
#   ${CONVNEXTV2_CUDA_CACHE:-~/.cache/convnextv2-cuda}/libtorch-<version>
# plus link_stubs/: libcuda.so.1 (the driver, absent on machines without a GPU: the toolkit's
# stub) and empty stand-ins for the libraries libtorch_cuda.so names that the toolkit lacks
# (cuFile, cuSPARSELt, NVSHMEM). They are only for the linker (-rpath-link); at run time the
# real ones come from the GPU machine's PyTorch.
set -euo pipefail

VERSION=${TORCH_VERSION:-2.11.0}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
CACHE=${CONVNEXTV2_CUDA_CACHE:-$HOME/.cache/convnextv2-cuda}
DEST=$CACHE/libtorch-$VERSION
INFO=$DEST/convnextv2_libtorch.txt

die() { echo "tools/cuda/setup.sh: $*" >&2; exit 1; }

print_home() {
  echo "libtorch $(grep '^version=' "$INFO" | cut -d= -f2) (CUDA $(grep '^cuda=' "$INFO" | cut -d= -f2)) is in $DEST"
  echo "export LIBTORCH_HOME=$DEST"
}

if [[ -f $INFO ]]; then
  print_home
  exit 0
fi

[[ -x $CUDA_HOME/bin/nvcc ]] || die "no nvcc at $CUDA_HOME/bin/nvcc: install the CUDA toolkit or set CUDA_HOME"
toolkit=$("$CUDA_HOME/bin/nvcc" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')
[[ -n $toolkit ]] || die "cannot read the CUDA version from $CUDA_HOME/bin/nvcc --version"
command -v unzip >/dev/null || die "unzip is missing (apt-get install unzip)"
PYTHON=${PYTHON:-python3}
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip (needed to fetch the torch wheel from PyPI)"

mkdir -p "$CACHE/download"
wheel=$(ls "$CACHE"/download/torch-"$VERSION"-*manylinux*x86_64.whl 2>/dev/null | head -1 || true)
if [[ -z $wheel ]]; then
  echo "setup: downloading torch==$VERSION (CUDA wheel, ~530 MB, no dependencies) from PyPI"
  # The wheel's Python tag does not matter for the C++ libraries; pin one so that any python3
  # with pip can fetch it.
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 "torch==$VERSION" -d "$CACHE/download.tmp"
  mv "$CACHE"/download.tmp/torch-"$VERSION"-*.whl "$CACHE/download/"
  rmdir "$CACHE/download.tmp" 2>/dev/null || true
  wheel=$(ls "$CACHE"/download/torch-"$VERSION"-*manylinux*x86_64.whl | head -1)
fi

# Which CUDA: torch/version.py says it, and the wheel's requirements name the toolkit.
meta=$(unzip -p "$wheel" "torch-$VERSION.dist-info/METADATA")
local_version=$(unzip -p "$wheel" torch/version.py | sed -n "s/^__version__ = '\(.*\)'/\1/p")
wheel_cuda=$(unzip -p "$wheel" torch/version.py | sed -n "s/^cuda: .* = '\(.*\)'/\1/p")
[[ -n $wheel_cuda ]] || die "$wheel is not a CUDA build (torch/version.py has no cuda version: $local_version)"
[[ ${wheel_cuda%%.*} == "${toolkit%%.*}" ]] ||
  die "$wheel was built for CUDA $wheel_cuda but $CUDA_HOME is CUDA $toolkit: the major versions must match"
echo "setup: $(basename "$wheel"): torch $local_version, CUDA $wheel_cuda; requires $(echo "$meta" |
  grep -o 'cuda-toolkit[^;]*==[0-9.]*' | head -1), $(echo "$meta" | grep -o 'nvidia-cudnn[^;]*==[0-9.]*' | head -1), $(echo "$meta" | grep -o 'nvidia-nccl[^;]*==[0-9.]*' | head -1); this toolkit: CUDA $toolkit"

tmp=$(mktemp -d "$CACHE/extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unzip -q "$wheel" 'torch/include/*' 'torch/lib/*' -x 'torch/lib/libtorch_python.so' -d "$tmp"
# The wheel carries an old protobuf's headers (for its ONNX parts, not needed here) that would
# shadow the system protobuf 3.21 the project's generated code is built for.
rm -rf "$tmp/torch/include/google"

# The C++11 ABI: std::string in signatures shows as std::__cxx11::basic_string.
if nm -DC "$tmp/torch/lib/libc10.so" | grep 'std::__cxx11::' >/dev/null; then
  abi=1
else
  die "$wheel's libc10.so does not use the C++11 ABI; this build compiles with it (g++ default)"
fi

# Link-time stand-ins (see the top of this file).
stubs=$tmp/torch/link_stubs
mkdir -p "$stubs"
[[ -f $CUDA_HOME/lib64/stubs/libcuda.so ]] || die "no driver stub $CUDA_HOME/lib64/stubs/libcuda.so"
ln -s "$CUDA_HOME/lib64/stubs/libcuda.so" "$stubs/libcuda.so.1"
needed=$(for f in "$tmp"/torch/lib/*.so; do readelf -d "$f" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'; done | sort -u)
for lib in $needed; do
  [[ $lib == libcuda.so.1 ]] && continue
  if [[ -e $tmp/torch/lib/$lib || -e $CUDA_HOME/lib64/$lib ]] || ldconfig -p | grep "^[[:space:]]*$lib " >/dev/null; then
    continue
  fi
  echo "setup: $lib (needed by libtorch) is not in $CUDA_HOME/lib64: an empty link-time stand-in"
  echo "" | gcc -x c -shared -fPIC -Wl,-soname,"$lib" -o "$stubs/$lib" -
done

cat >"$tmp/torch/convnextv2_libtorch.txt" <<EOF
version=$VERSION
local_version=$local_version
cuda=$wheel_cuda
cxx11_abi=$abi
wheel=$(basename "$wheel")
EOF
rm -rf "$DEST"
mv "$tmp/torch" "$DEST"
rm -f "$wheel"  # 530 MB; the extracted tree is what the build uses
echo "setup: $(du -sh "$DEST" | cut -f1) in $DEST"
print_home
