#!/usr/bin/env bash
# tools/code/function_lengths.py on testdata/function_lengths_fixture.cc: every definition found,
# with its length and qualified name, nothing else (not the lambdas at namespace or class scope,
# not the table, not the one-line method); --max exits 1 above the limit and 0 at it.
set -uo pipefail
TOOL="$1"
FIXTURE="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }

got="$(python3 "$TOOL" --top 100 "$FIXTURE")" || fail "the tool failed: $got"
want="    7  Outer::MethodSeven  $FIXTURE:38
    5  FreeFunctionFive  $FIXTURE:23
    5  Outer::Outer  $FIXTURE:31
    4  Outer::Inner::MethodFour  $FIXTURE:53
    3  Outer::operator==  $FIXTURE:48
    3  Holder::TemplateMethodThree  $FIXTURE:70
    3  Outer2  $FIXTURE:79
7 functions; 0 longer than 80 lines"
[[ "$got" == "$want" ]] || fail "output differs:
--- got
$got
--- want
$want"

python3 "$TOOL" --max 6 "$FIXTURE" >/dev/null && fail "--max 6 passed although MethodSeven has 7 lines"
python3 "$TOOL" --max 7 "$FIXTURE" >/dev/null || fail "--max 7 failed although nothing is longer"
echo "PASS: 7 definitions with their lengths; --max at and above the longest"
