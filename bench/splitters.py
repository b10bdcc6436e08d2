"""Splitter benchmark: ragent's splitter (ingest/split.py: structure / lexical / semantic) against llama-index's
node parsers (SentenceSplitter, MarkdownNodeParser + SentenceSplitter for long nodes, SemanticSplitterNodeParser
over ragent's embedder) on retrieval quality and speed.

Quality. The dev sets' questions (HotpotQA, MuSiQue: the first ``--questions`` of each) with their own
paragraphs as the corpus; the paragraphs (shuffled, seed 0) are concatenated into documents of ``--per-doc``
passages, rendered two ways: ``md`` (each passage under a ``# title`` heading) and ``plain`` (each passage a
paragraph, its title on the first line, no markup), so a splitter must find the passage boundaries itself in
``plain``. Each splitter's chunks are written through ragent's IndexWriter (packaged MiniLM dense + BM25 sparse,
the configured default vector backend via ``build_index``: Qdrant Edge, no graph) and searched with ragent's dense +
sparse paths fused by RRF (no rerank). A gold passage counts as found at k when the top-k chunks together cover
>= 50% of its body text (chunks are located in the document by their text, whitespace and '#' ignored). recall@k =
mean over questions of found/gold.

Speed. Split time per corpus (ragent: parse + split of the rendered file, as the Ingestor does; llama-index: the
parser over a ``Document`` of the same text), including the splitters' own sentence embeddings for the semantic
ones; chunks/s. Also on two shared PDFs (ragent: PyMuPDF blocks; llama-index: ``pymupdf4llm.to_markdown``).

Sizes match: ragent ``chunk_chars=1200``; llama-index ``chunk_size=256`` tokens (~1,100 chars), overlap 32.

Run: .venv/bin/python bench/splitters.py [--questions 50] [--per-doc 10] [--only ragent-lexical,li-sentence]
                                         [--skip-pdfs | --pdfs-only]
Writes bench/results/splitters.json and prints tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
PDFS = [DATA / "pdfs" / "papers" / "1706.03762v7.pdf", DATA / "pdfs" / "layout" / "sources" / "redp5110_sampled.pdf"]
KS = (5, 10)
CHUNK_CHARS = 1200
LI_TOKENS, LI_OVERLAP = 256, 32
SPLITTERS = ("ragent-structure", "ragent-lexical", "ragent-semantic", "li-sentence", "li-markdown", "li-semantic")


class CachedEmbedder:
    """Chunk and query vectors memoised by text (many chunks recur across splitters); splitters get the raw one."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.cache: dict[str, np.ndarray] = {}

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if new:
            for t, v in zip(new, self.inner.embed_batch(new), strict=True):
                self.cache[t] = np.asarray(v, dtype=np.float32)
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


# ---- corpus ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Passage:
    pid: int
    title: str
    text: str


@dataclass
class Doc:
    name: str
    text: str
    spans: list[tuple[int, int, int]]  # (pid, start, end) of each passage body in ``text``


def load(name: str, n: int) -> tuple[list[Passage], list[tuple[str, set[int]]]]:
    """The first ``n`` questions and their own paragraphs (deduplicated); gold = the supporting ones."""
    qs = json.loads((DATA / "multihop" / f"{name}_100.json").read_text())[:n]
    ids: dict[tuple[str, str], int] = {}
    questions = []
    for q in qs:
        if name == "musique":
            paras = [(p["title"], p["paragraph_text"], p["is_supporting"]) for p in q["paragraphs"]]
        else:
            gold_titles = {t for t, _ in q["supporting_facts"]}
            paras = [(t, "".join(s).strip(), t in gold_titles) for t, s in q["context"]]
        gold = set()
        for title, text, sup in paras:
            pid = ids.setdefault((title, text), len(ids))
            if sup:
                gold.add(pid)
        questions.append((q["question"], gold))
    passages = [Passage(pid, t, x) for (t, x), pid in ids.items()]
    return passages, questions


