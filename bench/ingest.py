"""Ingest benchmark: extraction quality against ground truth and end-to-end throughput.

Quality (no models): ICDAR 2013 table cell F1 (all PDFs with a ``*-str.xml``), docling layout text recall,
image count on MTRAG-UN-arxiv.pdf.
Throughput: ``Ingestor.ingest`` end to end (parse + split + embed + index, no enrichment) with the packaged
MiniLM and the configured default vector backend (``retrieval.factory.build_index``: Qdrant Edge, the embedded
default) in a fresh temp home, on ../shared/data/pdfs (all) and a long real manual
(asymptote.pdf: ``cd /tmp && apt-get download asymptote-doc && dpkg-deb -x asymptote-doc_*.deb asy``),
with a per-stage profile (embedding time measured inside the embedder). ``--prefetch both`` runs each
throughput row with parse prefetch off and on (``RAGENT_INGEST_PREFETCH``: the next file parsed in a worker process
while this one is split, embedded and written), one after the other, each in a fresh home with its models loaded
outside the timed region; every row records ``prefetch`` (with it on, "parse" is the wait for the worker), and the
"on" row of a pair holds ``speedup_vs_off`` (wall seconds off / on).

Side by side (``--peer``): on the same PDFs in one run, each in its own process (so peak RSS is its own), the
pipeline a user would script in an afternoon -- ``pymupdf4llm.to_markdown`` (per page) -> llama-index
``MarkdownNodeParser`` -> ``SentenceSplitter`` (256 tokens, overlap 32) -> the same MiniLM encoder (ragent's
core embedder, ONNX) -> Qdrant local mode via qdrant-client (dense vectors only; kept as is: it is what a user
scripts) -- against ragent's ``Ingestor`` (into ``build_index``'s backend, Qdrant Edge by default) with the
graph (spaCy entities, entity-name vectors) deferred (the default: searchable after the dense + sparse write, the
graph stage follows) and inline. Pages/s, chunks/s, seconds until every document is searchable and until the
graph is complete, peak RSS; model loading is outside the timed region in every pipeline. ``--peer-pdfs PATH...``
runs the side by side on the given PDFs instead of the shared ones (e.g. the 311-page gnuplot manual: ``cd /tmp &&
apt-get download gnuplot-doc && mkdir -p gp && dpkg-deb -x gnuplot-doc_*.deb gp``, then
``--peer-pdfs /tmp/gp/usr/share/doc/gnuplot/gnuplot.pdf``); written under ``peer_pdfs``, keyed by the file names.

Retrieval quality side by side (``--peer-quality``, ``peer_quality``): both pipelines ingest the same files into
fresh stores and answer the same queries, the scripted one with its dense top-k from Qdrant (as the user's script
searches), ragent with ``ragent search``'s defaults (a Runtime: dense + BM25 + graph, RRF, cross-encoder rerank).
``hotpotqa/md``: the first ``--peer-questions`` HotpotQA questions over their own paragraphs rendered as Markdown
documents of ``--peer-per-doc`` passages (bench/splitters.py's corpus and recall@k: a gold passage is found when the
top-k chunks cover half of it). ``icdar2013``: the ICDAR 2013 PDFs with one question per table ("<row header>
<column header>" of a value cell, ``table_queries``); page@k = a top-k chunk on the table's page of that PDF,
cell@k = such a chunk also holding the row header and the value.

Run: .venv/bin/python bench/ingest.py [--skip-quality] [--skip-throughput] [--split lexical,semantic]
                                      [--embed-backend onnx,torch] [--prefetch off|on|both]
                                      [--peer [--peer-files GLOB | --peer-pdfs PATH...]]
                                      [--peer-quality [--peer-questions 100] [--peer-tables N]]
Writes bench/results/ingest.json (a skipped section keeps its previous figures) and prints tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "pdfs"
ASY = Path("/tmp/asy/usr/share/doc/asymptote/asymptote.pdf")


class TimingEmbedder:
    """Wraps an embedder and accounts the seconds and texts spent in it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.seconds = 0.0
        self.texts = 0
        self.chars = 0

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        t = time.perf_counter()
        out = self.inner.embed_batch(texts)
        self.seconds += time.perf_counter() - t
        self.texts += len(texts)
        self.chars += sum(len(x) for x in texts)
        return np.asarray(out)


