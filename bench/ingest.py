"""Ingest benchmark: extraction quality against ground truth and end-to-end throughput.

Quality (no models): ICDAR 2013 table cell F1 (all PDFs with a ``*-str.xml``), docling layout text recall,
image count on MTRAG-UN-arxiv.pdf.
Throughput: ``Ingestor.ingest`` end to end (parse + split + embed + index, no enrichment) with the packaged
MiniLM and Qdrant local mode in a fresh temp home, on ../shared/data/pdfs (all) and a long real manual
(asymptote.pdf: ``cd /tmp && apt-get download asymptote-doc && dpkg-deb -x asymptote-doc_*.deb asy``),
with a per-stage profile (embedding time measured inside the embedder).

Side by side (``--peer``): on the same PDFs in one run, each in its own process (so peak RSS is its own), the
pipeline a user would script in an afternoon -- ``pymupdf4llm.to_markdown`` (per page) -> llama-index
``MarkdownNodeParser`` -> ``SentenceSplitter`` (256 tokens, overlap 32) -> the same MiniLM encoder (ragent's
core embedder, ONNX) -> the same Qdrant local mode (dense vectors only) -- against ragent's ``Ingestor`` with the
graph (spaCy entities, entity-name vectors) deferred (the default: searchable after the dense + sparse write, the
graph stage follows) and inline. Pages/s, chunks/s, seconds until every document is searchable and until the
graph is complete, peak RSS; model loading is outside the timed region in every pipeline.

Run: .venv/bin/python bench/ingest.py [--skip-quality] [--skip-throughput] [--split lexical,semantic]
                                      [--embed-backend onnx,torch] [--peer [--peer-files GLOB]]
Writes bench/results/ingest.json (a skipped section keeps its previous figures) and prints tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
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
    from ingest.pdf import parse_pdf
    from ingest.quality import cell_f1, icdar_cells, text_recall

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


def throughput(label: str, files: list[Path], split_mode: str, backend: str = "onnx") -> dict[str, Any]:
    from core.embedder import SentenceTransformerEmbedder
    from core.settings import Settings
    from ingest.pipeline import Ingestor
    from retrieval.factory import build_graph_store
    from retrieval.index import QdrantIndex
    from retrieval.registry import Registry
    from retrieval.writer import IndexWriter

    emb = TimingEmbedder(SentenceTransformerEmbedder(backend=backend))  # type: ignore[arg-type]
    emb.inner.embed_batch(["warm up"])  # load (and export to ONNX) outside the timed region
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(home=Path(tmp))
        index, reg = QdrantIndex(s.index), Registry(s.index.db_path)
        graph = build_graph_store(s.retrieval, s.index.db_path.parent)  # the embedded SQLite graph, as ragent's
        writer = IndexWriter(index, lambda ws: emb, graph=graph)
        ing = Ingestor(index, reg, emb, home=s.home, split_mode=split_mode, index_writer=writer)
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
        "label": label, "split_mode": split_mode, "embed_backend": backend, "files": len(files),
        "failed": [(Path(r.path).name, r.error) for r in res if r.status == "failed"],
        "pages": pages, "chunks": chunks, "points": points, "seconds": round(wall, 2),
        "pages_per_s": round(pages / wall, 2), "chunks_per_s": round(chunks / wall, 2),
        "stages_s": stages, "embed_s": round(emb.seconds, 2), "embed_texts": emb.texts, "embed_chars": emb.chars,
        "embed_texts_per_s": round(emb.texts / emb.seconds, 1) if emb.seconds else 0.0,
        "embed_share": round(emb.seconds / wall, 3),
    }


PEER_PIPELINES = ("scripted", "ragent", "ragent-inline-graph")


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def scripted_pipeline(files: list[Path], home: Path) -> dict[str, Any]:
    """What a user scripts: pymupdf4llm Markdown per page -> MarkdownNodeParser -> SentenceSplitter -> MiniLM ->
    Qdrant local mode (one dense vector per node, payload text + source + page)."""
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
        page_mds = pymupdf4llm.to_markdown(str(f), page_chunks=True, show_progress=False)
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
    client.close()
    return {"pages": pages, "chunks": chunks, "points": points, "seconds": wall, "stages_s": stages,
            "embed_s": emb.seconds, "embed_texts": emb.texts}


def ragent_pipeline(files: list[Path], home: Path, graph_stage: str) -> dict[str, Any]:
    """ragent's Ingestor as ``ragent ingest`` runs it (graph with spaCy): ``deferred`` (the default: every file is
    searchable after its dense + sparse write, the graph stage follows) or ``inline`` (graph per batch of chunks
    before the file turns searchable). ``searchable`` is when the graph stage starts (or the end, inline)."""
    from core.embedder import SentenceTransformerEmbedder
    from core.settings import Settings
    from ingest.pipeline import Ingestor
    from retrieval.factory import build_graph_store
    from retrieval.index import QdrantIndex
    from retrieval.registry import Registry
    from retrieval.writer import IndexWriter

    emb = TimingEmbedder(SentenceTransformerEmbedder())
    emb.inner.embed_batch(["warm up"])
    s = Settings(home=home)  # type: ignore[call-arg]
    index, reg = QdrantIndex(s.index), Registry(s.index.db_path)
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
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(runs[-1], flush=True)
    finally:
        Path(fh.name).unlink()
    return {"files": len(files), "load_avg_end": os.getloadavg(), "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--split", default="lexical,semantic", help="comma-separated split modes to measure")
    ap.add_argument("--embed-backend", default="onnx", help="comma-separated embedding backends (onnx, torch)")
    ap.add_argument("--also", default="shared/data/pdfs (all)",
                    help="corpora also measured with the later split modes (the first mode runs on all)")
    ap.add_argument("--peer", action="store_true", help="also run the side-by-side with a scripted pipeline")
    ap.add_argument("--peer-files", default="**/*.pdf", help="glob under ../shared/data/pdfs for --peer")
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
    for part in ("quality", "throughput", "peer"):  # a section not re-run keeps its last figures
        if part in previous:
            result[part] = previous[part]
    peer_only = a.skip_quality and a.skip_throughput
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
        runs = []
        result["throughput"] = runs
        for backend in a.embed_backend.split(","):
            for sem in a.split.split(","):
                for label, files in (("shared/data/pdfs (all)", shared),
                                     ("asymptote.pdf", [ASY] if ASY.exists() else [])):
                    if files and (sem == a.split.split(",")[0] or label in a.also):
                        runs.append(throughput(label, files, sem, backend))
                        Path(a.out).write_text(json.dumps(result, indent=1))  # keep what is done if interrupted
                        con.print(runs[-1], highlight=False)
        t = Table("corpus", "split", "embed", "pages", "chunks", "s", "pages/s", "parse s", "split s", "write s",
                  "embed s (share)", "embed texts/s", title="end-to-end ingest (no enrichment)")
        for r in runs:
            st = r["stages_s"]
            t.add_row(r["label"], r["split_mode"], r.get("embed_backend", "torch"), str(r["pages"]), str(r["chunks"]),
                      f"{r['seconds']:.1f}", f"{r['pages_per_s']:.2f}", f"{st.get('parse', 0):.1f}",
                      f"{st.get('split', 0):.1f}", f"{st.get('write', 0):.1f}",
                      f"{r['embed_s']:.1f} ({r['embed_share']:.0%})", f"{r['embed_texts_per_s']:.1f}")
        con.print(t)
    if a.peer:
        files = sorted(SHARED.glob(a.peer_files))
        result["peer"] = p = {"glob": a.peer_files, "load_avg_start": os.getloadavg(), **peer(files)}
        t = Table("pipeline", "pages", "chunks", "searchable s", "all done s", "pages/s", "chunks/s", "parse s",
                  "split s", "write s", "graph s", "embed s", "peak RSS MB",
                  title=f"side by side on {len(files)} PDFs ({a.peer_files})")
        for r in p["runs"]:
            st = r["stages_s"]
            t.add_row(r["pipeline"], str(r["pages"]), str(r["chunks"]), f"{r['searchable_s']:.1f}",
                      f"{r['seconds']:.1f}",
                      f"{r['pages_per_s']:.2f}", f"{r['chunks_per_s']:.2f}", f"{st.get('parse', 0):.1f}",
                      f"{st.get('split', 0):.1f}", f"{st.get('write', 0):.1f}", f"{st.get('graph', 0):.1f}",
                      f"{r['embed_s']:.1f}", f"{r['peak_rss_mb']:.0f}")
        con.print(t)
    if not peer_only:
        result["machine"]["load_avg_end"] = os.getloadavg()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    con.print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
