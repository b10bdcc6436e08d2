"""The hybrid retriever: paths, fusion, rerank, graph writes and deletes, decomposition and its fallbacks."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.runtime import Runtime
from core.errors import LLMUnavailableError
from core.settings import Settings
from core.types import Chunk
from ingest.pipeline import Ingestor
from retrieval.decompose import looks_complex
from retrieval.factory import build_retriever, build_writer
from retrieval.retriever import Retriever
from tests.fakes import FakeLLM, HashEmbedder

FACTS = [
    ("Alpha Station", "Alpha Station is a research base in Antarctica operated by the Nordic Polar Institute."),
    ("Nordic Polar Institute", "The Nordic Polar Institute was founded in 1951 by Ingrid Halvorsen in Tromsø."),
    ("Ingrid Halvorsen", "Ingrid Halvorsen was a Norwegian glaciologist born in Bergen."),
    ("Bananas", "Bananas are a tropical fruit grown in Ecuador and the Philippines."),
]
MULTI_HOP = "In which city was the founder of the institute that operates Alpha Station born?"


def chunks(ws: str) -> list[Chunk]:
    return [Chunk(id=f"{i:032x}", doc_id=f"doc{i}", workspace=ws, text=f"{t}\n{x}", doc_title=t)
            for i, (t, x) in enumerate(FACTS)]


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    r = Runtime(settings, overrides={"embedder": HashEmbedder(), "llm": FakeLLM()})
    yield r
    r.close()


def setup(rt: Runtime, llm: FakeLLM | None, ws: str = "h") -> Retriever:
    settings = rt.settings
    cfg = dataclasses.replace(settings.retrieval, decompose="auto")  # the path under test (off by default)
    r = build_retriever(cfg, rt.index, rt.embedder, rt.registry, llm, graph=rt.graph)
    r.reranker = None
    w = build_writer(settings.retrieval, rt.index, r.embedder_for, rt.graph)
    w.write(ws, chunks(ws))
    from retrieval.registry import DocRecord

    for c in chunks(ws):
        rt.registry.put(DocRecord(ws, c.doc_id, c.doc_title, c.doc_title, c.doc_id, "done", chunk_ids=(c.id,)))
    return r


def test_paths_fuse_and_graph_finds_linked_entities(rt: Runtime) -> None:
    r = setup(rt, None)
    assert r.paths == ("dense", "sparse", "graph")
    res = asyncio.run(r.run("h", "Where was Ingrid Halvorsen born?", k=4))
    assert set(res.runs) >= {"dense", "sparse", "graph"}
    assert res.runs["graph"].detail["linked"]  # the query entity was linked
    top = res.hits[0]
    assert top.chunk.doc_title == "Ingrid Halvorsen"
    assert {"dense", "sparse", "graph"} <= set(top.paths)
    assert res.runs["decompose"].skipped == "no LLM configured"
    # graph alone through the public recall API
    g = asyncio.run(r.recall("graph", "h", "Ingrid Halvorsen", 2))
    assert g and g[0].paths == {"graph": 1}
    nb = asyncio.run(r.neighbourhood("h", ["Ingrid Halvorsen"], hops=1))
    assert "Ingrid Halvorsen" in nb.entities and "00000000000000000000000000000002" in nb.chunk_ids


def test_only_done_documents_and_delete_removes_graph(rt: Runtime) -> None:
    r = setup(rt, None)
    from retrieval.registry import DocRecord

    r.registry.put(DocRecord("h", "doc2", "x", "x", "x", "processing"))
    hits = asyncio.run(r.search("h", "Ingrid Halvorsen glaciologist Bergen", k=4, rerank=False))
    assert all(h.chunk.doc_id != "doc2" for h in hits)
    w = build_writer(rt.settings.retrieval, rt.index, r.embedder_for, rt.graph)
    assert r.graph is not None
    w.delete_doc("h", "doc2")
    assert all(c != "00000000000000000000000000000002" for _, c in r.graph.view("h").mentions)
    assert r.index.get("h", ["00000000000000000000000000000002"]) == []


def test_decomposition_with_fake_llm(rt: Runtime) -> None:
    assert looks_complex(MULTI_HOP) and not looks_complex("Where is Bergen?")
    llm = FakeLLM([json.dumps({"queries": ["Which institute operates Alpha Station?",
                                            "Who founded the Nordic Polar Institute?",
                                            "Where was Ingrid Halvorsen born?"]})])
    r = setup(rt, llm)
    res = asyncio.run(r.run("h", MULTI_HOP, k=4, rerank=False))
    run = res.runs["decompose"]
    assert not run.skipped and len(run.detail["sub_queries"]) == 3
    assert llm.calls and llm.calls[0]["schema"] is not None  # JSON-schema guided
    assert "Ingrid Halvorsen" in {h.chunk.doc_title for h in run.hits[:3]}
    assert any("decompose" in h.paths for h in res.hits)


def test_decomposition_falls_back_when_llm_fails(rt: Runtime) -> None:
    def down(messages, schema):  # type: ignore[no-untyped-def]
        raise LLMUnavailableError("cannot reach the LLM server")

    r = setup(rt, FakeLLM([down]))
    res = asyncio.run(r.run("h", MULTI_HOP, k=3, rerank=False))
    assert res.runs["decompose"].skipped.startswith("LLM failed") and res.hits
    bad = setup(rt, FakeLLM(["not json at all"]), ws="h2")
    res = asyncio.run(bad.run("h2", MULTI_HOP, k=3, rerank=False))
    assert res.runs["decompose"].skipped.startswith("LLM failed") and res.hits

    def slow(messages, schema):  # type: ignore[no-untyped-def]
        raise TimeoutError  # what asyncio.wait_for raises: no message

    late = setup(rt, FakeLLM([slow]), ws="h4")
    res = asyncio.run(late.run("h4", MULTI_HOP, k=3, rerank=False))
    assert res.runs["decompose"].skipped == "LLM failed: timed out after 30 s" and res.hits
    # simple questions never call the LLM
    llm = FakeLLM(['{"queries": ["x"]}'])
    r3 = setup(rt, llm, ws="h3")
    asyncio.run(r3.run("h3", "Bergen?", k=2, rerank=False))
    assert llm.calls == []


@pytest.mark.slow
def test_hybrid_search_on_example_pdf_with_real_models(settings: Settings, example_pdf: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    rt = Runtime(settings)  # real MiniLM embedder, real spaCy graph, real ONNX reranker; no LLM reachable
    try:
        res = Ingestor(rt.index, rt.registry, rt.embedder, index_writer=rt.writer).ingest([example_pdf], "pdf")
        assert res[0].status == "ingested"
        out = asyncio.run(rt.retriever.run("pdf", "What is the rated output of the NW-200 inverter?", k=5))
        assert out.hits and out.hits[0].rerank_score is not None
        assert any(len(h.paths) >= 2 for h in out.hits)
        assert {p for h in out.hits for p in h.paths} >= {"dense", "sparse", "graph"}
        assert "5" in out.hits[0].chunk.text or "output" in out.hits[0].chunk.text.lower()
    finally:
        rt.close()
    # the CLI's JSON carries paths, scores and provenance
    monkeypatch.setenv("RAGENT_HOME", str(settings.home))
    monkeypatch.setenv("RAGENT_DECOMPOSE", "off")
    from app.cli import app

    cli = CliRunner().invoke(app, ["search", "NW-200 warranty", "--workspace", "pdf", "--k", "3", "--json"])
    assert cli.exit_code == 0, cli.output
    data = json.loads(cli.stdout)
    h = data["hits"][0]
    assert {"paths", "score", "rerank_score", "doc", "page", "chunk_id", "text"} <= set(h)
    assert h["page"] is not None and data["paths"]["dense"]["hits"] > 0


@pytest.mark.slow
def test_decomposition_with_real_llm(llm_server) -> None:  # type: ignore[no-untyped-def]
    from core.llm import OpenAILLM
    from retrieval.decompose import decompose

    subs = asyncio.run(decompose(OpenAILLM(llm_server), MULTI_HOP))  # schema-valid JSON or LLMError
    assert len(subs) <= 4 and all(isinstance(s, str) and s.strip() for s in subs)
    assert MULTI_HOP not in subs  # an echo of the question is dropped, not sent as a sub-query


def test_non_latin_query_reads_bm25_alone_with_english_only_models(rt: Runtime) -> None:
    """The packaged MiniLM embedder and cross-encoder read English only: for a Korean question their ranks are
    noise, and they pushed the chunk BM25 ranked first out of the top 5 (the report's date and number, pdfs
    kr-01 and kr-02). With RAGENT_NON_LATIN=lexical (auto with the packaged models) such a query is answered by
    the BM25 path alone; English queries, and a non-Latin query BM25 finds nothing for, use every path."""
    assert Settings().non_latin_mode == "lexical"
    assert Settings(embed_model="BAAI/bge-m3", rerank_model="BAAI/bge-reranker-v2-m3").non_latin_mode == "all"
    r = setup(rt, None)
    ws = "h"
    kr = [Chunk(id=f"{100 + i:032x}", doc_id=f"kr{i}", workspace=ws, text=t, doc_title="이슈와 논점")
          for i, t in enumerate(["발행일 2020년 4월 2일 발행처 국회입법조사처 제1695호",
                                 "코로나-19 관련 보험약관상 재해보험금 지급문제"])]
    build_writer(rt.settings.retrieval, rt.index, r.embedder_for, rt.graph).write(ws, kr)
    from retrieval.registry import DocRecord

    for c in kr:
        rt.registry.put(DocRecord(ws, c.doc_id, c.doc_title, c.doc_title, c.doc_id, "done", chunk_ids=(c.id,)))
    r.config = dataclasses.replace(r.config, non_latin="lexical")
    res = asyncio.run(r.run(ws, "국회입법조사처 보고서는 몇 호인가?", 3))
    assert set(res.runs) == {"sparse"} and "제1695호" in res.hits[0].chunk.text
    assert {"dense", "sparse"} <= set(asyncio.run(r.run(ws, "Where was Ingrid Halvorsen born?", 3)).runs)
    assert "dense" in asyncio.run(r.run(ws, "Москва столица", 3)).runs  # no BM25 hit: every path
    r.config = dataclasses.replace(r.config, non_latin="all")
    assert "dense" in asyncio.run(r.run(ws, "국회입법조사처 보고서는 몇 호인가?", 3)).runs
