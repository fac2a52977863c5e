#!/usr/bin/env bash
# Runs on the GPU machine (an H200 with PyTorch 2.11.0+cu130 in /opt/torch/.venv, no Bazel), from
# the repo root, against a bundle made here by tools/cuda/bundle.sh DIR:
#   1. the GPU kernel tests and a one-rank NCCL group (all-reduce, broadcast);
#   2. training img/s at 224x224, bfloat16, channels-last: atto b256, tiny b128 (and base b64
#      outside --quick), this toolkit (fused kernels and plain ATen) beside the official
#      architecture in PyTorch eager and under torch.compile (tools/bench/official_cuda_bench.py);
#   3. a short synthetic fine-tuning run and FCMAE pre-training run on CUDA, each stopped by
#      SIGTERM mid-epoch and resumed, against unstopped runs (tolerance below).
# Whole run: meant to take under 5 minutes; --quick (meant for about a minute, for a rerun):
# fewer steps, no base, no torch.compile, no pre-training stop/resume. (Not yet timed on a GPU.)
# Uses the machine's own libtorch and CUDA (its PyTorch's). Stops before anything else when that
# PyTorch's version differs from the one the bundle was built against.
#
#   tools/cuda/device_check.sh gpu_bundle [--quick]
#
# Exit status: 0 all passed; 1 a check failed; 2 usage; 3 PyTorch version mismatch.
set -uo pipefail
cd "$(dirname "$0")/../.."

usage() { echo "usage: tools/cuda/device_check.sh DIR [--quick]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
DIR=${1%/}
QUICK=0
if [[ $# == 2 ]]; then [[ $2 == --quick ]] || usage; QUICK=1; fi
[[ -f $DIR/BUILT_AGAINST && -d $DIR/bin ]] || { echo "device_check: $DIR is not a bundle (no BUILT_AGAINST; make one with tools/cuda/bundle.sh $DIR)" >&2; exit 2; }

PYTHON=${PYTHON:-/opt/torch/.venv/bin/python}
[[ -x $PYTHON ]] || PYTHON=$(command -v python3)
full=$("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null) ||
  { echo "device_check: $PYTHON cannot import torch" >&2; exit 3; }
have=${full%%+*}
built=$(sed -n 's/^version=//p' "$DIR/BUILT_AGAINST")
if [[ $have != "$built" ]]; then
  echo "device_check: this machine's PyTorch is $have ($full, $PYTHON) but the bundle was built against $built; rebuild it with TORCH_VERSION=$have tools/cuda/setup.sh and tools/cuda/bundle.sh, or run where PyTorch $built is installed. Nothing was run." >&2
  exit 3
fi

# The machine's libtorch, then the CUDA libraries its wheels brought (NCCL, cuDNN, cuBLAS ...),
# then the toolkit; the bundle's own libraries come through the binaries' $ORIGIN run path.
libdirs=$("$PYTHON" - <<'PY'
import glob, os, torch
torch_dir = os.path.dirname(torch.__file__)
site = os.path.dirname(torch_dir)
dirs = [os.path.join(torch_dir, "lib")]
dirs += sorted(d for d in glob.glob(os.path.join(site, "nvidia", "**", "lib"), recursive=True))
dirs += [d for d in ("/usr/local/cuda/lib64",) if os.path.isdir(d)]
print(":".join(dirs))
PY
)
export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
BIN=$DIR/bin
WORK=$(mktemp -d "${TMPDIR:-/tmp}/device_check.XXXXXX")
START=$(date +%s)
failures=()
section() { echo; echo "=== $* ($(($(date +%s) - START)) s)"; }
check() {  # NAME COMMAND...: runs, records a failure with the exit status
  local name=$1; shift
  if "$@"; then echo "--- $name: OK"; else local rc=$?; echo "--- $name: FAILED (exit $rc)"; failures+=("$name"); fi
}

section "machine"
echo "bundle: $(tr '\n' ' ' <"$DIR/BUILT_AGAINST")"
echo "PyTorch $full at $PYTHON; LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null || echo "(nvidia-smi not available)"
missing=$(for exe in "$BIN"/*; do ldd "$exe" 2>/dev/null | sed -n "s|^\s*\(.*not found\)|$(basename "$exe"): \1|p"; done)
if [[ -n $missing ]]; then
  echo "device_check: libraries not found for the bundle's binaries:" >&2
  echo "$missing" >&2
  exit 1
fi

section "GPU kernel tests and one-rank NCCL"
gpu_test() {  # NAME: runs a gtest binary; a skipped test means no GPU was seen, a failure here
  "$BIN/$1" --gtest_color=no >"$WORK/$1.log" 2>&1
  local rc=$?
  grep -E '^\[ *(OK|FAILED|SKIPPED) *\]|skipped: |Failure|PASSED' "$WORK/$1.log" | head -60
  ((rc == 0)) || return "$rc"
  if grep -q '^\[  SKIPPED \]' "$WORK/$1.log"; then echo "$1: tests were skipped on the GPU machine"; return 1; fi
}
check cuda_ops_test gpu_test cuda_ops_test
check nccl_test gpu_test nccl_test

section "training img/s, 224x224, bfloat16, channels-last"
if ((QUICK)); then
  steps=8 warmup=3 runs=("convnextv2_atto 256" "convnextv2_tiny 128") modes=eager
else
  steps=20 warmup=5 runs=("convnextv2_atto 256" "convnextv2_tiny 128" "convnextv2_base 64") modes=both
fi
for run in "${runs[@]}"; do
  read -r model batch <<<"$run"
  check "toolkit $model b$batch" "$BIN/cuda_train_bench" --model "$model" --batch "$batch" \
    --steps "$steps" --warmup "$warmup" --kernels both
  check "official $model b$batch" "$PYTHON" tools/bench/official_cuda_bench.py --model "$model" \
    --batch "$batch" --steps "$steps" --warmup "$warmup" --mode "$modes"
done

# ---- stop mid-epoch with SIGTERM, resume, compare with unstopped runs --------------------------
# shellcheck source=tools/cuda/resume_check.sh
source tools/cuda/resume_check.sh
section "fine-tuning and pre-training on CUDA: SIGTERM mid-epoch, resume, compare"
COMMON=(--device cuda --data_set synthetic --input_size 64 --epochs 3 --warmup_epochs 0
        --use_amp=true --amp_dtype bfloat16 --print_freq 1 --num_workers 2)
check "finetune stop/resume" run_resume_check finetune "$BIN/finetune" test_loss "${COMMON[@]}" \
  --model convnextv2_atto --nb_classes 10 --synthetic_train_size 2560 --synthetic_eval_size 128 \
  --batch_size 64 --blr 2e-3 --drop_path 0.1
((QUICK)) && echo "(--quick: pre-training stop/resume skipped)"
((QUICK)) || check "pretrain stop/resume" run_resume_check pretrain "$BIN/pretrain" train_loss "${COMMON[@]}" \
  --model convnextv2_atto --synthetic_train_size 2560 --batch_size 64 --blr 1.5e-4 \
  --decoder_embed_dim 64

section "summary"
echo "took $(($(date +%s) - START)) s; logs in $WORK"
if ((${#failures[@]})); then
  printf 'FAILED: %s\n' "${failures[@]}"
  exit 1
fi
echo "device_check: all checks passed"
