#!/usr/bin/env bash
# Builds every target (binaries, tests, benchmarks) against the CUDA libtorch under
# --config=cuda, in an output base of its own (so the default CPU build's server and outputs are
# untouched) that shares the disk cache; exits non-zero on any error. Run it before merging a
# change to models, train, run, apps, dist, checkpoint or third_party, and with --cold before
# closing a GPU issue.
#
#   tools/cuda/build_check.sh            # warm: reuses this output base and the disk cache
#   tools/cuda/build_check.sh --cold     # from scratch: expunges the output base, no disk cache
#   tools/cuda/build_check.sh //convnextv2/models/...   # only these targets
#
# LIBTORCH_HOME defaults to what tools/cuda/setup.sh prints (it runs it: idempotent). Bazel and
# its actions run under `nice -n 19`, so a machine shared with others stays usable.
set -euo pipefail
cd "$(dirname "$0")/../.."

cold=0
targets=()
for arg in "$@"; do
  case $arg in
    --cold) cold=1 ;;
    -*) echo "build_check.sh: unknown option $arg (known: --cold)" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
if ((${#targets[@]} == 0)); then
  # Everything, named by its top-level folders rather than //...: the default build's
  # convenience links (bazel-bin, bazel-<checkout dir>, ...) belong to another output base, and
  # this server would crawl them as source packages and fail there.
  targets=(//:all)
  for dir in */; do
    dir=${dir%/}
    [[ -L $dir ]] && continue
    find "$dir" -name BUILD.bazel -print -quit | grep -q . && targets+=("//$dir/...")
  done
fi

if [[ -z ${LIBTORCH_HOME:-} ]]; then
  LIBTORCH_HOME=$(tools/cuda/setup.sh | sed -n 's/^export LIBTORCH_HOME=//p')
  [[ -n $LIBTORCH_HOME ]] || { echo "build_check.sh: tools/cuda/setup.sh printed no LIBTORCH_HOME" >&2; exit 1; }
fi
export LIBTORCH_HOME

# One output base per checkout (a Bazel output base belongs to one workspace).
key=$(pwd | md5sum | cut -c1-12)
output_base=${CONVNEXTV2_CUDA_OUTPUT_BASE:-$HOME/.cache/convnextv2-cuda/bazel-$key}
bazel=(nice -n 19 bazel "--output_base=$output_base")

# No convenience links: bazel-bin stays the default build's, and links of another output base
# in the checkout (bazel-cuda-<dir>/external/...) would break the default build's `//...`,
# which crawls them as packages.
flags=(--config=cuda --keep_going --symlink_prefix=/)
if ((cold)); then
  echo "build_check: --cold: expunging $output_base and building without the disk cache"
  "${bazel[@]}" clean --expunge >/dev/null 2>&1 || true
  flags+=(--disk_cache=)
fi

echo "build_check: LIBTORCH_HOME=$LIBTORCH_HOME bazel build ${flags[*]} ${targets[*]}  (output base $output_base)"
start=$(date +%s)
status=0
"${bazel[@]}" build "${flags[@]}" "${targets[@]}" || status=$?
elapsed=$(($(date +%s) - start))
if ((status)); then
  echo "build_check: FAILED (bazel exit $status) after ${elapsed}s" >&2
  exit "$status"
fi
echo "build_check: OK, ${targets[*]} built against the CUDA libtorch in ${elapsed}s ($( ((cold)) && echo cold || echo warm))"
