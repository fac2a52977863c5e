#!/usr/bin/env bash
# timm and transformers load what `export` writes, and files they save load here, with the same
# logits (weights_oracle.py). Needs the peer venv (tools/bench/peer_setup.sh); skips without it.
set -uo pipefail
TOOL="$1"
EXPORT="$2"
ORACLE="$3"
PY=/opt/convnextv2-peer/bin/peer-python
if [[ ! -x "$PY" || ! -e /opt/convnextv2-peer/.ready ]]; then
  echo "SKIPPED: the peer venv /opt/convnextv2-peer is absent (tools/setup.sh makes it)"
  exit 0
fi
export OMP_NUM_THREADS=2
exec "$PY" "$ORACLE" "$TOOL" "$EXPORT" "$TEST_TMPDIR"
