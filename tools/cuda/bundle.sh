#!/usr/bin/env bash
# Packs what tools/cuda/device_check.sh runs on the GPU machine into DIR (an ignored folder in
# the repo, e.g. gpu_bundle/): the CUDA-built binaries (finetune, pretrain, the GPU tests, the
# CUDA training benchmark) and every shared library they need except what that machine has:
# libtorch and CUDA (its PyTorch's), the C/C++ runtime, HDF5, protobuf, libpng, zlib and
# OpenBLAS. Binaries find the bundled libraries relative to themselves ($ORIGIN/../lib).
# Refuses a bundle over 64 MiB (what can travel to the GPU machine, with the repo's files).
#
#   tools/cuda/bundle.sh gpu_bundle        # builds with --config=cuda first (build_check's base)
set -euo pipefail
cd "$(dirname "$0")/../.."

die() { echo "bundle.sh: $*" >&2; exit 1; }
[[ $# == 1 ]] || die "usage: tools/cuda/bundle.sh DIR (an ignored folder inside the repo)"
DIR=${1%/}
case $DIR in /*) die "DIR must be a relative path inside the repo, got $DIR" ;; esac
mkdir -p "$DIR"
git check-ignore -q "$DIR/x" || die "$DIR is not ignored by git (.gitignore): the bundle must not be committed"
command -v patchelf >/dev/null || die "patchelf is missing (tools/setup.sh installs it)"
LIMIT_MIB=64

TARGETS=(
  //convnextv2:finetune
  //convnextv2:pretrain
  //tests/models:cuda_ops_test
  //tests/dist:nccl_test
  //tools/bench:cuda_train_bench
)

if [[ -z ${LIBTORCH_HOME:-} ]]; then
  LIBTORCH_HOME=$(tools/cuda/setup.sh | sed -n 's/^export LIBTORCH_HOME=//p')
fi
export LIBTORCH_HOME
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
key=$(pwd | md5sum | cut -c1-12)
output_base=${CONVNEXTV2_CUDA_OUTPUT_BASE:-$HOME/.cache/convnextv2-cuda/bazel-$key}
bazel=(nice -n 19 bazel "--output_base=$output_base")
"${bazel[@]}" build --config=cuda --symlink_prefix=/ "${TARGETS[@]}"
bin=$("${bazel[@]}" info --config=cuda bazel-bin 2>/dev/null)

rm -rf "$DIR/bin" "$DIR/lib"
mkdir -p "$DIR/bin" "$DIR/lib"
originals=()
for t in "${TARGETS[@]}"; do
  path=${t#//}
  path=${path/://}
  originals+=("$bin/$path")
  cp "$bin/$path" "$DIR/bin/"
  chmod u+w "$DIR/bin/$(basename "$path")"
done

# Provided on the GPU machine (its PyTorch, CUDA and system), or the C/C++ runtime.
provided='^(libtorch|libc10|libcaffe2|libshm|libgomp|libcuda|libcudart|libcublas|libcudnn|libnccl|libnv|libcufft|libcurand|libcusparse|libcusolver|libcupti|libcufile|libc\.so|libm\.so|libmvec|libstdc\+\+|libgcc_s|ld-linux|libpthread|libdl\.so|librt\.so|libutil|libresolv|libhdf5|libprotobuf|libpng16|libz\.so|libopenblas|libblas|liblapack|libgfortran|libquadmath)'
export LD_LIBRARY_PATH=$LIBTORCH_HOME/lib:$CUDA_HOME/lib64
declare -A copied=()
# ldd on the binaries where Bazel left them: tests link the project's libraries dynamically
# (bazel-bin/_solib_k8/...), found through run paths relative to there, not to the copies.
for exe in "${originals[@]}"; do
  while read -r name arrow path _; do
    [[ $arrow == "=>" && -n $path && $path != "not" ]] || continue
    [[ $name =~ $provided ]] && continue
    [[ -n ${copied[$name]:-} ]] && continue
    cp -L "$path" "$DIR/lib/$name"
    chmod u+w "$DIR/lib/$name"
    copied[$name]=$path
  done < <(ldd "$exe")
done
for exe in "$DIR"/bin/*; do patchelf --set-rpath '$ORIGIN/../lib' "$exe"; done
for lib in "$DIR"/lib/*; do
  [[ -e $lib ]] || continue
  patchelf --set-rpath '$ORIGIN' "$lib"
done
# Every library the copies need must now resolve, except what the GPU machine provides.
for exe in "$DIR"/bin/*; do
  unresolved=$(ldd "$exe" | awk '$3 == "not" { print $1 }' | grep -Ev "$provided" || true)
  [[ -z $unresolved ]] || die "$exe would not find $(echo $unresolved) on the GPU machine"
done

# What device_check.sh checks before running anything.
{
  grep -E '^(version|local_version|cuda)=' "$LIBTORCH_HOME/convnextv2_libtorch.txt"
  echo "git_commit=$(git rev-parse HEAD)$(git diff --quiet HEAD 2>/dev/null || echo -dirty)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$DIR/BUILT_AGAINST"
{
  echo "# bundled libraries and where they came from"
  for name in $(printf '%s\n' "${!copied[@]}" | sort); do echo "$name ${copied[$name]}"; done
} >"$DIR/LIBRARIES"

bytes=$(du -sb "$DIR" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "bundle.sh: $DIR: $(ls "$DIR/bin" | wc -l) binaries ($(du -sh "$DIR/bin" | cut -f1)), ${#copied[@]} libraries ($(du -sh "$DIR/lib" | cut -f1)), ${mib} MiB in all"
if ((bytes > LIMIT_MIB * 1048576)); then
  echo "bundle.sh: $DIR is ${mib} MiB, over the ${LIMIT_MIB} MiB that can travel to the GPU machine; largest:" >&2
  du -ab "$DIR" | sort -n | tail -8 >&2
  exit 1
fi
echo "bundle.sh: run on the GPU machine, from the repo root: tools/cuda/device_check.sh $DIR [--quick]"