def quality() -> dict[str, Any]:
    from ingest.blocks import readable_doc
    from ingest.pdf import parse_pdf as parse_raw
    from ingest.quality import cell_f1, icdar_cells, text_recall

    def parse_pdf(path: Path, **kw: Any) -> Any:  # what ingest.parse.parse_file returns for a PDF
        return readable_doc(parse_raw(path, **kw))

    icdar = []
    for xml in sorted((SHARED / "tables" / "icdar2013").glob("*/*-str.xml")):
        pdf = xml.with_name(xml.name[: -len("-str.xml")] + ".pdf")
        if not pdf.exists():
            continue
        t = time.perf_counter()
        doc = parse_pdf(pdf, images=False)
        pred = [c for b in doc.blocks if b.kind == "table" for row in b.cells for c in row]
        icdar.append({"doc": pdf.stem, "pages": doc.pages, "f1": round(cell_f1(icdar_cells(xml), pred), 3),
                      "tables_found": sum(b.kind == "table" for b in doc.blocks),
                      "seconds": round(time.perf_counter() - t, 2)})
    found = [r["f1"] for r in icdar if r["tables_found"]]
    layout = []
    for pdf in sorted((SHARED / "layout" / "sources").glob("*.pdf")):
        gt = SHARED / "layout" / "groundtruth" / f"{pdf.stem}.md"
        if gt.exists():
            doc = parse_pdf(pdf, images=False)
            recall = text_recall(gt.read_text(), doc.text)
            layout.append({"doc": pdf.stem, "pages": doc.pages, "recall": round(recall, 3)})
    with tempfile.TemporaryDirectory() as tmp:
        mt = parse_pdf(SHARED / "papers" / "MTRAG-UN-arxiv.pdf", files_dir=Path(tmp))
        kept = [b for b in mt.blocks if b.kind == "image"]
        saved = len(list(Path(tmp).glob("*.png")))
    return {
        "icdar2013": {"docs": len(icdar), "mean_f1_all": round(statistics.mean(r["f1"] for r in icdar), 3),
                      "docs_with_tables_found": len(found),
                      "mean_f1_where_found": round(statistics.mean(found), 3) if found else 0.0,
                      "docs_f1_ge_0.8": sum(r["f1"] >= 0.8 for r in icdar), "per_doc": icdar},
        "docling_text_recall": {"mean": round(statistics.mean(r["recall"] for r in layout), 3), "per_doc": layout},
        "mtrag_images": {"in_pdf": mt.images_seen, "kept": len(kept), "saved_png": saved,
                         "expected_per_readme": 22},
    }


def throughput(label: str, files: list[Path], split_mode: str, backend: str = "onnx",
               prefetch: bool = False) -> dict[str, Any]:
    from core.embedder import SentenceTransformerEmbedder
    from core.settings import Settings
    from ingest.pipeline import Ingestor
    from retrieval.factory import build_graph_store, build_index
    from retrieval.registry import Registry
    from retrieval.writer import IndexWriter

    emb = TimingEmbedder(SentenceTransformerEmbedder(backend=backend))  # type: ignore[arg-type]
    emb.inner.embed_batch(["warm up"])  # load (and export to ONNX) outside the timed region
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(home=Path(tmp))
        index, reg = build_index(s.index), Registry(s.index.db_path)
        graph = build_graph_store(s.retrieval, s.index.db_path.parent)  # the embedded SQLite graph, as ragent's
        writer = IndexWriter(index, lambda ws: emb, graph=graph)
        ing = Ingestor(index, reg, emb, home=s.home, split_mode=split_mode, index_writer=writer, prefetch=prefetch)
        t = time.perf_counter()
        res = ing.ingest(files, "bench")
        wall = time.perf_counter() - t
        points = index.count("bench")
        graph.close()
        index.close()
        reg.close()
    pages = sum(r.pages for r in res if r.status == "ingested")
    chunks = sum(r.chunks for r in res)
    stages = {k: round(v, 2) for k, v in ing.timings.items()}
    return {
        "label": label, "split_mode": split_mode, "embed_backend": backend, "prefetch": prefetch, "files": len(files),
        "failed": [(Path(r.path).name, r.error) for r in res if r.status == "failed"],
        "pages": pages, "chunks": chunks, "points": points, "seconds": round(wall, 2),
        "pages_per_s": round(pages / wall, 2), "chunks_per_s": round(chunks / wall, 2),
        "stages_s": stages, "embed_s": round(emb.seconds, 2), "embed_texts": emb.texts, "embed_chars": emb.chars,
        "embed_texts_per_s": round(emb.texts / emb.seconds, 1) if emb.seconds else 0.0,
        "embed_share": round(emb.seconds / wall, 3),
    }


