"""The typed configs ``Settings`` builds and hands down (one per package that needs knobs).

These dataclasses hold the ONE copy of every default: ``Settings`` field defaults read them
(``Field(RetrievalConfig.rrf_k, ...)``), and code that builds a config without ``Settings`` (tests, benches)
gets the same values. Configs without defaults (``LLMConfig``, ``ServeConfig``, ``IndexConfig``) are built
only from ``Settings``, whose fields are then their only source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.errors import ConfigError

SpecMethod = Literal["ngram", "ngram_gpu", "draft_model", "eagle", "eagle3", "off"]  # ngram_gpu: GPU-side lookup
DType = Literal["auto", "bfloat16", "float32", "float16"]
LLMDevice = Literal["auto", "cpu", "gpu"]
VectorBackend = Literal["auto", "qdrant", "edge"]
OcrMode = Literal["auto", "off", "force"]
SplitMode = Literal["structure", "lexical", "semantic"]
GraphStage = Literal["deferred", "inline"]


@dataclass(frozen=True)
class LLMConfig:
    """How ragent talks to the OpenAI-compatible server."""

    base_url: str
    api_key: str
    model: str
    timeout_s: float
    max_tokens: int
    temperature: float
    retries: int


@dataclass(frozen=True)
class ServeConfig:
    """How ragent launches its own vLLM server, on CPU or GPU (unused when RAGENT_LLM_BASE_URL is set).

    ``hub_model`` (from ``RAGENT_LLM_MODEL=hf:ORG/NAME``) serves a hub id instead of ``model_dir``: the opt-in
    that lets vLLM download; every other model is a local folder served offline.
    """

    model_dir: Path
    served_name: str
    host: str
    port: int
    venv: Path
    spec_method: SpecMethod
    spec_tokens: int
    spec_lookup_min: int
    spec_lookup_max: int
    spec_draft_model: str | None
    max_model_len: int
    memory_fraction: float
    prefix_caching: bool
    dtype: DType
    kv_cache_gib: float
    compact_json: bool
    run_dir: Path
    startup_timeout_s: float
    device: LLMDevice = "auto"
    gpu_memory_fraction: float = 0.90
    max_num_seqs: int = 0  # 0: vLLM's default
    python: str | None = None  # interpreter that runs vLLM; None: the venv's, else (GPU) this process's
    hub_model: str | None = None


@dataclass(frozen=True)
class IndexConfig:
    """Where vectors, the graph and the registry live.

    ``backend`` ``auto`` (the default) is resolved by ``retrieval.factory.resolve_backend``: the Qdrant server when
    ``qdrant_url`` is set, else Qdrant Edge, except for a home whose vectors are still in a local-mode store.
    """

    qdrant_path: Path
    qdrant_url: str | None
    qdrant_api_key: str | None
    db_path: Path
    dense_dim: int
    backend: VectorBackend
    edge_path: Path

    def __post_init__(self) -> None:
        if self.backend == "edge" and self.qdrant_url:
            raise ConfigError(
                "RAGENT_VECTOR_BACKEND=edge runs Qdrant Edge inside this process and cannot use the Qdrant server "
                "in RAGENT_QDRANT_URL: unset RAGENT_QDRANT_URL, or set RAGENT_VECTOR_BACKEND=qdrant to use the server."
            )


@dataclass(frozen=True)
class FinetuneConfig:
    """Embedding fine-tuning loop (finetune/): pair synthesis, mining, training, promotion."""

    root: Path  # <home>/finetune: model versions live in <root>/<ws>/v<N>/
    generator: Literal["keyphrase", "llm", "both"] = "keyphrase"
    max_pairs: int = 1000
    epochs: int = 1
    batch_size: int = 32
    lr: float = 2e-5
    negatives: int = 1
    filter_k: int = 20
    val_fraction: float = 0.2
    min_gain: float = 0.005
    seed: int = 13
    rerank_negatives: bool = False
    bridge: bool = True


@dataclass(frozen=True)
class RetrievalConfig:
    """Recall paths, fusion, rerank and the graph (retrieval/)."""

    paths: tuple[str, ...] = ("dense", "sparse", "graph", "decompose")
    weights: tuple[tuple[str, float], ...] = (("dense", 1.0), ("sparse", 1.0), ("graph", 2.0), ("decompose", 1.0))
    rrf_k: int = 60
    candidates: int = 50
    rerank_model: str = "ms-marco-minilm"
    rerank_top_n: int = 30
    rerank_blend: float = 0.0
    rerank_bridge: int = 3
    rerank_max_tokens: int = 256
    # a query mostly in a non-Latin script: "lexical" = BM25 alone, unreranked (English-only dense and rerank
    # models read it as noise); "all" = every path and the rerank (multilingual models); Settings resolves "auto"
    non_latin: Literal["lexical", "all"] = "lexical"
    ppr_damping: float = 0.5
    ppr_eps: float = 1e-6
    graph_passage_weight: float = 0.05
    link_threshold: float = 0.8
    link_mentions: Literal["fallback", "always"] = "fallback"
    graph_extractor: Literal["spacy", "llm"] = "spacy"
    decompose: Literal["auto", "on", "off"] = "off"
    decompose_timeout_s: float = 30.0
    neo4j_url: str | None = None
    neo4j_user: str = "neo4j"
    neo4j_password: str = ""


@dataclass(frozen=True)
class OcrSettings:
    """OCR knobs (``RAGENT_OCR*``); ``ingest.ocr.OcrConfig`` is built from them by the Ingestor."""

    mode: OcrMode = "auto"
    languages: str = "eng"
    dpi: int = 200


@dataclass(frozen=True)
class IngestConfig:
    """Limits, splitting, enrichment and OCR of the ingest pipeline (ingest/)."""

    chunk_chars: int = 1200  # target chunk size in characters
    max_file_mb: float = 200.0  # files larger than this are refused
    max_pages: int = 3000  # PDFs with more pages than this are refused
    split_mode: SplitMode = "lexical"  # structure | lexical (TextTiling-style breakpoints) | semantic (model)
    enrich: bool = False  # LLM chunk contexts by default (the CLI's --enrich and the API's ingest jobs)
    enrich_doc_chars: int = 6000  # document characters shown to the LLM when enriching
    enrich_concurrency: int = 4  # enrichment requests in flight at once
    ocr: OcrSettings = field(default_factory=OcrSettings)
    graph_stage: GraphStage = "deferred"  # graph after every file of the batch is searchable, or inline
    prefetch: bool = False  # parse the next file in a worker process while this one is split, embedded, written


@dataclass(frozen=True)
class AgentConfig:
    """Budgets and sizes of one agent run. Defaults suit a small CPU model: short prompts, few tokens."""

    max_steps: int = 8  # tool calls per run, retries and replans included
    max_replans: int = 1  # times the reflector may ask for more evidence (e.g. single route -> multi-hop chain)
    max_retries: int = 1  # per failed step
    time_budget_s: float = 240.0  # wall clock per run; past it the reflector answers with what it has
    search_k: int = 5  # hits per search step
    answer_k: int = 5  # evidence chunks shown to the answerer
    source_chars: int = 600  # characters of each chunk shown to the LLM
    plan_tokens: int = 96  # the decomposition's JSON
    answer_tokens: int = 96  # the short answer + one cited sentence
    hop_tokens: int = 48  # a hop's short answer
    chain_first_depth: int = 2  # questions nesting this many descriptions start with the self-ask chain (1: every
    # multi-hop question; a large number: the chain only when the direct answer is missing or unsupported)
    wording_split_depth: int = 1  # questions nesting this many descriptions whose wording gives the hops (a relative
    # clause ending the question, "X's performer") start with that chain, no LLM split (a large number: never)
    history_turns: int = 3  # earlier turns of a thread shown to the rewriter and the answerer
    llm_experience: bool = True  # let the LLM propose tips after a run (after the answer is returned)
    memory_k: int = 3  # tips / shortcuts retrieved for the planner
    shortcut_min_score: float = 0.35  # similarity at which the planner applies a learned shortcut
    shortcut_min_runs: int = 2  # successful runs of the same tool sequence before it becomes a shortcut
    decay: float = 0.9  # per run, for memory items that were not used
    min_weight: float = 0.2  # items below this weight with a poor success rate are dropped
    replan_coverage: float = 0.35  # question-term coverage a run needs to count as a success for the memory