def render(passages: list[Passage], per_doc: int, style: str) -> list[Doc]:
    order = passages[:]
    random.Random(0).shuffle(order)
    docs = []
    for i in range(0, len(order), per_doc):
        text, spans = "", []
        for p in order[i : i + per_doc]:
            text += (f"# {p.title}\n\n" if style == "md" else f"{p.title}\n")
            spans.append((p.pid, len(text), len(text) + len(p.text)))
            text += p.text + "\n\n"
        docs.append(Doc(f"doc{i // per_doc:03d}", text, spans))
    return docs


_SKIP = re.compile(r"[\s#]")


class Locator:
    """Finds a chunk's span in its document, ignoring whitespace and '#' (splitters re-join and strip them)."""

    def __init__(self, text: str) -> None:
        self.idx = [i for i, ch in enumerate(text) if not _SKIP.match(ch)]
        self.flat = "".join(text[i] for i in self.idx)

    def find(self, chunk: str) -> tuple[int, int] | None:
        flat = _SKIP.sub("", chunk)
        if not flat:
            return None
        at = self.flat.find(flat)
        if at >= 0:
            return self.idx[at], self.idx[at + len(flat) - 1] + 1
        head, tail = flat[:60], flat[-60:]  # a splitter that altered the middle: locate by both ends
        a = self.flat.find(head)
        b = self.flat.find(tail, max(a, 0))
        if a >= 0 and b >= a:
            return self.idx[a], self.idx[b + len(tail) - 1] + 1
        return None


def passages_found(located: list[tuple[Doc, tuple[int, int] | None]], gold: set[int], lens: dict[int, int]) -> float:
    """Share of the ``gold`` passages that the hits cover: ``located`` is each hit's document and its span in that
    document's text (None: the chunk was not found there); a passage counts as found when the hits together cover
    >= 50% of its body (``lens``: passage id -> body length). No gold: 0.0."""
    cover: dict[int, int] = {}
    for d, span in located:
        if span is None:
            continue
        for pid, a, b in d.spans:
            cover[pid] = cover.get(pid, 0) + max(0, min(b, span[1]) - max(a, span[0]))
    return sum(1 for pid in gold if cover.get(pid, 0) >= 0.5 * lens[pid]) / len(gold) if gold else 0.0


# ---- splitters -------------------------------------------------------------------------------------
def ragent_split(mode: str, embedder: Any) -> Callable[[Path, str], list[str]]:
    from core.types import content_id
    from ingest.parse import parse_file
    from ingest.pipeline import Ingestor

    ing = Ingestor(None, None, embedder, split_mode=mode, chunk_chars=CHUNK_CHARS)  # type: ignore[arg-type]

    def run(path: Path, text: str) -> list[str]:
        parsed = parse_file(path)
        return [c.text for c in ing.build_chunks(parsed, "bench", content_id(str(path)), str(path))]

    return run


def li_split(kind: str, embedder: Any) -> Callable[[Path, str], list[str]]:
    from llama_index.core import Document
    from llama_index.core.node_parser import MarkdownNodeParser, SemanticSplitterNodeParser, SentenceSplitter
    from llama_index.core.schema import MetadataMode

    from retrieval.llamaindex import RagentEmbedding

    sentence = SentenceSplitter(chunk_size=LI_TOKENS, chunk_overlap=LI_OVERLAP)
    parsers: list[Any]
    if kind == "li-sentence":
        parsers = [sentence]
    elif kind == "li-markdown":
        parsers = [MarkdownNodeParser(), sentence]  # long sections cut by the sentence splitter
    else:
        parsers = [SemanticSplitterNodeParser.from_defaults(embed_model=RagentEmbedding(embedder))]

    def run(path: Path, text: str) -> list[str]:
        nodes: list[Any] = [Document(text=text)]
        for p in parsers:
            nodes = p.get_nodes_from_documents(nodes)
        return [n.get_content(MetadataMode.NONE) for n in nodes]

    return run


def splitter(name: str, embedder: Any) -> Callable[[Path, str], list[str]]:
    return ragent_split(name.split("-", 1)[1], embedder) if name.startswith("ragent") else li_split(name, embedder)