PEER_PIPELINES = ("scripted", "ragent", "ragent-inline-graph")


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    info = Path("/proc/cpuinfo")
    for line in info.read_text().splitlines() if info.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def scripted_pipeline(files: list[Path], home: Path, queries: list[str] | None = None, k: int = 10) -> dict[str, Any]:
    """What a user scripts: pymupdf4llm Markdown per page (a non-PDF file: its text, as page 1) ->
    MarkdownNodeParser -> SentenceSplitter -> MiniLM -> Qdrant local mode (one dense vector per node, payload text +
    source + page). With ``queries``: each one's dense top-``k`` after the ingest, as the user's script searches
    (``hits``: per query, (file stem, page, text) per hit)."""
    import uuid

    import pymupdf4llm
    from llama_index.core import Document
    from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter
    from llama_index.core.schema import MetadataMode
    from qdrant_client import QdrantClient, models

    from core.embedder import SentenceTransformerEmbedder

    emb = TimingEmbedder(SentenceTransformerEmbedder())
    emb.inner.embed_batch(["warm up"])
    md_parser, sentence = MarkdownNodeParser(), SentenceSplitter(chunk_size=256, chunk_overlap=32)
    sentence.get_nodes_from_documents(md_parser.get_nodes_from_documents(
        [Document(text="# Warm up\n\n" + " ".join(f"Sentence {i} loads the tokenizers." for i in range(400)),
                  metadata={"source": "w", "page": 1})]))
    client = QdrantClient(path=str(home / "qdrant"))
    client.create_collection("docs", vectors_config=models.VectorParams(size=emb.dim, distance=models.Distance.COSINE))
    stages = {"parse": 0.0, "split": 0.0, "write": 0.0}
    pages = chunks = 0
    t0 = time.perf_counter()
    for f in files:
        t = time.perf_counter()
        if f.suffix == ".pdf":
            page_mds: list[dict[str, Any]] = pymupdf4llm.to_markdown(  # type: ignore[assignment]
                str(f), page_chunks=True, show_progress=False)
        else:
            page_mds = [{"text": f.read_text(), "metadata": {"page": 1}}]
        stages["parse"] += time.perf_counter() - t
        t = time.perf_counter()
        docs = [Document(text=p["text"], metadata={"source": f.name, "page": p["metadata"]["page"]})
                for p in page_mds if p["text"].strip()]
        nodes = sentence.get_nodes_from_documents(md_parser.get_nodes_from_documents(docs))
        stages["split"] += time.perf_counter() - t
        t = time.perf_counter()
        for i in range(0, len(nodes), 64):
            part = nodes[i : i + 64]
            vecs = emb.embed_batch([n.get_content(MetadataMode.NONE) for n in part])
            client.upsert("docs", [models.PointStruct(id=str(uuid.uuid4()), vector=v.tolist(),
                                                      payload={"text": n.get_content(MetadataMode.NONE), **n.metadata})
                                   for n, v in zip(part, vecs, strict=True)])
        stages["write"] += time.perf_counter() - t
        pages += len(page_mds)
        chunks += len(nodes)
    wall = time.perf_counter() - t0
    points = client.count("docs").count
    hits: list[list[tuple[str, int | None, str]]] = []
    t = time.perf_counter()
    for q in queries or []:
        found = client.query_points("docs", query=emb.embed_batch([q])[0].tolist(), limit=k).points
        hits.append([(Path(p.payload["source"]).stem, p.payload.get("page"), p.payload["text"])
                     for p in found if p.payload])
    query_s = time.perf_counter() - t
    client.close()
    return {"pages": pages, "chunks": chunks, "points": points, "seconds": wall, "stages_s": stages,
            "embed_s": emb.seconds, "embed_texts": emb.texts, "hits": hits, "query_s": query_s}


