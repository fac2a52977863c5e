#!/usr/bin/env bash
# End to end on JPEG folders: IMNET layout written by make_image_folder, the full train recipe
# (RandomResizedCrop, RandAugment, RandomErasing, Mixup/CutMix with soft targets), a truncated
# JPEG under both corrupt-image policies, and a class-count mismatch.
set -uo pipefail
FINETUNE="$1"
MAKE_FOLDER="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
DATA="$TEST_TMPDIR/imnet"
"$MAKE_FOLDER" --out "$DATA" --images 16 --classes 2 --width 80 --height 60 >/dev/null \
  || fail "make_image_folder exited with $?"
[[ $(find "$DATA/train" -name '*.jpg' | wc -l) == 16 ]] || fail "want 16 train JPEGs"

run() {  # run name args...
  local name="$1"; shift
  "$FINETUNE" --model convnextv2_atto --data_set IMNET --data_path "$DATA" --nb_classes 2 \
    --input_size 64 \
    --batch_size 8 --epochs 1 --warmup_epochs 0 --warmup_steps 0 --num_threads 2 --num_workers 2 \
    --aa rand-m9-mstd0.5-inc1 --reprob 0.25 --mixup 0.8 --cutmix 1.0 --print_freq 1 \
    --output_dir "$TEST_TMPDIR/$name" "$@" >"$TEST_TMPDIR/$name.out" 2>"$TEST_TMPDIR/$name.err"
}

run ok || { cat "$TEST_TMPDIR/ok.err"; fail "training exited with $?"; }
grep -q "ImageFolder $DATA/train: 16 images, 2 classes" "$TEST_TMPDIR/ok.err" || fail "no train line"
grep -q "Accuracy of the model on the 16 test images" "$TEST_TMPDIR/ok.err" || fail "no eval line"
grep -q '"train_loss"' "$TEST_TMPDIR/ok/log.txt" || fail "no log.txt"

# A truncated JPEG: the default policy stops naming it; skip replaces it and warns.
bad="$DATA/train/class_001/img_00003.jpg"
head -c 600 "$bad" >"$TEST_TMPDIR/cut" && mv "$TEST_TMPDIR/cut" "$bad"
run failing
rc=$?
[[ $rc == 1 ]] || fail "exit status $rc with a corrupt JPEG (want 1)"
grep -qF "cannot decode image '$bad'" "$TEST_TMPDIR/failing.err" \
  || fail "error does not name the file: $(tail -3 "$TEST_TMPDIR/failing.err")"
run skipping --set data.corrupt_images=skip || { cat "$TEST_TMPDIR/skipping.err"; fail "skip run"; }
grep -qF "skipping corrupt image (1 so far): cannot decode image '$bad'" "$TEST_TMPDIR/skipping.err" \
  || fail "no skip warning"

run classes --nb_classes 5
grep -qF "model.nb_classes is 5 but image folder '$DATA/train' has 2 class folders" \
  "$TEST_TMPDIR/classes.err" || fail "no class count error: $(tail -3 "$TEST_TMPDIR/classes.err")"
echo PASS
