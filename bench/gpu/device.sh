#!/usr/bin/env bash
# The one-shot GPU benchmark, run ON the lent GPU machine in the repo root, once per device call (#17).
#
# Every call carries .gpu/MANIFEST and the next part(s) (see bench/gpu/README.md for the call plan). This script
#   1. moves the carried .gpu/part.* into /tmp/parts (kept while the machine stays warm) and says which are missing;
#   2. once all parts listed in MANIFEST are there: bench/gpu/unpack.sh (vLLM into /tmp/site, GGUF -> /tmp/models);
#   3. runs bench/spec_decode.py --gpu: every server is started by ragent's own command builder
#      (app/serving/vllm_server.py, the one docker-compose uses), speculation off / ngram / ngram_gpu / draft_model
#      at batch 1 and 32, and under the first method the agent's recorded LLM calls are replayed
#      (bench/gpu/agent_calls.py). JSON, vLLM log tail and nvidia-smi go to $OUT; a partial JSON survives a timeout.
#
# env: MODEL=qwen05|qwen15 (target; default: qwen15 when converted, else qwen05)  DRAFT=qwen05 (draft_model)
#      METHODS=ngram,off,ngram_gpu,draft_model (in priority order: later ones are cut first by the time limit)
#      BENCH_S=480 (seconds for step 3)  PROMPTS=12 (batch-1 prompts)  STAGE_ONLY=1 (steps 1-2 only)
#      GPU_ROOT=/tmp (unpack.sh's: site/ and models/ under it)  PARTS_DIR=/tmp/parts  OUT (the device tool sets it)
set -uo pipefail
OUT=${OUT:-/tmp/out}
PARTS=${PARTS_DIR:-/tmp/parts}
mkdir -p "$PARTS" "$OUT"
T0=$(date +%s)
t() { echo "[device +$(( $(date +%s) - T0 ))s] $*"; }

# 1. collect (the first call also says what machine this is)
if ! ls "$PARTS"/part.* >/dev/null 2>&1; then
  nvidia-smi -L 2>&1 | head -2
  python3 -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, torch.cuda.is_available())" 2>&1 | tail -1
fi
[ -f .gpu/MANIFEST ] && cp -f .gpu/MANIFEST "$PARTS/MANIFEST"
for f in .gpu/part.*; do [ -f "$f" ] && mv -f "$f" "$PARTS/"; done
[ -f "$PARTS/MANIFEST" ] || { echo "no MANIFEST: carry .gpu/MANIFEST with every call"; exit 2; }
missing=$(awk '/^part\./ {print $1, $2}' "$PARTS/MANIFEST" | while read -r name bytes; do
  [ "$(stat -c %s "$PARTS/$name" 2>/dev/null || echo 0)" = "$bytes" ] || printf '%s ' "$name"; done)
have=$(ls "$PARTS"/part.* 2>/dev/null | wc -l)
total=$(grep -c '^part\.' "$PARTS/MANIFEST")
t "parts: $have of $total here"
if [ -n "$missing" ]; then echo "waiting for: $missing"; exit 0; fi

# 2. unpack + convert (each step skipped when done)
bash bench/gpu/unpack.sh "$PARTS" || { t "unpack failed"; exit 1; }
t "unpacked"
[ "${STAGE_ONLY:-0}" = 1 ] && exit 0

# 3. measure
G=${GPU_ROOT:-/tmp}
export PYTHONPATH=$G/site:$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 PYTHONUNBUFFERED=1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
if [ -z "${MODEL:-}" ]; then MODEL=qwen05; [ -f "$G/models/qwen15_hf/config.json" ] && MODEL=qwen15; fi
DRAFT=${DRAFT:-qwen05}
replays=()
for f in bench/gpu/calls_*_"$MODEL".json.gz; do [ -f "$f" ] && replays+=(--replay "$f"); done
t "benchmark: target $MODEL, draft $DRAFT, methods ${METHODS:-ngram,off,ngram_gpu,draft_model}, $(( ${#replays[@]} / 2 )) agent replays"
timeout --kill-after=15 "${BENCH_S:-480}" python3 bench/spec_decode.py --gpu \
  --model-dir "$G/models/${MODEL}_hf" --draft-dir "$G/models/${DRAFT}_hf" \
  --methods "${METHODS:-ngram,off,ngram_gpu,draft_model}" --prompts "${PROMPTS:-12}" \
  --prompts-file bench/gpu/prompts.json.gz "${replays[@]}" --max-num-seqs 64 --startup-timeout 400 \
  --home /tmp/ragent-home --out "$OUT/spec_decode_gpu.json"
rc=$?
tail -c 200000 /tmp/ragent-home/run/bench/vllm.log > "$OUT/vllm_tail.log" 2>/dev/null || true
# spec_decode stops its server on SIGTERM; a server it could not stop (started in its own session, so it would
# outlive this call and hold the GPU) goes here
pkill -TERM -f 'vllm.entrypoints.openai.api_server' 2>/dev/null && sleep 5
pkill -KILL -f 'vllm.entrypoints.openai.api_server|VLLM::' 2>/dev/null || true
t "done (rc $rc)"
exit $rc