def ragent_pipeline(files: list[Path], home: Path, graph_stage: str) -> dict[str, Any]:
    """ragent's Ingestor as ``ragent ingest`` runs it (graph with spaCy; the vectors in ``build_index``'s backend,
    Qdrant Edge by default): ``deferred`` (the default: every file is
    searchable after its dense + sparse write, the graph stage follows) or ``inline`` (graph per batch of chunks
    before the file turns searchable). ``searchable`` is when the graph stage starts (or the end, inline)."""
    from core.embedder import SentenceTransformerEmbedder
    from core.settings import Settings
    from ingest.pipeline import Ingestor
    from retrieval.factory import build_graph_store, build_index
    from retrieval.registry import Registry
    from retrieval.writer import IndexWriter

    emb = TimingEmbedder(SentenceTransformerEmbedder())
    emb.inner.embed_batch(["warm up"])
    s = Settings(home=home)  # type: ignore[call-arg]
    index, reg = build_index(s.index), Registry(s.index.db_path)
    graph = build_graph_store(s.retrieval, s.index.db_path.parent)
    writer = IndexWriter(index, lambda ws: emb, graph=graph)
    writer.extractor.extract([])  # spaCy loads outside the timed region, as the encoder does
    marks: dict[str, float] = {}

    def progress(event: str, n: int) -> None:
        if event == "graph_chunks":
            marks.setdefault("searchable", time.perf_counter())

    ing = Ingestor(index, reg, emb, home=s.home, index_writer=writer, progress=progress,
                   graph_stage=graph_stage)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    res = ing.ingest(files, "bench")
    wall = time.perf_counter() - t0
    points = index.count("bench")
    graph.close()
    index.close()
    reg.close()
    return {"pages": sum(r.pages for r in res if r.status == "ingested"), "chunks": sum(r.chunks for r in res),
            "points": points, "seconds": wall, "searchable_s": marks.get("searchable", t0 + wall) - t0,
            "stages_s": dict(ing.timings), "embed_s": emb.seconds, "embed_texts": emb.texts,
            "failed": [Path(r.path).name for r in res if r.status == "failed"]}


def peer_worker(name: str, list_file: Path) -> None:
    """One pipeline in this process; prints its figures as the last line of JSON."""
    files = [Path(x) for x in list_file.read_text().split("\n") if x]
    with tempfile.TemporaryDirectory() as tmp:
        if name == "scripted":
            r = scripted_pipeline(files, Path(tmp))
        else:
            r = ragent_pipeline(files, Path(tmp), "inline" if name == "ragent-inline-graph" else "deferred")
    for key in ("hits", "query_s"):  # the speed run asks no queries
        r.pop(key, None)
    wall = r["seconds"]
    ready = r.get("searchable_s", wall)
    r.update(pipeline=name, files=len(files), seconds=round(wall, 2), pages_per_s=round(r["pages"] / wall, 2),
             chunks_per_s=round(r["chunks"] / wall, 2), searchable_s=round(ready, 2),
             searchable_pages_per_s=round(r["pages"] / ready, 2), peak_rss_mb=_peak_rss_mb(),
             stages_s={k: round(v, 2) for k, v in r["stages_s"].items()}, embed_s=round(r["embed_s"], 2))
    print(json.dumps(r))