# ---- one measurement -------------------------------------------------------------------------------
def measure(name: str, split: Callable[[Path, str], list[str]], docs: list[Doc], questions: list[tuple[str, set[int]]],
            emb: CachedEmbedder, tmp: Path, suffix: str) -> dict[str, Any]:
    from core.settings import RetrievalConfig, Settings
    from core.types import Chunk, content_id
    from retrieval.factory import build_index
    from retrieval.registry import DocRecord, Registry
    from retrieval.retriever import Retriever
    from retrieval.writer import IndexWriter

    files = []
    for d in docs:
        f = tmp / f"{d.name}{suffix}"
        f.write_text(d.text)
        files.append(f)
    warm = tmp / f"warm{suffix}"
    warm.write_text("Warm up\n\n" + " ".join(f"Sentence number {i} is here." for i in range(400)) + "\n")
    split(warm, warm.read_text())  # tokenizers and parsers load outside the timed region
    t = time.perf_counter()
    per_doc = [split(f, d.text) for f, d in zip(files, docs, strict=True)]
    split_s = time.perf_counter() - t
    chunks, spans, missed = [], {}, 0
    for d, texts in zip(docs, per_doc, strict=True):
        loc = Locator(d.text)
        doc_id = content_id("bench", d.name)
        for i, text in enumerate(texts):
            c = Chunk(id=content_id(doc_id, str(i), text), doc_id=doc_id, workspace="b", text=text, order=i)
            chunks.append(c)
            span = loc.find(text)
            missed += span is None
            spans[c.id] = (d, span)
    home = tmp / f"home-{name}"
    s = Settings(home=home)  # type: ignore[call-arg]
    index, reg = build_index(s.index), Registry(s.index.db_path)
    try:
        for d in docs:
            doc_id = content_id("bench", d.name)
            reg.put(DocRecord("b", doc_id, d.name, d.name, doc_id, "done"))
        t = time.perf_counter()
        IndexWriter(index, lambda ws: emb, graph=None).write("b", chunks)
        write_s = time.perf_counter() - t
        r = Retriever(index, emb, reg, config=RetrievalConfig(paths=("dense", "sparse"), candidates=max(KS)))
        found: dict[int, list[float]] = {k: [] for k in KS}
        lens = {pid: b - a for d in docs for pid, a, b in d.spans}
        t = time.perf_counter()

        async def search_all() -> list[list[Any]]:
            return [await r.search("b", q, max(KS), paths=("dense", "sparse"), rerank=False) for q, _ in questions]

        results = asyncio.run(search_all())
        query_s = time.perf_counter() - t
        for (_, gold), hits in zip(questions, results, strict=True):
            for k in KS:
                found[k].append(passages_found([spans[h.chunk.id] for h in hits[:k]], gold, lens))
    finally:
        index.close()
        reg.close()
    sizes = [len(c.text) for c in chunks]
    return {
        "splitter": name, "docs": len(docs), "chunks": len(chunks), "unlocated_chunks": missed,
        "chunk_chars_mean": round(statistics.mean(sizes)), "chunk_chars_p90": int(np.percentile(sizes, 90)),
        "split_s": round(split_s, 2), "chunks_per_s": round(len(chunks) / split_s, 1) if split_s else None,
        "write_s": round(write_s, 1), "query_s": round(query_s, 1),
        **{f"recall@{k}": round(100 * statistics.mean(found[k]), 1) for k in KS},
    }


