#!/usr/bin/env bash
# metrics.h5 is readable by the standard tools: h5dump and h5py (Debian's python3-h5py).
set -uo pipefail
WRITE="$1"
F="$TEST_TMPDIR/m.h5"
fail() { echo "FAIL: $*" >&2; exit 1; }
"$WRITE" "$F" || fail "writer exited with $?"

h5dump -d /train/loss "$F" >"$TEST_TMPDIR/dump" || fail "h5dump failed"
grep -q "DATASPACE  SIMPLE { ( 5 ) / ( H5S_UNLIMITED ) }" "$TEST_TMPDIR/dump" \
  || fail "want 5 rows, extendable: $(cat "$TEST_TMPDIR/dump")"
grep -q "1.5, 1.25, 1, 0.75, 0.5" "$TEST_TMPDIR/dump" || fail "loss values: $(cat "$TEST_TMPDIR/dump")"
h5dump -a /seed "$F" >"$TEST_TMPDIR/seed" || fail "h5dump -a failed"
grep -q "(0): 3" "$TEST_TMPDIR/seed" || fail "seed attribute: $(cat "$TEST_TMPDIR/seed")"

/usr/bin/python3 - "$F" <<'PY' || fail "h5py check failed"
import math, sys
import h5py
with h5py.File(sys.argv[1], "r") as f:
    assert list(f["train/step"][:]) == [0, 1, 2, 3, 4], f["train/step"][:]
    assert list(f["train/loss"][:]) == [1.5, 1.25, 1.0, 0.75, 0.5]
    assert all(math.isnan(v) for v in f["train/grad_norm"][:])
    assert list(f["eval/acc1"][:]) == [62.0], f["eval/acc1"][:]
    cfg = f.attrs["config"]
    cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
    assert cfg == "train { seed: 3 }\n", repr(cfg)
    assert int(f.attrs["seed"]) == 3
    assert f["train/loss"].chunks == (1024,)
    assert f["train/loss"].maxshape == (None,)
print("h5py ok")
PY
echo PASS
