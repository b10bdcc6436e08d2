"""The ingest pipeline with fakes (HashEmbedder, FakeLLM) on real Qdrant local mode and real PDFs: bad input,
incremental re-ingest, delete, enrichment with its cache and failures, the CLI."""

from __future__ import annotations

import asyncio
import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymupdf
import pytest
from typer.testing import CliRunner

from app.runtime import Runtime
from core.errors import LLMUnavailableError
from core.settings import Settings
from ingest.enrich import ContextCache, Enricher, clean_context
from ingest.pipeline import Ingestor
from tests.fakes import FakeLLM, HashEmbedder


def make(rt: Runtime, **kw: Any) -> Ingestor:
    return Ingestor(rt.index, rt.registry, rt.retriever.embedder_for, home=rt.settings.home, **kw)


def _pdf(path: Path, pages: list[str], **save: Any) -> Path:
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        if text:
            page.insert_text((72, 72), text)
        else:
            page.draw_rect(pymupdf.Rect(100, 100, 300, 300), color=(0, 0, 0), fill=(0.5, 0.5, 0.5))
    doc.save(path, **save)
    return path


def test_bad_inputs_each_reported_nothing_lost(fake_runtime: Runtime, tmp_path: Path, example_pdf: Path) -> None:
    enc = _pdf(tmp_path / "secret.pdf", ["top secret"], encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o",
               user_pw="u")
    data = example_pdf.read_bytes()
    (tmp_path / "truncated.pdf").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.md").touch()
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02" * 10)
    scan = _pdf(tmp_path / "scan.pdf", ["", ""])
    long = _pdf(tmp_path / "long.pdf", ["one", "two", "three", "four"])
    shutil.copy(example_pdf, tmp_path / "copy.pdf")
    files = [enc, tmp_path / "truncated.pdf", tmp_path / "empty.md", tmp_path / "sheet.xlsx",
             tmp_path / "binary.txt", scan, long, example_pdf, tmp_path / "copy.pdf", example_pdf]
    res = make(fake_runtime, max_pages=3).ingest(files, "bad")
    got = [(Path(r.path).name, r.status, r.error or r.note) for r in res]
    expect = [
        ("secret.pdf", "failed", "encrypted"), ("truncated.pdf", "failed", "truncated"),
        ("empty.md", "failed", "empty"), ("sheet.xlsx", "failed", "unsupported file type .xlsx"),
        ("binary.txt", "failed", "binary"), ("scan.pdf", "failed", "no extractable text"),
        ("long.pdf", "failed", "4 pages is over the limit of 3"), (example_pdf.name, "ingested", ""),
        ("copy.pdf", "duplicate", "same content as"), (example_pdf.name, "unchanged", ""),
    ]
    for (name, status, msg), (gname, gstatus, gmsg) in zip(expect, got, strict=True):
        assert (gname, gstatus) == (name, status) and msg in gmsg, (gname, gstatus, gmsg)
    assert "OCR" in got[5][2] and "qpdf" in got[0][2]
    reg = fake_runtime.registry
    assert {r.status for r in reg.list("bad")} == {"failed", "done"}  # no pending/processing left behind
    assert len(reg.list("bad", "done")) == 1  # the duplicate is not registered twice
    big = make(fake_runtime, max_file_mb=0.001).ingest([example_pdf], "big")[0]
    assert big.status == "failed" and "over the limit of 0.001 MB" in big.error


def test_payload_kinds_pages_bboxes_headings(fake_runtime: Runtime, example_pdf: Path) -> None:
    (r,) = make(fake_runtime).ingest([example_pdf], "p")
    assert r.status == "ingested" and r.tables == 1
    points = fake_runtime.index.scroll("p", r.doc_id)
    assert len(points) == r.chunks == len(fake_runtime.registry.get("p", r.doc_id).chunk_ids)  # type: ignore[union-attr]
    pay = [p.payload for p in points]
    table = next(p for p in pay if p["kind"] == "table")
    assert table["page"] == 2 and table["heading_path"][-1] == "Specifications" and len(table["bbox"]) == 4
    assert all(p["doc_title"] == "Northwind NW-200 Field Manual" and p["workspace"] == "p" for p in pay)
    assert all(p["page"] in (1, 2, 3) and p["bbox"] for p in pay)


def test_docx_ingests_and_is_searchable(fake_runtime: Runtime, tmp_path: Path) -> None:
    from tests.test_parse import para, write_docx

    path = write_docx(tmp_path / "pump.docx", para("Pump Manual", "Heading1") + para("Specs", "Heading2")
                      + para("The P-100 pump delivers 40 litres per minute at 3 bar."))
    (r,) = make(fake_runtime).ingest([path], "x")
    assert r.status == "ingested" and r.chunks >= 1, r
    hits = asyncio.run(fake_runtime.retriever.search("x", "litres per minute", k=3))
    assert hits and hits[0].chunk.doc_title == "Pump Manual" and "40 litres" in hits[0].chunk.text
    assert hits[0].chunk.heading_path[-1] == "Specs"