def pdf_speed(name: str, embedder: Any) -> dict[str, Any]:
    """Split speed on the shared PDFs: ragent from PyMuPDF blocks, llama-index from pymupdf4llm's Markdown (each
    parse is timed apart: it is not the splitter's)."""
    from core.types import content_id
    from ingest.parse import parse_file
    from ingest.pipeline import Ingestor

    out: dict[str, Any] = {"splitter": name, "pdfs": [p.name for p in PDFS]}
    pages = chunks = 0
    parse_s = split_s = 0.0
    li = None if name.startswith("ragent") else li_split(name, embedder)
    if li is not None:  # tokenizers (tiktoken, NLTK punkt) load outside the timed region
        li(PDFS[0], "Warm up\n\n" + " ".join(f"Sentence number {i} is here." for i in range(400)))
    for pdf in PDFS:
        t = time.perf_counter()
        if name.startswith("ragent"):
            parsed = parse_file(pdf)
            pages += parsed.pages
            t1 = time.perf_counter()
            ing = Ingestor(None, None, embedder, split_mode=name.split("-", 1)[1],  # type: ignore[arg-type]
                           chunk_chars=CHUNK_CHARS)
            n = len(ing.build_chunks(parsed, "bench", content_id(str(pdf)), str(pdf)))
        else:
            import pymupdf4llm

            md = pymupdf4llm.to_markdown(str(pdf), show_progress=False)
            t1 = time.perf_counter()
            assert li is not None
            n = len(li(pdf, md))
        t2 = time.perf_counter()
        parse_s += t1 - t
        split_s += t2 - t1
        chunks += n
    out.update(pages=pages or None, chunks=chunks, parse_s=round(parse_s, 2), split_s=round(split_s, 2),
               chunks_per_s=round(chunks / split_s, 1) if split_s else None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=50, help="questions per dataset (their paragraphs = corpus)")
    ap.add_argument("--per-doc", type=int, default=10, help="passages per document")
    ap.add_argument("--datasets", default="hotpotqa,musique")
    ap.add_argument("--styles", default="md,plain")
    ap.add_argument("--only", default=",".join(SPLITTERS))
    ap.add_argument("--skip-pdfs", action="store_true")
    ap.add_argument("--pdfs-only", action="store_true", help="only the PDF speed table (keeps the corpus runs)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "splitters.json"))
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rich.console import Console
    from rich.table import Table

    from core.embedder import SentenceTransformerEmbedder

    con = Console(width=150)
    raw = SentenceTransformerEmbedder()
    raw.embed_batch(["warm up"])
    emb = CachedEmbedder(raw)
    names = [n for n in a.only.split(",") if n]
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()},
                              "args": vars(a), "started": time.time(), "corpora": [], "runs": [], "pdfs": []}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if a.pdfs_only and out.exists():
        previous = json.loads(out.read_text())
        result.update(corpora=previous.get("corpora", []), runs=previous.get("runs", []),
                      args_corpora=previous.get("args"))
    for ds in a.datasets.split(",") if not a.pdfs_only else ():
        passages, questions = load(ds, a.questions)
        for style in a.styles.split(","):
            docs = render(passages, a.per_doc, style)
            corpus = f"{ds}/{style}"
            result["corpora"].append({"corpus": corpus, "questions": len(questions), "passages": len(passages),
                                      "docs": len(docs), "chars": sum(len(d.text) for d in docs)})
            for name in names:
                with tempfile.TemporaryDirectory() as tmp:
                    r = measure(name, splitter(name, raw), docs, questions, emb, Path(tmp),
                                ".md" if style == "md" else ".txt")
                r["corpus"] = corpus
                result["runs"].append(r)
                out.write_text(json.dumps(result, indent=1))
                con.print(r, highlight=False)
    if not a.skip_pdfs:
        for name in names:
            result["pdfs"].append(pdf_speed(name, raw))
            con.print(result["pdfs"][-1], highlight=False)
    result["machine"]["load_avg_end"] = os.getloadavg()
    out.write_text(json.dumps(result, indent=1))

    t = Table("corpus", "splitter", "chunks", "chars mean", "recall@5", "recall@10", "split s", "chunks/s",
              title="splitters: retrieval (ragent dense + sparse, RRF) and split speed")
    for r in result["runs"]:
        t.add_row(r["corpus"], r["splitter"], str(r["chunks"]), str(r["chunk_chars_mean"]), f"{r['recall@5']:.1f}",
                  f"{r['recall@10']:.1f}", f"{r['split_s']:.2f}", f"{r['chunks_per_s']}")
    con.print(t)
    if result["pdfs"]:
        t = Table("splitter", "pages", "chunks", "parse s", "split s", "chunks/s", title="split speed on PDFs")
        for r in result["pdfs"]:
            t.add_row(r["splitter"], str(r["pages"]), str(r["chunks"]), f"{r['parse_s']:.2f}", f"{r['split_s']:.2f}",
                      f"{r['chunks_per_s']}")
        con.print(t)
    con.print(f"wrote {out}")


if __name__ == "__main__":
    main()
