#!/usr/bin/env bash
# The GPU benchmark suite (the fast path, design §11): one H100/H200, under 8 minutes, fast path vs plain baseline
# in every benchmark. Results (JSON) and a log go to $OUT when set, else bench/out/.
#
#   bash bench/gpu.sh            # the suite on the GPU (exits 1 without CUDA)
#   bash bench/gpu.sh --dry-run  # print the commands, run nothing
#   bash bench/gpu.sh --tiny     # every stage with tiny sizes on the CPU, no compiling (a smoke
#                               # test of the script: ~2.5 CPU-minutes, plus the rehearsal's)
#
# The rehearsal stage (book/paper_profile.md §5: the real annotation files, random features) needs
# VIDEOCLIP_DATA_DIR and is skipped without it; its data root goes to $REHEARSAL_DIR (default
# /tmp/videoclip-rehearsal, ~1 GB, not under $OUT) and its record to the log.
#
# Each stage has its own timeout, cut to what is left of BUDGET_S (470 s) so the suite ends in
# under 8 minutes; a stage that fails or times out is logged and the suite goes on; a stage
# with under 20 s left is skipped (logged). Stages run in order of importance.
set -u -o pipefail

MODE=gpu
case "${1:-}" in
  --dry-run) MODE=dry ;;
  --tiny) MODE=tiny ;;
  "") ;;
  *) echo "usage: bash bench/gpu.sh [--dry-run|--tiny]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PY=${PYTHON:-.venv/bin/python}; else PY=${PYTHON:-python3}; fi
export OUT=${OUT:-bench/out}
mkdir -p "$OUT"
LOG="$OUT/gpu_suite.log"
BUDGET_S=${BUDGET_S:-470}
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if [ "$MODE" = tiny ]; then
  DEVICE=(--device cpu)
  SAMPLER=(--videos 40 --batches 2)
  TRAIN=(--configs toy --repeats 1 --warmup 0 --videos 40 --fast-buckets 2)
  COMPILE=(--configs toy --repeats 1 --warmup 0 --videos 40)
  RETRIEVAL=(--configs toy --sample-toy 2 --sizes 2000,30000 --measure-max 2000 --repeats 1)
  EVAL=(--configs toy --clips 100 --repeats 1)
  REUSE=(--world smoke --epochs 2 --preset params/pretrain/smoke.yaml)
  REHEARSAL=(--device cpu --profiles released --chapters 06)
  PROJECT=()
  VIDEO=(--seconds 1 --repeats 1)
else
  DEVICE=(--device cuda)
  SAMPLER=(--videos 256 --batches 20)
  TRAIN=(--configs paper,toy --repeats 10 --warmup 3 --fast-buckets 0,2,8)
  COMPILE=(--configs paper --repeats 5 --warmup 3 --compile)
  RETRIEVAL=(--configs paper --sample-paper 256 --videos 256 --repeats 3
             --sizes 10000,100000,1100000 --measure-max 1100000)
  EVAL=(--configs paper,toy --repeats 3)
  REUSE=(--epochs 3)
  REHEARSAL=(--device cuda --profiles released --chapters 05,06)
  PROJECT=()
  VIDEO=(--seconds 8 --repeats 5 --batch 16)
fi

START=$(date +%s)
log() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }

stage() {  # stage NAME TIMEOUT_S COMMAND...
  local name=$1 limit=$2; shift 2
  if [ "$MODE" = dry ]; then echo "timeout $limit $*"; return 0; fi
  local left=$(( BUDGET_S - ($(date +%s) - START) ))
  if [ "$left" -lt 20 ]; then log "SKIPPED $name (budget: ${left}s left)"; return 0; fi
  [ "$left" -lt "$limit" ] && limit=$left
  log "START $name (timeout ${limit}s): $*"
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  log "END $name rc=$rc"
}

if [ "$MODE" = gpu ] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "gpu.sh: no CUDA device visible to $PY; use --tiny for a CPU smoke run" >&2
  exit 1
fi
[ "$MODE" != dry ] && { "$PY" -c "import torch, transformers, faiss; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'faiss', faiss.__version__)"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null; date -u; } 2>&1 | tee -a "$LOG"

stage sampler   60  "$PY" bench/bench_sampler.py "${SAMPLER[@]}" --out "$OUT/bench_sampler.json"
stage train     150 "$PY" bench/bench_train.py "${DEVICE[@]}" "${TRAIN[@]}"
stage retrieval 150 "$PY" bench/bench_retrieval.py "${DEVICE[@]}" "${RETRIEVAL[@]}"
stage eval      60  "$PY" bench/bench_eval.py "${DEVICE[@]}" "${EVAL[@]}"
# the projection from the measured fast pairs/s (paper config), left-out share and FAISS time
if [ "$MODE" != dry ] && [ -f "$OUT/bench_train.json" ] && [ -f "$OUT/bench_retrieval.json" ]; then
  read -r RATE LEFT FAISS_S < <("$PY" bench/project.py --inputs)
  PROJECT=(--left-out-share "$LEFT" --faiss-s "$FAISS_S")
  [ "$MODE" = gpu ] && PROJECT+=(--pairs-per-s "$RATE")
fi
stage project   30  "$PY" bench/project.py "${PROJECT[@]}"
# the released profile's first zero-shot chapters on CUDA, on the real files' full sizes
if [ -n "${VIDEOCLIP_DATA_DIR:-}" ] || [ "$MODE" = dry ]; then
  stage rehearsal 150 "$PY" -m videoclip.book.rehearsal --annotations "${VIDEOCLIP_DATA_DIR:-\$VIDEOCLIP_DATA_DIR}" \
    --out "${REHEARSAL_DIR:-/tmp/videoclip-rehearsal}" "${REHEARSAL[@]}"
else
  log "SKIPPED rehearsal (VIDEOCLIP_DATA_DIR is unset: it needs the real annotation files)"
fi
stage compile   120 "$PY" bench/bench_train.py "${DEVICE[@]}" "${COMPILE[@]}" --out "$OUT/bench_train_compile.json"
stage reuse     150 "$PY" bench/bench_reuse.py "${REUSE[@]}"
stage video     60  "$PY" bench/bench_video.py "${DEVICE[@]}" "${VIDEO[@]}" --out "$OUT/bench_video.json"
if [ "$MODE" != dry ]; then log "suite done; results in $OUT"; fi
