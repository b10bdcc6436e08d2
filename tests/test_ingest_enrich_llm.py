"""Contextual enrichment with the REAL vLLM server (``llm_server`` fixture) on the example PDF."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.runtime import Runtime
from core.llm import OpenAILLM
from core.settings import LLMConfig, Settings
from ingest.enrich import ContextCache, Enricher
from ingest.pipeline import Ingestor
from tests.fakes import HashEmbedder


@pytest.mark.slow
def test_real_llm_enrichment_on_example_pdf(llm_server: LLMConfig, tmp_path: Path, example_pdf: Path) -> None:
    rt = Runtime(Settings(home=tmp_path / "var"), overrides={"embedder": HashEmbedder()})
    llm = OpenAILLM(llm_server)
    cache = ContextCache(tmp_path / "var" / "enrich_cache.db")
    enricher = Enricher(llm, cache, model_key=llm_server.model, max_tokens=64)
    ing = Ingestor(rt.index, rt.registry, rt.retriever.embedder_for, home=rt.settings.home, enricher=enricher)
    try:
        (r,) = ing.ingest([example_pdf], "llm")
        assert r.status == "ingested" and enricher.failures == 0
        assert r.enriched >= r.chunks - 1  # a context for (nearly) every chunk
        rec = rt.registry.get("llm", r.doc_id)
        assert rec is not None
        chunks = rt.retriever.get_chunks("llm", list(rec.chunk_ids))
        with_ctx = [c for c in chunks if c.context]
        assert with_ctx and all(5 <= len(c.context) <= 400 for c in with_ctx)
        assert all(c.index_text.startswith(c.context) for c in with_ctx)
        calls = enricher.llm_calls
        assert ing.delete("llm", r.doc_id)
        (again,) = ing.ingest([example_pdf], "llm")  # the cache answers: no new LLM calls
        assert again.enriched == r.enriched and enricher.llm_calls == calls
        hits = asyncio.run(rt.retriever.search("llm", "rated output of the inverter", k=3))
        assert hits
    finally:
        cache.close()
        rt.close()