def peer(files: list[Path]) -> dict[str, Any]:
    """Every pipeline of PEER_PIPELINES on ``files``, one process each, one after the other."""
    runs = []
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(str(f) for f in files))
    try:
        for name in PEER_PIPELINES:
            proc = subprocess.run([sys.executable, __file__, "--peer-worker", name, "--peer-list", fh.name],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
            runs.append({**json.loads(proc.stdout.strip().splitlines()[-1]), "load_avg_end": os.getloadavg()})
            print(runs[-1], flush=True)
    finally:
        Path(fh.name).unlink()
    return {"files": len(files), "load_avg_end": os.getloadavg(), "runs": runs}


# ---- retrieval quality of both pipelines on the same queries (--peer-quality) ------------------------------------
QUALITY_KS = (5, 10)
Hit = tuple[str, int | None, str]  # (file stem, 1-based page or None, chunk text)


@dataclass(frozen=True)
class TableQuery:
    """A table question over an ICDAR 2013 PDF: a value cell's row header + column header."""

    query: str
    doc: str  # the PDF's file stem
    pages: tuple[int, ...]  # 1-based pages of the table's regions
    row: str  # the row header
    value: str  # the cell the question is about


def table_queries(str_xml: Path, doc: str) -> list[TableQuery]:
    """One query per table of an ICDAR 2013 structure file (its first region): header rows are the rows before the
    first row (after row 0) whose first column holds text; a column's header is the text of the header cells that
    span it, top to bottom; the query is "<row header> <column header>" of the middle data row that has a value in
    the first column (from the second) with a header. Example (eu-001, table 1): "Benzene to air kg/year THRESHOLD
    FOR RELEASES" -> the value of that cell; gold = the table's pages of ``doc``. Tables without such a cell give
    none."""
    import xml.etree.ElementTree as ET

    out = []
    for table in ET.parse(str_xml).getroot().iter("table"):
        regions = table.findall("region")
        if not regions:
            continue
        pages = tuple(sorted({int(r.get("page", "1")) for r in regions}))
        cells = []
        for c in regions[0].iter("cell"):
            r0, c0 = int(c.get("start-row", "0")), int(c.get("start-col", "0"))
            cells.append((r0, c0, int(c.get("end-col", c0)), " ".join((c.findtext("content") or "").split())))
        heads = {r: t for r, c, _, t in cells if c == 0 and t and r > 0}
        if not heads:
            continue
        first_data = min(heads)
        values = {(r, c): t for r, c, _, t in cells if t and r >= first_data}
        for col in sorted({c for _, c, _, _ in cells if c > 0}):
            header = " ".join(t for r, c, e, t in sorted(cells) if r < first_data and c <= col <= e and t)
            rows = [r for r in sorted(heads) if (r, col) in values]
            if header and rows:
                row = rows[len(rows) // 2]
                out.append(TableQuery(f"{heads[row]} {header}", doc, pages, heads[row], values[(row, col)]))
                break
    return out


_FLAT = re.compile(r"<br\s*/?>|[\s|*#`_]")


def _flat(text: str) -> str:
    """Text without whitespace, Markdown table/emphasis marks and <br> (pymupdf4llm's line break in a cell)."""
    return _FLAT.sub("", text).lower()


def table_found(hits: list[Hit], q: TableQuery) -> tuple[bool, bool]:
    """(page, cell): some hit is on one of the table's pages of its PDF; some such hit also holds the row header
    and the value (whitespace and Markdown marks ignored), i.e. the chunk that answers the question."""
    on_page = [text for doc, page, text in hits if doc == q.doc and page in q.pages]
    row, value = _flat(q.row), _flat(q.value)
    return bool(on_page), any(row in _flat(t) and value in _flat(t) for t in on_page)


def ragent_search(files: list[Path], home: Path, queries: list[str], k: int) -> dict[str, Any]:
    """``ragent ingest`` then ``ragent search`` with default settings (a Runtime over a fresh home: dense + BM25 +
    graph, RRF, cross-encoder rerank; the graph stage complete before the first query)."""
    from app.runtime import Runtime
    from core.settings import Settings

    rt = Runtime(Settings(home=home))  # type: ignore[call-arg]
    try:
        rt.embedder.embed_batch(["warm up"])
        t = time.perf_counter()
        res = rt.ingestor().ingest(files, "bench")
        ingest_s = time.perf_counter() - t

        async def search_all() -> list[list[Hit]]:
            out = []
            for q in queries:
                hits = (await rt.retriever.run("bench", q, k=k)).hits
                out.append([(Path(h.chunk.source).stem, h.chunk.page, h.chunk.text) for h in hits])
            return out

        t = time.perf_counter()
        hits = asyncio.run(search_all())
        query_s = time.perf_counter() - t
    finally:
        rt.close()
    return {"chunks": sum(r.chunks for r in res), "seconds": ingest_s, "hits": hits, "query_s": query_s,
            "failed": [Path(r.path).name for r in res if r.status == "failed"]}


def peer_quality(questions: int, per_doc: int, tables: int | None) -> dict[str, Any]:
    """Both pipelines (scripted: dense top-k; ragent: its default hybrid search) on the same queries:
    ``hotpotqa/md``: the first ``questions`` HotpotQA questions, their own paragraphs rendered as Markdown documents
    of ``per_doc`` passages (bench/splitters.py), recall@k as there; ``icdar2013``: one table question per table
    of the ICDAR 2013 PDFs (the first ``tables`` PDFs, all when None), page@k and cell@k (``table_found``)."""
    from bench.splitters import Locator, load, passages_found, render

    k = max(QUALITY_KS)
    sets: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        passages, qs = load("hotpotqa", questions)
        docs = render(passages, per_doc, "md")
        (root / "md").mkdir()
        md_files = []
        for d in docs:
            md_files.append(root / "md" / f"{d.name}.md")
            md_files[-1].write_text(d.text)
        by_name = {d.name: (d, Locator(d.text)) for d in docs}
        lens = {pid: b - a for d in docs for pid, a, b in d.spans}
        pdfs: list[Path] = []
        tqs: list[TableQuery] = []
        for xml in sorted((SHARED / "tables" / "icdar2013").glob("*/*-str.xml")):
            pdf = xml.with_name(xml.name[: -len("-str.xml")] + ".pdf")
            if pdf.exists() and (tables is None or len(pdfs) < tables):
                pdfs.append(pdf)
                tqs.extend(table_queries(xml, pdf.stem))
        for name, files, queries in (("hotpotqa/md", md_files, [q for q, _ in qs]),
                                     ("icdar2013", pdfs, [q.query for q in tqs])):
            if not files:  # --peer-tables 0: the HotpotQA side only
                continue
            entry: dict[str, Any] = {"set": name, "files": len(files), "queries": len(queries), "pipelines": []}
            for pipe in ("scripted", "ragent"):
                home = root / f"{name.replace('/', '-')}-{pipe}"
                home.mkdir()
                print(f"peer quality: {name} {pipe} ...", flush=True)
                r = (scripted_pipeline(files, home, queries, k) if pipe == "scripted"
                     else ragent_search(files, home, queries, k))
                row: dict[str, Any] = {"pipeline": pipe, "chunks": r["chunks"], "ingest_s": round(r["seconds"], 1),
                                       "query_s": round(r["query_s"], 1)}
                for kk in QUALITY_KS:
                    if name == "icdar2013":
                        found = [table_found(h[:kk], q) for h, q in zip(r["hits"], tqs, strict=True)]
                        row[f"page@{kk}"] = round(100 * statistics.mean(f[0] for f in found), 1)
                        row[f"cell@{kk}"] = round(100 * statistics.mean(f[1] for f in found), 1)
                    else:
                        row[f"recall@{kk}"] = round(100 * statistics.mean(
                            passages_found([(by_name[d][0], by_name[d][1].find(text)) for d, _, text in h[:kk]
                                            if d in by_name], gold, lens)
                            for h, (_, gold) in zip(r["hits"], qs, strict=True)), 1)
                entry["pipelines"].append(row)
                print(row, flush=True)
            sets.append(entry)
    return {"questions": questions, "per_doc": per_doc, "icdar_pdfs": len(pdfs), "sets": sets}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--split", default="lexical,semantic", help="comma-separated split modes to measure")
    ap.add_argument("--embed-backend", default="onnx", help="comma-separated embedding backends (onnx, torch)")
    ap.add_argument("--prefetch", choices=("off", "on", "both"), default="off",
                    help="throughput with parse prefetch off, on, or both side by side (each in a fresh home)")
    ap.add_argument("--also", default="shared/data/pdfs (all)",
                    help="corpora also measured with the later split modes (the first mode runs on all)")
    ap.add_argument("--peer", action="store_true", help="also run the side-by-side with a scripted pipeline")
    ap.add_argument("--peer-files", default="**/*.pdf", help="glob under ../shared/data/pdfs for --peer")
    ap.add_argument("--peer-pdfs", nargs="+", metavar="PATH",
                    help="--peer on these PDFs instead (written under peer_pdfs, keyed by the file names)")
    ap.add_argument("--peer-quality", action="store_true",
                    help="retrieval quality of the scripted pipeline and ragent on the same queries")
    ap.add_argument("--peer-questions", type=int, default=100, help="HotpotQA questions for --peer-quality")
    ap.add_argument("--peer-per-doc", type=int, default=10, help="passages per Markdown document (--peer-quality)")
    ap.add_argument("--peer-tables", type=int, default=None, help="first N ICDAR PDFs (--peer-quality; all; 0: none)")
    ap.add_argument("--peer-worker", choices=PEER_PIPELINES, help=argparse.SUPPRESS)
    ap.add_argument("--peer-list", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "ingest.json"))
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if a.peer_worker:
        peer_worker(a.peer_worker, Path(a.peer_list))
        return
    from rich.console import Console
    from rich.table import Table

    con = Console(width=160)
    out = Path(a.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                          "load_avg_start": os.getloadavg()}, "started": time.time()}
    for part in ("quality", "throughput", "peer", "peer_pdfs", "peer_quality"):  # a section not re-run: kept
        if part in previous:
            result[part] = previous[part]
    peer_only = a.skip_quality and a.skip_throughput  # --peer and/or --peer-quality
    if peer_only and "machine" in previous:  # the peer section records its own load; keep the others' context
        result.update(machine=previous["machine"], started=previous.get("started"))
    if not a.skip_quality:
        q = quality()
        result["quality"] = q
        t = Table("measure", "value", title="extraction quality")
        ic = q["icdar2013"]
        t.add_row("ICDAR 2013 cell F1, all docs", f"{ic['mean_f1_all']:.3f} ({ic['docs']} PDFs)")
        t.add_row("ICDAR 2013 cell F1, docs with a table found",
                  f"{ic['mean_f1_where_found']:.3f} ({ic['docs_with_tables_found']} PDFs)")
        t.add_row("ICDAR 2013 docs with F1 >= 0.8", str(ic["docs_f1_ge_0.8"]))
        t.add_row("docling text recall (mean)", f"{q['docling_text_recall']['mean']:.3f}")
        for r in q["docling_text_recall"]["per_doc"]:
            t.add_row(f"  {r['doc']}", f"{r['recall']:.3f}")
        m = q["mtrag_images"]
        t.add_row("MTRAG images in PDF / kept / saved", f"{m['in_pdf']} / {m['kept']} / {m['saved_png']}")
        con.print(t)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    if not a.skip_throughput:
        shared = sorted(SHARED.rglob("*.pdf"))
        modes = {"off": (False,), "on": (True,), "both": (False, True)}[a.prefetch]
        runs = []
        result["throughput"] = runs
        for backend in a.embed_backend.split(","):
            for sem in a.split.split(","):
                for label, files in (("shared/data/pdfs (all)", shared),
                                     ("asymptote.pdf", [ASY] if ASY.exists() else [])):
                    if not files or not (sem == a.split.split(",")[0] or label in a.also):
                        continue
                    for prefetch in modes:  # off, then on: the same PDFs, a fresh home each
                        runs.append(throughput(label, files, sem, backend, prefetch))
                        if len(modes) == 2 and prefetch:  # the side by side: wall seconds off / on
                            runs[-1]["speedup_vs_off"] = round(runs[-2]["seconds"] / runs[-1]["seconds"], 3)
                        Path(a.out).write_text(json.dumps(result, indent=1))  # keep what is done if interrupted
                        con.print(runs[-1], highlight=False)
        t = Table("corpus", "split", "embed", "prefetch", "pages", "chunks", "s", "pages/s", "parse s", "split s",
                  "write s", "embed s (share)", "embed texts/s",
                  title="end-to-end ingest (no enrichment; with prefetch, parse s = the wait for the worker)")
        for r in runs:
            st = r["stages_s"]
            t.add_row(r["label"], r["split_mode"], r.get("embed_backend", "torch"),
                      "on" if r.get("prefetch") else "off", str(r["pages"]), str(r["chunks"]),
                      f"{r['seconds']:.1f}", f"{r['pages_per_s']:.2f}", f"{st.get('parse', 0):.1f}",
                      f"{st.get('split', 0):.1f}", f"{st.get('write', 0):.1f}",
                      f"{r['embed_s']:.1f} ({r['embed_share']:.0%})", f"{r['embed_texts_per_s']:.1f}")
        con.print(t)
    if a.peer:
        files = [Path(f) for f in a.peer_pdfs] if a.peer_pdfs else sorted(SHARED.glob(a.peer_files))
        what = ", ".join(f.name for f in files) if a.peer_pdfs else a.peer_files
        p = {"started_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "cpu": _cpu_model(),
             "load_avg_start": os.getloadavg(), **peer(files)}
        if a.peer_pdfs:
            result["peer_pdfs"] = {**result.get("peer_pdfs", {}), what: {"pdfs": [str(f) for f in files], **p}}
        else:
            result["peer"] = p = {"glob": a.peer_files, **p}
        t = Table("pipeline", "pages", "chunks", "searchable s", "all done s", "pages/s", "chunks/s", "parse s",
                  "split s", "write s", "graph s", "embed s", "peak RSS MB",
                  title=f"side by side on {len(files)} PDFs ({what})")
        for r in p["runs"]:
            st = r["stages_s"]
            t.add_row(r["pipeline"], str(r["pages"]), str(r["chunks"]), f"{r['searchable_s']:.1f}",
                      f"{r['seconds']:.1f}",
                      f"{r['pages_per_s']:.2f}", f"{r['chunks_per_s']:.2f}", f"{st.get('parse', 0):.1f}",
                      f"{st.get('split', 0):.1f}", f"{st.get('write', 0):.1f}", f"{st.get('graph', 0):.1f}",
                      f"{r['embed_s']:.1f}", f"{r['peak_rss_mb']:.0f}")
        con.print(t)
    if a.peer_quality:
        result["peer_quality"] = pq = {"load_avg_start": os.getloadavg(), "started_utc": time.strftime(
            "%Y-%m-%d %H:%M", time.gmtime()), **peer_quality(a.peer_questions, a.peer_per_doc, a.peer_tables),
            "load_avg_end": os.getloadavg()}
        t = Table("set", "queries", "pipeline", "chunks", "recall@5 / page@5", "recall@10 / page@10", "cell@5",
                  "cell@10", "ingest s", "query s", title="retrieval quality on the same queries")
        for st in pq["sets"]:
            for r in st["pipelines"]:
                m = "recall" if "recall@5" in r else "page"
                t.add_row(st["set"], str(st["queries"]), r["pipeline"], str(r["chunks"]), f"{r[f'{m}@5']:.1f}",
                          f"{r[f'{m}@10']:.1f}", str(r.get("cell@5", "-")), str(r.get("cell@10", "-")),
                          f"{r['ingest_s']:.1f}", f"{r['query_s']:.1f}")
        con.print(t)
    if not peer_only:
        result["machine"]["load_avg_end"] = os.getloadavg()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    con.print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
