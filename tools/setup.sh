#!/usr/bin/env bash
# One command that installs everything convnextv2 needs on Debian 12 (bookworm).
# Idempotent: re-running it only installs what is missing.
#
#   sudo tools/setup.sh        (or as root: tools/setup.sh)
#
# It installs the toolchain and libraries (Bazel 4.2.3, libtorch 1.13.1 CPU, Abseil, glog,
# gflags, protobuf, HDF5, GoogleTest, gloo, OpenCV, libjpeg-turbo, libpng, libwebp, libtiff),
# OpenBLAS selected as the BLAS (3-6x faster training than the reference BLAS), Slurm and munge
# for the launcher's cluster tests, Fashion-MNIST for the default run, Debian's python3-torch for
# the PyTorch-interop test oracles, PyPI's tensorboard (in a virtual environment) as the reader of
# the event-file tests, Chromium to render the sweep report in its test, and the peer venv
# (tools/bench/peer_setup.sh: PyTorch 2.11, timm, transformers, onnxruntime). The CUDA build's
# libtorch comes from tools/cuda/setup.sh.
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap g++ git pkg-config
  # tensors, autograd, c10d
  libtorch-dev libgloo-dev
  # fast BLAS (libtorch picks the alternative below)
  libopenblas0-openmp libopenblas-openmp-dev
  # base libraries
  libabsl-dev libgoogle-glog-dev libgflags-dev
  libprotobuf-dev protobuf-compiler
  libhdf5-dev hdf5-tools libssl-dev
  # JSON: log.txt lines, safetensors headers, Hugging Face config.json
  nlohmann-json3-dev
  # ONNX export: the graph protos, checker and shape inference (same protobuf 3.21 as ours)
  libonnx-dev
  libgtest-dev googletest
  # images
  libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev libwebp-dev libtiff-dev
  # OpenCV imgproc for the pixel ops; imgcodecs only as the decoders' test oracle
  libopencv-imgproc-dev libopencv-imgcodecs-dev
  # tools/cuda/bundle.sh (relative run paths for the GPU machine's bundle)
  patchelf
  # scheduler
  slurm-wlm munge
  # several hosts as network namespaces on a bridge (tools/slurm/local_cluster.sh --nodes N):
  # ip and ss (iproute2), unshare for each host's own hostname (util-linux)
  iproute2 util-linux
  # data
  dataset-fashion-mnist
  # test oracles (PyTorch interop fixtures, HDF5 readback) and the torchvision loader benchmark
  python3-torch python3-h5py python3-numpy python3-torchvision
  # TensorBoard event files: CRC-32C (ISA-L); a virtual environment for TensorBoard's reader
  libisal-dev python3-venv
  # Python.h for torch.compile (inductor) in the peer venv (tools/bench/peer_setup.sh)
  python3-dev
  # the sweep report rendered as a browser shows it (tests/launcher:report_render_test)
  chromium
)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#PACKAGES[@]} packages already installed"
fi

# Select OpenBLAS (OpenMP build) for libblas.so.3 and liblapack.so.3: libtorch links the generic
# names, and the reference BLAS makes a ConvNeXt step 3-6x slower.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  target=/usr/lib/$arch/openblas-openmp/$lib
  if [[ -e $target ]]; then
    $SUDO update-alternatives --set "$lib-$arch" "$target" >/dev/null
  fi
done
echo "setup: BLAS is $(readlink -f /usr/lib/$arch/libblas.so.3)"

# TensorBoard's own reader for the event-file tests: PyPI's `tensorboard` in a virtual
# environment at a fixed path (Debian's python3 is externally managed, and its torch and numpy
# stay as they are).
VENV=/opt/convnextv2-venv
TENSORBOARD_VERSION=2.18.0
if ! "$VENV/bin/python" -c "import sys, tensorboard; sys.exit(tensorboard.__version__ != '$TENSORBOARD_VERSION')" 2>/dev/null; then
  echo "setup: installing tensorboard $TENSORBOARD_VERSION into $VENV"
  $SUDO /usr/bin/python3 -m venv "$VENV"
  $SUDO "$VENV/bin/pip" install --quiet --disable-pip-version-check "tensorboard==$TENSORBOARD_VERSION"
fi
echo "setup: tensorboard $("$VENV/bin/python" -c 'import tensorboard; print(tensorboard.__version__)') in $VENV"

# The peer (PyTorch 2.11 on the CPU, timm, transformers, onnxruntime) for the speed benchmarks
# and the weight/ONNX oracle tests, in its own venv (/opt/convnextv2-peer).
$SUDO "$(dirname "$0")/bench/peer_setup.sh"

# Bazel's disk cache lives under the home directory (see .bazelrc); make sure it exists.
mkdir -p "$HOME/.cache/convnextv2-bazel-disk"
echo "setup: done"
