"""Convert a llama- or qwen2-architecture GGUF (e.g. SmolLM2-135M-Instruct.Q4_1.gguf, the Qwen2.5-Coder
1.5B/0.5B Instruct GGUFs assembled from their PyPI part wheels) into an HF safetensors folder
that vLLM can serve. Needs: torch, transformers, gguf, accelerate.

usage: python convert_gguf_to_hf.py MODEL.gguf OUT_DIR [bfloat16|float32]

A copy of shared/tools/convert_gguf_to_hf.py (that folder does not travel to the GPU host), same behaviour;
bench/gpu/unpack.sh runs it there with PYTHONPATH=$GPU_ROOT/site for gguf.
"""

import sys
from pathlib import Path

import torch
import transformers.modeling_gguf_pytorch_utils as g
from gguf import GGUFReader, dequantize
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer


def convert(gguf_path: Path, out: Path, dtype: torch.dtype) -> None:
    folder, name = str(gguf_path.parent), gguf_path.name
    cfg = AutoConfig.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    proc = g.TENSOR_PROCESSORS.get(cfg.model_type, g.TensorProcessor)(config=cfg.to_dict())
    names = g.get_gguf_hf_weights_map(model, proc)
    state = {}
    for t in GGUFReader(str(gguf_path)).tensors:
        w = dequantize(t.data, t.tensor_type)
        res = proc.process(weights=w, name=t.name, tensor_key_mapping=names, parsed_parameters={"tensors": {}})
        if res.name in names:  # llama q/k weights come back un-permuted by the processor
            state[names[res.name]] = torch.from_numpy(res.weights.copy()).to(dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)  # lm_head is tied
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(out)


if __name__ == "__main__":
    dt = getattr(torch, sys.argv[3]) if len(sys.argv) > 3 else torch.bfloat16
    convert(Path(sys.argv[1]), Path(sys.argv[2]), dt)
    print("wrote", sys.argv[2])
