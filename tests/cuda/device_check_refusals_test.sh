#!/usr/bin/env bash
# tools/cuda/device_check.sh must refuse, before running anything, a folder that is not a
# bundle, a bad option, a Python that cannot import torch, a PyTorch whose version (without its
# +cu... suffix) differs from the one the bundle was built against (naming both versions), and
# a bundle whose binaries would not find a library.
set -uo pipefail
CHECK=$(realpath "$1")
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/device_check.XXXXXX")
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# A bundle whose binaries, if ever started, leave a mark.
B=$T/bundle
mkdir -p "$B/bin" "$B/lib"
printf 'version=2.11.0\nlibtorch=/somewhere/libtorch-2.11.0\n' >"$B/BUILT_AGAINST"
for exe in finetune pretrain cuda_ops_test nccl_test cuda_train_bench; do
  printf '#!/bin/sh\ntouch "%s/ran_%s"\n' "$T" "$exe" >"$B/bin/$exe"
  chmod +x "$B/bin/$exe"
done
fake_python() {  # NAME BODY: a python3 stand-in answering `-c 'import torch; ...'`
  printf '#!/bin/sh\n%s\n' "$2" >"$T/$1"
  chmod +x "$T/$1"
}
fake_python py_old 'echo 2.10.1+cu128'
fake_python py_same_other_cuda 'echo 2.11.0+cu126'
fake_python py_no_torch 'echo "ModuleNotFoundError: No module named torch" >&2; exit 1'

expect() {  # WANT_RC PATTERN... -- ARGS...: run device_check.sh, check status and message
  local want=$1; shift
  local patterns=()
  while [[ $1 != -- ]]; do patterns+=("$1"); shift; done
  shift
  local out rc
  out=$("$CHECK" "$@" 2>&1)
  rc=$?
  [[ $rc == "$want" ]] || fail "device_check.sh $*: exit $rc, want $want; output: $out"
  for p in "${patterns[@]}"; do
    grep -q -- "$p" <<<"$out" || fail "device_check.sh $*: output lacks '$p': $out"
  done
}

expect 2 "usage" -- 
expect 2 "usage" -- "$B" --fast
expect 2 "is not a bundle" "tools/cuda/bundle.sh" -- "$T/nothing_here"
PYTHON=$T/py_no_torch expect 3 "cannot import torch" -- "$B"
PYTHON=$T/py_old expect 3 "PyTorch is 2.10.1" "built against 2.11.0" "Nothing was run" -- "$B"
PYTHON=$T/py_old expect 3 "built against 2.11.0" -- "$B" --quick

# Nothing ran in the refused cases.
rm -f "$T"/ran_*
for py in py_old py_no_torch; do PYTHON=$T/$py "$CHECK" "$B" >/dev/null 2>&1; done
ls "$T"/ran_* >/dev/null 2>&1 && fail "a refused run started a binary: $(ls "$T"/ran_*)"

# The +cu... suffix is not part of the comparison: 2.11.0+cu126 passes the version check and
# goes on to the checks, which here start the marking stand-ins (and fail, as they should).
out=$(PYTHON=$T/py_same_other_cuda timeout 120 "$CHECK" "$B" --quick 2>&1)
grep -q "built against" <<<"$out" && fail "2.11.0+cu126 was refused as another version: $out"
[[ -e $T/ran_cuda_ops_test ]] || fail "2.11.0+cu126: the kernel tests were not started: $out"
grep -q "FAILED" <<<"$out" || fail "2.11.0+cu126: stand-in binaries passed the checks: $out"

# A bundle binary that needs a library nobody has: exit 1, naming the binary and the library,
# before any check runs (patchelf comes with tools/setup.sh).
M=$T/missing_lib
cp -r "$B" "$M"
cp /bin/true "$M/bin/nccl_test"
patchelf --add-needed libconvnextv2_nowhere.so.7 "$M/bin/nccl_test" || fail "patchelf failed"
rm -f "$T"/ran_*
PYTHON=$T/py_same_other_cuda expect 1 "libraries not found" \
  "nccl_test: libconvnextv2_nowhere.so.7 => not found" -- "$M"
ls "$T"/ran_* >/dev/null 2>&1 && fail "a bundle with a missing library started a binary"

if ((fails)); then echo "$fails failure(s)"; exit 1; fi
echo "PASS"