def test_changed_file_replaces_chunks_and_bad_update_keeps_old(fake_runtime: Runtime, tmp_path: Path) -> None:
    f = tmp_path / "notes.md"
    f.write_text("# Pumps\n\nThe pump moves water.\n\n## Valves\n\nValves stop water.")
    ing = make(fake_runtime)
    (a,) = ing.ingest([f], "w")
    f.write_text("# Pumps\n\nThe pump moves oil now.")
    (b,) = ing.ingest([f], "w")
    assert (a.status, b.status, b.version, b.doc_id) == ("ingested", "updated", 2, a.doc_id)
    texts = [p.payload["text"] for p in fake_runtime.index.scroll("w")]
    assert texts == ["The pump moves oil now."]
    f.write_bytes(b"\x00\x01\x02")  # now broken: the old version must stay searchable
    (c,) = ing.ingest([f], "w")
    assert c.status == "failed" and "previous version stays searchable" in c.error
    assert fake_runtime.registry.get("w", a.doc_id).status == "done"  # type: ignore[union-attr]
    hits = asyncio.run(fake_runtime.retriever.search("w", "pump oil", k=3))
    assert hits and hits[0].chunk.text == "The pump moves oil now."


def test_same_bytes_parsed_again_when_the_parser_or_chunk_settings_change(fake_runtime: Runtime, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Unchanged means same bytes and same recipe: a parser upgrade, another chunk size, or a row written before
    the recipe was kept (an older ragent) re-parses the file, so no stale chunks stay behind."""
    from dataclasses import replace

    import ingest.pipeline

    f = tmp_path / "notes.md"
    f.write_text("# Pumps\n\n" + "The pump moves water through the plant. " * 20)
    (a,) = make(fake_runtime).ingest([f], "w")
    (b,) = make(fake_runtime).ingest([f], "w")
    assert (a.status, b.status) == ("ingested", "unchanged")
    (c,) = make(fake_runtime, chunk_chars=300).ingest([f], "w")
    assert (c.status, c.version) == ("updated", 2) and "parsed again" in c.note and c.chunks > a.chunks
    assert fake_runtime.index.count("w") == c.chunks  # the old chunks are gone
    monkeypatch.setattr(ingest.pipeline, "PARSER_VERSION", ingest.pipeline.PARSER_VERSION + 1)
    assert make(fake_runtime, chunk_chars=300).ingest([f], "w")[0].status == "updated"
    monkeypatch.setattr(ingest.pipeline, "SPARSE_VERSION", ingest.pipeline.SPARSE_VERSION + 1)  # new BM25 tokens
    assert make(fake_runtime, chunk_chars=300).ingest([f], "w")[0].status == "updated"
    rec = fake_runtime.registry.get("w", a.doc_id)
    assert rec is not None
    fake_runtime.registry.put(replace(rec, meta={k: v for k, v in rec.meta.items() if k != "recipe"}))
    assert make(fake_runtime, chunk_chars=300).ingest([f], "w")[0].status == "updated"
    assert make(fake_runtime, chunk_chars=300).ingest([f], "w")[0].status == "unchanged"


def test_delete_removes_vectors_files_and_pages(fake_runtime: Runtime, tmp_path: Path) -> None:
    from ingest.pdf import render_page

    pdf = Path(__file__).resolve().parent.parent.parent / "shared/data/pdfs/papers/1706.03762v7.pdf"
    home = fake_runtime.settings.home
    ing = make(fake_runtime, split_mode="structure")
    (r,) = ing.ingest([pdf], "img")
    # 3 raster images (figures 1-2) + 3 vector figures (3-5), each saved as PNG
    assert r.images == 6 and len(list((home / "files" / r.doc_id).glob("*.png"))) == 6
    assert not (home / "files" / f"{r.doc_id}.new").exists()
    render_page(home, r.doc_id, pdf, 1)
    assert ing.delete("img", r.doc_id)
    assert fake_runtime.index.count("img") == 0 and fake_runtime.registry.get("img", r.doc_id) is None
    assert not (home / "files" / r.doc_id).exists() and not (home / "pages" / r.doc_id).exists()
    assert not ing.delete("img", r.doc_id)


def test_resume_after_crash_state(fake_runtime: Runtime, tmp_path: Path, example_pdf: Path) -> None:
    """A document left 'processing' (crash) with some points written is redone without duplicates."""
    ing = make(fake_runtime)
    (r,) = ing.ingest([example_pdf], "c")
    n = fake_runtime.index.count("c")
    rec = fake_runtime.registry.get("c", r.doc_id)
    assert rec is not None
    from dataclasses import replace

    fake_runtime.registry.put(replace(rec, status="processing", chunk_ids=()))
    assert asyncio.run(fake_runtime.retriever.search("c", "inverter", k=3)) == []  # half-documents invisible
    (again,) = ing.ingest([example_pdf], "c")
    assert again.status == "ingested" and fake_runtime.index.count("c") == n


def test_enrichment_contexts_prefix_cache_and_failures(fake_runtime: Runtime, tmp_path: Path,
                                                       example_pdf: Path) -> None:
    llm = FakeLLM(["Context: This chunk is from the Northwind NW-200 manual. It covers specs. Extra words."])
    cache = ContextCache(tmp_path / "ctx.db")
    ing = make(fake_runtime, enricher=Enricher(llm, cache, model_key="fake"))
    (r,) = ing.ingest([example_pdf], "e")
    assert r.enriched == r.chunks and len(llm.calls) == r.chunks
    prompts = [c["messages"][1]["content"] for c in llm.calls]
    prefix = prompts[0].split("<chunk>")[0]
    assert prefix.startswith('<document title="Northwind NW-200 Field Manual">')
    assert all(p.startswith(prefix) for p in prompts)  # identical document prefix for vLLM's prefix cache
    chunks = fake_runtime.retriever.get_chunks("e", list(fake_runtime.registry.get("e", r.doc_id).chunk_ids))  # type: ignore[union-attr]
    c0 = chunks[0]
    assert c0.context == "This chunk is from the Northwind NW-200 manual. It covers specs."
    assert c0.index_text.startswith(c0.context) and c0.context not in c0.text
    assert ing.delete("e", r.doc_id)
    ing.ingest([example_pdf], "e")
    assert len(llm.calls) == r.chunks  # re-ingest: every context came from the cache

    async def down(*a: Any, **k: Any) -> str:
        raise LLMUnavailableError("connection refused")

    llm.chat = down  # type: ignore[method-assign]
    ing2 = make(fake_runtime, enricher=Enricher(llm, ContextCache(tmp_path / "other.db")))
    (r2,) = ing2.ingest([example_pdf], "e2")
    assert r2.status == "ingested" and r2.enriched == 0 and "got no LLM context" in r2.note
    assert ing2.enricher is not None and ing2.enricher.llm_calls == 3  # gave up after 3 failures in a row
    cache.close()


def test_clean_context() -> None:
    assert clean_context('"<context>A. B. C.</context>"') == "A. B."


@contextmanager
def _fake_rt(home: Path):  # type: ignore[no-untyped-def]
    rt = Runtime(Settings(home=home), overrides={"embedder": HashEmbedder(), "llm": FakeLLM(["ctx."])})
    try:
        yield rt
    finally:
        rt.close()


def test_cli_ingest_docs_list_show_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         example_pdf: Path) -> None:
    from app import cli
    from app.cli import common

    monkeypatch.setattr(common, "runtime", lambda: _fake_rt(tmp_path / "var"))
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(example_pdf, folder / "manual.pdf")
    (folder / "sub" / "notes.md").write_text("# Notes\n\nSome notes about pumps.")
    (folder / "skip.bin").write_bytes(b"x")
    run = CliRunner().invoke
    r = run(cli.app, ["ingest", str(folder), "-r", "-w", "k", "--json", "--enrich"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert [Path(f["path"]).name for f in data["files"]] == ["manual.pdf", "notes.md"]
    assert data["summary"] == {"ingested": 2} and all(f["enriched"] == f["chunks"] for f in data["files"])
    r = run(cli.app, ["ingest", str(folder), "-w", "k"])  # not recursive: only manual.pdf, unchanged
    assert r.exit_code == 0 and "unchanged" in r.stdout and "ingest into 'k'" in r.stdout
    docs = json.loads(run(cli.app, ["docs", "list", "-w", "k", "--json"]).stdout)["documents"]
    assert sorted(d["status"] for d in docs) == ["done", "done"]
    doc_id = next(d["doc_id"] for d in docs if d["source"].endswith("manual.pdf"))
    shown = json.loads(run(cli.app, ["docs", "show", doc_id[:8], "-w", "k", "--json"]).stdout)
    assert shown["chunks_indexed"] == shown["chunks"] and shown["kinds"]["table"] == 1
    assert run(cli.app, ["docs", "list", "-w", "k"]).exit_code == 0
    r = run(cli.app, ["docs", "delete", "manual.pdf", "nope", "-w", "k", "--json"])
    assert r.exit_code == 1
    assert [x["deleted"] for x in json.loads(r.stdout)["results"]] == [True, False]
    docs = json.loads(run(cli.app, ["docs", "list", "-w", "k", "--json"]).stdout)["documents"]
    assert [Path(d["source"]).name for d in docs] == ["notes.md"]
    r = run(cli.app, ["docs", "show", "missing", "-w", "k"])
    assert r.exit_code == 1 and "no document" in r.output


def test_cli_ingestor_writes_with_the_configured_graph_store_and_extractor(tmp_path: Path) -> None:
    # the ingest CLI built a default writer (SQLite graph + spaCy) whatever RAGENT_GRAPH_* said
    from retrieval.extract import LLMExtractor

    rt = Runtime(Settings(home=tmp_path / "var", graph_extractor="llm"),
                 overrides={"embedder": HashEmbedder(), "llm": FakeLLM(['{"entities": [], "relations": []}'])})
    try:
        writer = rt.ingestor(enrich=False).writer
        assert isinstance(writer.extractor, LLMExtractor) and writer.graph is rt.retriever.graph
    finally:
        rt.close()
