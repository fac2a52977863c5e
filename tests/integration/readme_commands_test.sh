#!/usr/bin/env bash
# The commands README.md shows, run: every line of its ```sh blocks is either run here (with
# `bazel run //convnextv2:X --` replaced by the built binary, `launcher` by the built launcher,
# every /tmp path moved under $TEST_TMPDIR/tmp, and a few tiny overrides APPENDED so that nothing
# trains for long) or, where it cannot run inside `bazel test` (setup.sh, bazel itself, starting
# a Slurm cluster), only asserted present. A README line this test has no rule for fails it, so
# an edit that breaks or adds a command fails the suite until the command runs here.
set -uo pipefail
README="$(realpath "$1")"
FINETUNE="$(realpath "$2")"
PRETRAIN="$(realpath "$3")"
LAUNCHER="$(realpath "$4")"
SWEEP="$(realpath "$5")"
BASE="$(realpath "$6")"
PREDICT="$(realpath "$7")"
EXPORT="$(realpath "$8")"
fail() { echo "FAIL: $*" >&2; exit 1; }
T="$TEST_TMPDIR"
mkdir -p "$T/tmp" "$T/work/configs" || exit 1
cp "$SWEEP" "$BASE" "$T/work/configs/"  # the README runs from the repository root
cd "$T/work" || exit 1
unset BUILD_WORKING_DIRECTORY
# What the README's `export PATH="$PWD/bazel-bin/launcher:$PATH"` does.
mkdir -p "$T/bin" && ln -s "$LAUNCHER" "$T/bin/launcher" && export PATH="$T/bin:$PATH"

# The images the README's `predict ... photos/` names: two small PNGs, written with zlib alone.
mkdir -p photos && /usr/bin/python3 - <<'PY' || exit 1
import struct, zlib
def png(path, w, h, seed):
    rows = b"".join(b"\0" + bytes((x * 7 + y * 3 + seed * 50 + c * 80) % 256
                                   for x in range(w) for c in range(3)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
png("photos/a.png", 40, 36, 1)
png("photos/b.png", 28, 28, 2)
PY

# The README's commands, one a line: continuation lines joined, comments dropped.
commands() {
  /usr/bin/python3 - "$README" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for block in re.findall(r'^```sh\n(.*?)^```', text, re.M | re.S):
    for command in block.replace('\\\n', ' ').split('\n'):
        command = re.sub(r'\s+#.*$', '', command)
        command = ' '.join(command.split())
        if command:
            print(command)
PY
}

ran=0
present=()
run() {  # run LOG WORD COMMAND...: status 0 and WORD in the output
  local log="$1" word="$2"
  shift 2
  echo "  runs:   $*"
  "$@" >"$log" 2>&1 || { tail -20 "$log"; fail "exit $? from: $*"; }
  grep -qF -- "$word" "$log" || { tail -20 "$log"; fail "no '$word' in the output of: $*"; }
  ran=$((ran + 1))
}

# `bazel run //convnextv2:NAME [-- ARGS]`: the binary with ARGS, then tiny overrides. A command
# naming a data set this machine lacks (the official ImageNet one) is validated, not run.
bazel_run() {
  [[ "$1" == "-c" ]] && shift 2  # `-c opt`: the test's binaries are built as the suite builds them
  local target="$1"
  shift
  [[ "${1:-}" == "--" ]] && shift
  local args=("$@") binary overrides=() word
  local data_path
  data_path=$(awk '{for (i = 1; i < NF; ++i) if ($i == "--data_path") print $(i + 1)}' <<<"$*")
  case "$target" in
    //convnextv2:finetune) binary="$FINETUNE" word="Accuracy of the model on the 10000 test images"
      overrides=(--epochs 1 --set data.max_train_images=256) ;;
    //convnextv2:pretrain) binary="$PRETRAIN" word="Training time"
      # The built-in default writes /tmp/convnextv2_pretrain: here under $T/tmp as every /tmp.
      overrides=(--train_subset 64)
      [[ " $* " == *" --output_dir "* ]] || overrides+=(--output_dir "$T/tmp/convnextv2_pretrain") ;;
    //convnextv2:predict) binary="$PREDICT" word="a.png" ;;
    //convnextv2:export) binary="$EXPORT" word="Exported" ;;
    *) fail "no rule for bazel run $target" ;;
  esac
  if [[ -n "$data_path" && ! -d "$data_path" ]]; then
    overrides=(--print_config) word="model:"
  fi
  local full=("${args[@]}" "${overrides[@]}")
  [[ "${full[*]:0:${#args[@]}}" == "${args[*]}" ]] || fail "the overrides changed the README's arguments"
  run "$T/run$ran.log" "$word" "$binary" "${full[@]}"
}

while IFS= read -r readme_command; do
  echo "README: $readme_command"
  command="${readme_command//\/tmp\//$T/tmp/}"
  [[ "${command//$T\/tmp\//\/tmp\/}" == "$readme_command" ]] || fail "rewriting /tmp changed more"
  case "$command" in
    "sudo tools/setup.sh" | "bazel test //..." | "bazel build //launcher && export PATH="* | \
    "tools/slurm/local_cluster.sh start "* | "tools/slurm/local_cluster.sh stop "*)
      echo "  present (needs root, Slurm or bazel itself: not run inside bazel test)"
      present+=("$command")
      continue ;;
  esac
  [[ "$command" != *[\'\"\$\;\&\|\<\>]* ]] || fail "no rule for a shell construct in: $readme_command"
  read -ra words <<<"$command"
  case "${words[0]} ${words[1]:-}" in
    "bazel run") bazel_run "${words[@]:2}" ;;
    "launcher sweep") run "$T/sweep.log" "nothing submitted" launcher "${words[@]:1}" --dry_run ;;
    "launcher status") run "$T/status.log" "task_003" "${words[@]}" ;;
    "launcher report") run "$T/report.log" "task_000" "${words[@]}" ;;
    *) fail "README command with no rule in this test: $readme_command" ;;
  esac
done < <(commands)

for want in "sudo tools/setup.sh" "bazel test //..."; do
  [[ " ${present[*]} " == *" $want "* ]] || fail "README lacks its setup command '$want'"
done
(( ran >= 8 )) || fail "only $ran README commands ran; want the 8 of its quick start"
[[ -s "$T/tmp/convnextv2_pretrain/checkpoint-2.pth" && -d "$T/tmp/ft_from_fcmae" ]] \
  || fail "the pre-training quick start left no checkpoint-2.pth or fine-tuning run"
echo "PASS: $ran README commands ran, ${#present[@]} asserted present"
