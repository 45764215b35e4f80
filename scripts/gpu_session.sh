#!/usr/bin/env bash
# One call on a CUDA machine without Qt, inside a fixed time: the CUDA checks and figures of fast sampling,
# then more training of the checkpoints that most need it (at the recipes' full size), their evaluation on the
# test split, and the results packed under $OUT (at most 8 files of 16 MiB) to bring back.
#
#   OUT=/some/folder bash scripts/gpu_session.sh DATA_DIR [SECONDS]        (SECONDS: whole budget, default 560)
#
# DATA_DIR holds binarized/ and idx/ (as ../shared/data/mnist does); copy it into the ignored .gpudata/ folder
# to carry it. Afterwards, here: unpack checkpoints.tar (cat checkpoints.tar.part* if it came in parts) into the
# repository root, then
# `python scripts/update_readme_table.py` and `python scripts/make_screenshots.py NAME ...`.
# GPU_SESSION_SMOKE=1 runs every step on the CPU at a tiny size, to try the script here first (about 3 minutes;
# GPU_SESSION_ONLY="NAME ..." narrows the recipes).
set -u -o pipefail
DATA=${1:?the data folder (binarized/ and idx/)}
BUDGET=${2:-560}
OUT=${OUT:-runs/gpu-session}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
mkdir -p "$OUT"
START=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
log() { echo "[$(( $(date +%s) - START )) s] $*" | tee -a "$OUT/session.log"; }
export PYTHONUNBUFFERED=1

DEVICE=cuda
CHECK_ARGS=(--no-compile --deadline 150)
TRAIN_ARGS=(--threads 1)
EVAL_RESERVE=150
if [ "${GPU_SESSION_SMOKE:-0}" = 1 ]; then
  DEVICE=cpu
  CHECK_ARGS=(--cpu-smoke)
  TRAIN_ARGS=(--limit 64 --threads 1)
  EVAL_RESERVE=20
fi

# The checkpoints trained at a reduced size on a CPU, most in need of GPU time first.
RECIPES=(rnn-binarized-mnist rnn-location-binarized-mnist wavenet-binarized-mnist wavenet-location-binarized-mnist
         pixelsnail-binarized-mnist attention-binarized-mnist-raster attention-binarized-mnist-random
         attention-binarized-mnist-even-then-odd attention-binarized-mnist-columns
         attention-binarized-mnist-top-bottom-to-middle pixelcnnpp-mnist any-order-attention-binarized-mnist)
[ -n "${GPU_SESSION_ONLY:-}" ] && read -r -a RECIPES <<< "$GPU_SESSION_ONLY"

log "device check"
python3 -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))" \
  2>&1 | tee -a "$OUT/session.log"

log "1/3 CUDA checks of fast sampling (benchmarks/gpu_check.py)"
timeout 200 python3 benchmarks/gpu_check.py "${CHECK_ARGS[@]}" > "$OUT/gpu_check.jsonl" 2> "$OUT/gpu_check.err"
log "gpu_check exit $? ($(grep -c '"part"' "$OUT/gpu_check.jsonl") parts)"

MINUTES=$(python3 -c "print(max(0.2, ($(left) - $EVAL_RESERVE - 45) / 60))")
log "2/3 training ${#RECIPES[@]} recipes, ${MINUTES} minutes each, all at once"
timeout $(( $(left) - 15 )) python3 scripts/train_recipes.py scripts/recipes/*.json --only "${RECIPES[@]}" \
  --data-dir "$DATA" --device "$DEVICE" --parallel ${#RECIPES[@]} --resume --minutes "$MINUTES" \
  --log-dir "$OUT/logs" "${TRAIN_ARGS[@]}" > "$OUT/train.log" 2>&1
log "training and evaluation exit $? (3/3 is inside: each checkpoint evaluated on its test split)"

names=()
for n in "${RECIPES[@]}"; do
  [ -f "checkpoints/$n.json" ] && names+=("checkpoints/$n.json" "checkpoints/$n.safetensors")
done
tar cf "$OUT/checkpoints.tar" "${names[@]}"
if [ "$(stat -c %s "$OUT/checkpoints.tar")" -gt $(( 15 * 1024 * 1024 )) ]; then  # files come back up to 16 MiB
  split -b 15m -d "$OUT/checkpoints.tar" "$OUT/checkpoints.tar.part" && rm "$OUT/checkpoints.tar"
fi
tar czf "$OUT/logs.tgz" -C "$OUT" logs train.log gpu_check.err 2>/dev/null
rm -rf "$OUT/logs" "$OUT/train.log" "$OUT/gpu_check.err"  # at most 8 files come back: 3 and the checkpoints
log "packed: $(du -h "$OUT/checkpoints.tar" | cut -f1) of checkpoints; $(left) s of the budget left"
