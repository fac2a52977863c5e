#!/usr/bin/env bash
# The launcher's command line: the subcommand table behind --help and `help`, clear errors (exit
# 2) for an unknown subcommand, an unknown flag and a flag of another subcommand, and the flag
# spellings of docs/slurm.md (--flag=value, --flag value, --dry_run, flags after the arguments).
set -uo pipefail
LAUNCHER="$(realpath "$1")"
SWEEP="$(realpath "$2")"
BASE="$(realpath "$3")"
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$TEST_TMPDIR" || exit 1
unset BUILD_WORKING_DIRECTORY
cp "$SWEEP" ft.pbtxt && cp "$BASE" finetune_default.pbtxt
printf '#!/bin/sh\nexit 0\n' >fake_finetune && chmod +x fake_finetune

expect() {  # expect STATUS WORD COMMAND...: exit status STATUS and WORD in stdout or stderr
  local want="$1" word="$2"
  shift 2
  "$LAUNCHER" "$@" >out.txt 2>err.txt
  local rc=$?
  [[ $rc == "$want" ]] || fail "launcher $*: exit $rc, want $want: $(cat out.txt err.txt)"
  grep -qF -- "$word" out.txt err.txt || fail "launcher $*: no '$word' in: $(cat out.txt err.txt)"
}

# ---- help: every subcommand of the table, with its flags --------------------------------------
expect 0 "commands:" --help
for c in sweep status report reproduce compare; do
  grep -qE "^  $c +[a-z]" out.txt || fail "--help does not list $c: $(cat out.txt)"
  grep -qF "  launcher $c " out.txt || fail "--help lacks the synopsis of $c"
done
cp out.txt help1.txt
expect 0 "commands:" help
cmp -s out.txt help1.txt || fail "launcher help and launcher --help differ"
expect 0 "commands:" -h
expect 0 "--sweep_dir=DIR" help sweep
grep -qF -- "--dry_run" out.txt || fail "help sweep lacks --dry_run: $(cat out.txt)"
grep -qF "write everything and print the script" out.txt || fail "help sweep lacks the flag text"
expect 0 "--format=text|csv|markdown" report --help
expect 2 "commands:"  # no arguments: the usage on stderr
[[ ! -s out.txt ]] || fail "the usage of a bare launcher went to stdout"

# ---- errors -------------------------------------------------------------------------------------
expect 2 "unknown command 'frobnicate'" frobnicate
grep -qF "sweep, status, report, reproduce, compare" err.txt || fail "no list of commands: $(cat err.txt)"
expect 2 "unknown flag '--bogus' for sweep" sweep --bogus ft.pbtxt
grep -qF -- "--dry_run, --force, --binary, --sweep_dir" err.txt || fail "no list of flags: $(cat err.txt)"
expect 2 "unknown flag '--sort=acc1' for status (it takes no flags" status --sort=acc1 sweeps/x
expect 2 "unknown flag '--dry_run' for report" report --dry_run sweeps/x
expect 2 "usage: launcher compare RUN_A RUN_B" compare only_one
expect 2 "usage: launcher sweep [flags] SWEEP.pbtxt" sweep
expect 2 "help: unknown command 'nope'" help nope

# ---- the spellings users type -------------------------------------------------------------------
expect 0 "nothing submitted" sweep --dry_run --binary=fake_finetune --sweep_dir=dry ft.pbtxt
[[ -f dry/sweep.sbatch && -f dry/tasks/task_003.pbtxt ]] || fail "the dry run wrote no sweep dir"
head -1 out.txt | grep -q '^#!' || fail "the dry run did not print the script: $(head -3 out.txt)"
# Space-separated values, flags after the argument, the default sweep dir under the current dir.
expect 0 "nothing submitted" sweep ft.pbtxt --binary fake_finetune --dry_run
[[ -f sweeps/atto_fmnist_blr_ld/sweep_manifest.pbtxt ]] || fail "no sweep dir at the default place"
expect 2 "already exists" sweep --dry_run --binary=fake_finetune ft.pbtxt
expect 0 "nothing submitted" sweep --dry_run --force --binary=fake_finetune ft.pbtxt
expect 0 "task,optim.blr,optim.layer_decay,state" report --format=csv --sort=loss dry
[[ $(wc -l <out.txt) == 5 ]] || fail "report: want a header and 4 rows: $(cat out.txt)"
expect 0 "task_000" report dry --format markdown
grep -qF "| task | optim.blr |" out.txt || fail "report --format markdown: $(cat out.txt)"
expect 2 "--format=xml: text, csv or markdown" report --format=xml dry
expect 2 "--sort=f1: sort by acc1, acc5 or loss" report --sort=f1 dry
expect 1 "no_such_run" reproduce no_such_run --out_dir=elsewhere
echo "PASS: help, errors and flag spellings"
