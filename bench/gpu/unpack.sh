#!/usr/bin/env bash
# Unpack the bundle of bench/gpu/build_bundle.sh ON THE GPU HOST (root; python3 = the host's, with torch).
#
# usage: [GPU_ROOT=/tmp] bash bench/gpu/unpack.sh PARTS_DIR
#   PARTS_DIR holds part.NN and MANIFEST (else .gpu/MANIFEST of this checkout is used).
# Steps (each leaves a marker in $GPU_ROOT/.gpu-unpack/<MANIFEST hash>/, is skipped when done, prints its seconds):
#   verify   every part of MANIFEST present, of its size and sha256 (names the missing/corrupt ones)
#   payload  cat the parts in MANIFEST order | tar -x -C $GPU_ROOT/payload
#   site     payload/site.tar.zst -> $GPU_ROOT/site (vLLM 0.26.0 + the wheels the host lacks + gguf etc.)
#   gguf_*   payload/models/NAME.gguf[.zst] -> $GPU_ROOT/models/gguf/NAME.gguf
#   hf_*     scripts/prepare_model.py's convert (bf16) -> $GPU_ROOT/models/qwen05_hf (and qwen15_hf if shipped)
#   check    PYTHONPATH=$GPU_ROOT/site python3 -c "import vllm" (always run; its failure is fatal)
# Then: export PYTHONPATH=$GPU_ROOT/site HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: [GPU_ROOT=/tmp] bash $0 PARTS_DIR" >&2; exit 2; }
[ -d "$1" ] || { echo "unpack: no such folder: $1" >&2; exit 2; }
PARTS=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${GPU_ROOT:-/tmp}
MAN=$PARTS/MANIFEST
[ -f "$MAN" ] || MAN=$HERE/../../.gpu/MANIFEST
[ -f "$MAN" ] || { echo "unpack: no MANIFEST in $PARTS nor in .gpu/" >&2; exit 1; }
ST=$ROOT/.gpu-unpack/$(sha256sum "$MAN" | cut -c1-16)   # markers per bundle (MANIFEST)
mkdir -p "$ST" "$ROOT/payload" "$ROOT/site" "$ROOT/models/gguf"
T0=$(date +%s.%N)
secs() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }
# step NAME CMD...: run CMD unless NAME's marker exists; the marker is written only on success
step() {
  local name=$1; shift
  if [ -f "$ST/$name.done" ]; then echo "[unpack] $name: done before, skipped"; return 0; fi
  local s; s=$(date +%s.%N)
  "$@"
  touch "$ST/$name.done"
  echo "[unpack] $name: $(secs "$s") s"
}

verify() {
  local bad=() name size sum got
  while read -r name size sum; do
    [ "${name#part.}" != "$name" ] || continue
    if [ ! -f "$PARTS/$name" ]; then bad+=("$name (missing)")
    elif [ "$(stat -c %s "$PARTS/$name")" != "$size" ]; then bad+=("$name (size $(stat -c %s "$PARTS/$name"), expected $size)")
    fi
  done < "$MAN"
  # sha256 of the present, right-sized parts, in parallel
  while read -r got name; do
    sum=$(awk -v n="$(basename "$name")" '$1 == n {print $3}' "$MAN")
    [ "$got" = "$sum" ] || bad+=("$(basename "$name") (sha256 mismatch)")
  done < <(awk '$1 ~ /^part\./ {print $1}' "$MAN" | while read -r n; do [ -f "$PARTS/$n" ] && echo "$PARTS/$n"; done \
             | xargs -r -P "$(nproc)" -n 1 sha256sum)
  if [ ${#bad[@]} -gt 0 ]; then
    echo "unpack: $(awk '$1 ~ /^part\./' "$MAN" | wc -l) parts expected in $PARTS; bad parts:" >&2
    printf '  %s\n' "${bad[@]}" | sort -u >&2
    exit 1
  fi
  echo "[unpack] $(awk '$1 ~ /^part\./' "$MAN" | wc -l) parts OK ($(awk '$1 == "total" {print $2}' "$MAN") bytes)"
}
payload() {
  awk '$1 ~ /^part\./ {print $1}' "$MAN" | (cd "$PARTS" && xargs cat) | tar -x -C "$ROOT/payload"
}
# the zstd shipped in the payload (with its liblz4), else the host's
ZSTD=()
pick_zstd() {
  if LD_LIBRARY_PATH="$ROOT/payload/bin" "$ROOT/payload/bin/zstd" -V >/dev/null 2>&1; then
    ZSTD=(env LD_LIBRARY_PATH="$ROOT/payload/bin" "$ROOT/payload/bin/zstd")
  elif command -v zstd >/dev/null; then ZSTD=(zstd)
  else echo "unpack: neither the shipped zstd nor a host zstd runs" >&2; exit 1; fi
}
site() { "${ZSTD[@]}" -d -q -c --long=27 "$ROOT/payload/site.tar.zst" | tar -x -C "$ROOT/site"; }
gguf() {  # gguf SRC DEST
  case "$1" in
    *.zst) "${ZSTD[@]}" -d -q -f "$1" -o "$2.partial" ;;
    *) cp "$1" "$2.partial" ;;
  esac
  mv "$2.partial" "$2"
}
hf() {  # hf GGUF OUTDIR
  rm -rf "$2.partial"
  # the converter scripts/prepare_model.py uses here (the repo travels; ../shared does not)
  PYTHONPATH="$HERE/../../scripts:$ROOT/site${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 python3 -c \
    'import sys; from pathlib import Path; from prepare_model import convert; convert(Path(sys.argv[1]), Path(sys.argv[2]), "bfloat16")' \
    "$1" "$2.partial"
  rm -rf "$2"; mv "$2.partial" "$2"
}

step verify verify
step payload payload
pick_zstd
step site site
shopt -s nullglob
for f in "$ROOT"/payload/models/*.gguf "$ROOT"/payload/models/*.gguf.zst; do
  name=$(basename "${f%.zst}")
  case "$name" in
    Qwen2.5-Coder-0.5B-Instruct.gguf) hfname=qwen05_hf ;;
    Qwen2.5-Coder-1.5B-Instruct.gguf) hfname=qwen15_hf ;;
    *) hfname=${name%.gguf}_hf ;;
  esac
  step "gguf_$hfname" gguf "$f" "$ROOT/models/gguf/$name"
  step "hf_$hfname" hf "$ROOT/models/gguf/$name" "$ROOT/models/$hfname"
done
echo "[unpack] models: $(cd "$ROOT/models" && ls -d ./*_hf 2>/dev/null | tr '\n' ' ')"
s=$(date +%s.%N)
if ! v=$(PYTHONPATH="$ROOT/site" python3 -c "import vllm; print(vllm.__version__)"); then
  echo "unpack: FATAL: 'import vllm' failed with PYTHONPATH=$ROOT/site" >&2; exit 1
fi
echo "[unpack] vllm $v importable ($(secs "$s") s); all steps: $(secs "$T0") s"
echo "export PYTHONPATH=$ROOT/site HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1"
