"""Settings builds every typed config from one source of defaults: the config dataclasses in core.config."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

import agents.config
from core.config import AgentConfig, FinetuneConfig, IngestConfig, OcrSettings, RetrievalConfig
from core.errors import RetrievalError
from core.settings import Settings
from ingest.pipeline import Ingestor
from retrieval.index_edge import COLLECTION_RE, EdgeIndex


def test_default_settings_build_the_dataclass_defaults(settings: Settings) -> None:
    assert settings.retrieval == RetrievalConfig()
    assert settings.ingest == IngestConfig()
    assert settings.agent == AgentConfig()
    assert settings.finetune == FinetuneConfig(root=settings.home / "finetune")


def test_settings_fields_default_to_the_config_defaults() -> None:
    """No Settings field repeats a literal default its config also holds: each reads the config class."""
    f = Settings.model_fields
    pairs = {"rrf_k": RetrievalConfig.rrf_k, "recall_candidates": RetrievalConfig.candidates,
             "weight_graph": dict(RetrievalConfig.weights)["graph"], "search_paths": ",".join(RetrievalConfig.paths),
             "chunk_chars": IngestConfig.chunk_chars, "split_mode": IngestConfig.split_mode,
             "ocr": OcrSettings.mode, "ocr_dpi": OcrSettings.dpi, "agent_max_steps": AgentConfig.max_steps,
             "agent_chain_first_depth": AgentConfig.chain_first_depth,
             "agent_wording_split_depth": AgentConfig.wording_split_depth, "finetune_lr": FinetuneConfig.lr}
    for name, default in pairs.items():
        assert f[name].default == default, name


def test_env_overrides_reach_every_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k, v in {"RRF_K": "7", "SEARCH_PATHS": "dense, sparse", "WEIGHT_GRAPH": "3", "CHUNK_CHARS": "800",
                 "OCR": "force", "OCR_LANGUAGES": "eng+deu", "OCR_DPI": "300", "ENRICH": "true",
                 "GRAPH_STAGE": "inline", "AGENT_MAX_STEPS": "5", "AGENT_LLM_EXPERIENCE": "false",
                 "AGENT_WORDING_SPLIT_DEPTH": "100",
                 "FINETUNE_EPOCHS": "3"}.items():
        monkeypatch.setenv(f"RAGENT_{k}", v)
    s = Settings.from_env()
    assert (s.retrieval.rrf_k, s.retrieval.paths, dict(s.retrieval.weights)["graph"]) == (7, ("dense", "sparse"), 3.0)
    assert s.ingest.chunk_chars == 800 and s.ingest.enrich is True and s.ingest.graph_stage == "inline"
    assert s.ingest.ocr == OcrSettings(mode="force", languages="eng+deu", dpi=300)
    assert (s.agent.max_steps, s.agent.llm_experience, s.agent.answer_k) == (5, False, AgentConfig.answer_k)
    assert s.finetune.epochs == 3 and s.agent.wording_split_depth == 100


def test_agent_config_lives_in_core_and_is_re_exported() -> None:
    assert agents.config.AgentConfig is AgentConfig
    assert {f.name for f in fields(AgentConfig)} >= {"max_steps", "answer_tokens", "history_turns"}


def test_ingestor_from_config_takes_the_ingest_config() -> None:
    cfg = IngestConfig(chunk_chars=700, max_file_mb=1.5, max_pages=9, split_mode="structure",
                       ocr=OcrSettings(mode="off", languages="deu", dpi=150), graph_stage="inline")
    ing = Ingestor.from_config(None, None, lambda ws: None, cfg, home=Path("h"))  # type: ignore[arg-type,return-value]
    assert (ing.chunk_chars, ing.max_file_mb, ing.max_pages, ing.split_mode) == (700, 1.5, 9, "structure")
    assert (ing.ocr.mode, ing.ocr.languages, ing.ocr.dpi) == ("off", "deu", 150)
    assert ing.home == Path("h") and ing.graph_stage == "inline"
    plain = Ingestor(None, None, lambda ws: None)  # type: ignore[arg-type,return-value]
    assert (plain.chunk_chars, plain.split_mode) == (IngestConfig.chunk_chars, IngestConfig.split_mode)


@pytest.mark.parametrize("name", ["ok\n", "ok\r", "\nok", "a b", "", "-x", "x" * 129])
def test_collection_names_with_a_trailing_newline_are_refused(name: str, settings: Settings) -> None:
    assert not COLLECTION_RE.match(name)
    index = EdgeIndex(settings.index)  # the constructor opens nothing
    with pytest.raises(RetrievalError):
        index._dir(name)


def test_valid_collection_names_pass() -> None:
    for name in ("default", "ws_v2", "A-1", "x" * 128):
        assert COLLECTION_RE.match(name)


def test_every_runtime_ingestor_gets_the_ingest_config(settings: Settings) -> None:
    """The CLI, the API's ingest jobs and MCP all build their Ingestor with Runtime.ingestor: RAGENT_GRAPH_STAGE and
    the limits reach each of them."""
    from app.runtime import Runtime

    s = settings.model_copy(update={"graph_stage": "inline", "chunk_chars": 900, "ocr": "off"})
    rt = Runtime(s)
    try:
        ing = rt.ingestor()
        assert (ing.graph_stage, ing.chunk_chars, ing.ocr.mode) == ("inline", 900, "off")
    finally:
        rt.close()
