"""Multimodal benchmark (#16): scanned vs text PDFs, and text that only figures carry.

1. Scanned vs text: each shared PDF is rendered at 200 dpi into an image-only PDF (no text layer) and both are
   parsed and ingested (real MiniLM, Qdrant local mode). Reported: OCR character error rate of the parsed text
   against the text layer's (same parser, same reading order), OCR pages/s on this machine, and the overlap of the
   top-5 (document, page) hits for the same 50 queries (sentences sampled from the text version, seeded).
2. Figures: how many figures/images become chunks with real text (caption, OCR text, words drawn inside), and
   gold-page@5 on 20 hand-written questions about what the figures show, against the same corpus ingested the
   way ragent did before #16 (no OCR, no vector figures).

3. Scanned tables (``--scanned-tables``): the ICDAR 2013 pages that hold a gold table, as they are and rendered
   image-only at 200 dpi; cell F1 of the table blocks parsed from each against the gold cells (ingest.quality),
   so the OCR route's table reading is measured beside the text layer's on the same pages.

Usage: .venv/bin/python bench/multimodal.py [--queries 50] -> bench/results/multimodal.json + a table
       .venv/bin/python bench/multimodal.py --scanned-tables [--docs N]: only section 3, written into the same
       JSON (``scanned_tables``)
       .venv/bin/python bench/multimodal.py --counts-only: only the figures/tables found vs present (seconds),
       written into the same JSON (the other sections keep their last run)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "pdfs"
OUT = ROOT / "bench" / "results" / "multimodal.json"
DOCS = [ROOT / "examples" / "northwind-field-manual.pdf", SHARED / "papers" / "1706.03762v7.pdf",
        SHARED / "papers" / "MTRAG-UN-arxiv.pdf"] + [SHARED / "layout" / "sources" / f"{n}.pdf" for n in (
            "amt_handbook_sample", "code_and_formula", "multi_page", "picture_classification", "redp5110_sampled")]

# (document stem, gold pages, question): what the figure shows; the key words are drawn or printed inside it
FIGURE_QUESTIONS: list[tuple[str, list[int], str]] = [
    ("1706.03762v7", [3], "Which blocks are stacked N times in the Transformer diagram, such as Add & Norm and "
                          "Feed Forward?"),
    ("1706.03762v7", [4], "In the scaled dot-product attention diagram, what optional Mask step comes after Scale "
                          "and before SoftMax?"),
    ("1706.03762v7", [4], "In the multi-head attention diagram, which step joins the heads with Concat before the "
                          "Linear layer?"),
    ("1706.03762v7", [13], "Which example sentence about American governments passing new laws since 2009 is shown "
                           "in the attention visualization?"),
    ("1706.03762v7", [14, 15], "Which sentence begins 'The Law will never be perfect' in the attention head "
                               "visualizations?"),
    ("1706.03762v7", [14], "How do heads 5 and 6 attend from the word its in 'its application should be just'?"),
    ("1706.03762v7", [13], "Which word's attention completes the phrase making the registration or voting process "
                           "more difficult?"),
    ("MTRAG-UN-arxiv", [1], "Which fast food chains does the assistant list, like In-N-Out Burger or Jack in the "
                            "Box?"),
    ("MTRAG-UN-arxiv", [4], "How do generation results differ between the banking and telco domains?"),
    ("MTRAG-UN-arxiv", [4], "How do generation results compare for clarification versus follow-up questions?"),
    ("MTRAG-UN-arxiv", [4], "What are the RLF, RBllm and RBalg scores in the reference setting?"),
    ("MTRAG-UN-arxiv", [6], "What share of tasks falls on each conversational turn, such as 0.31 or 0.40?"),
    ("amt_handbook_sample", [1], "What is the difference between a Flexloc nut, a fiber locknut and an elastic "
                                 "stop nut?"),
    ("amt_handbook_sample", [1], "What are the parts of a Boots aircraft nut, such as the nut case and threaded "
                                 "nut core?"),
    ("picture_classification", [2], "Where is the map of Florida power plant locations?"),
    ("redp5110_sampled", [7], "How does a user with DATAACCESS authority differ from a regular user going through "
                              "application logic?"),
    ("redp5110_sampled", [14], "Where does System i Navigator list Journal Receivers, Sequences and Global "
                               "Variables for HR_SCHEMA?"),
    ("redp5110_sampled", [15], "Which Visual Explain plan shows a nested loop join with an index probe on "
                               "ACCOUNT_CUSTOMER_ID_FK?"),
    ("redp5110_sampled", [15], "Which index does the Index and Statistics Advisor recommend creating on "
                               "ACCOUNT_NUMBER?"),
    ("redp5110_sampled", [7], "Which users with *ALLOBJ access can bypass the controls built into an SQL view?"),
]


# counted by hand from the papers' captions (2026-12-04): figures and tables present
PRESENT = {"1706.03762v7": {"figures": 5, "tables": 4}, "MTRAG-UN-arxiv": {"figures": 6, "tables": 5}}


def counts() -> dict[str, Any]:
    """Figures and tables found vs present in the shared papers. A figure counts as found when an image chunk
    carries its "Figure N" caption; a table when a table block overlaps the region under/over its "Table N"
    caption (within 200 pt); other table blocks are false positives."""
    import pymupdf

    from ingest.pdf import parse_pdf

    out = {}
    for stem, present in PRESENT.items():
        path = SHARED / "papers" / f"{stem}.pdf"
        doc = parse_pdf(path)
        figs = {m.group(1) for b in doc.blocks if b.kind == "image"
                for m in [re.match(r"\s*(?:figure|fig\.)\s*(\d+)", b.text, re.I)] if m}
        caps: list[tuple[int, float]] = []
        with pymupdf.open(path) as pdf:
            for page in pdf:
                caps += [(page.number + 1, b[1]) for b in page.get_text("blocks")
                         if re.match(r"\s*Table\s*\d+\s*:", b[4])]
        tables = [b for b in doc.blocks if b.kind == "table" and b.bbox]
        matched = {c for c in caps for t in tables if t.page == c[0] and abs(t.bbox[1] - c[1]) < 200}  # type: ignore[index]
        real = [t for t in tables if any(t.page == c[0] and abs(t.bbox[1] - c[1]) < 200 for c in caps)]  # type: ignore[index]
        out[stem] = {"figures_present": present["figures"], "figures_found": len(figs),
                     "tables_present": present["tables"], "tables_found": len(matched),
                     "table_false_positives": len(tables) - len(real)}
    return out


def word_errors(native: list[tuple[float, float, float, float, str]],
                ocr: list[tuple[float, float, float, float, str]]) -> tuple[int, int]:
    """(character edits, characters) of the text layer's words against the OCR words at the same place: each
    native word (NFKC-normalised; punctuation-only words such as dot leaders skipped) is compared with the OCR
    word(s) whose centre lies in its box (none = all its characters lost; at most its length counts). Aligned by
    position, so reading order, table and figure detection do not count as OCR errors."""
    from rapidfuzz.distance import Levenshtein

    edits = chars = 0
    for x0, y0, x1, y1, raw in native:
        text = unicodedata.normalize("NFKC", raw)  # the text layer's ligatures (ﬁ) are "fi" to a reader
        if not any(c.isalnum() for c in text):
            continue  # dot leaders and lone punctuation: not text a search or a reader uses
        got = " ".join(w[4] for w in ocr if x0 - 1 <= (w[0] + w[2]) / 2 <= x1 + 1 and y0 - 1 <= (w[1] + w[3]) / 2
                       <= y1 + 1)
        edits += min(Levenshtein.distance(text, got), len(text))
        chars += len(text)
    return edits, chars


def runtime(home: Path) -> Any:
    from app.runtime import Runtime
    from core.settings import Settings

    return Runtime(Settings(home=home, llm_base_url="http://127.0.0.1:9/v1"))


def top_pages(rt: Any, ws: str, query: str, k: int = 5) -> list[tuple[str, int | None]]:
    hits = asyncio.run(rt.retriever.search(ws, query, k=k))
    return [(Path(h.chunk.source).stem.removesuffix("-scan"), h.chunk.page) for h in hits]


def scanned_vs_text(tmp: Path, n_queries: int) -> dict[str, Any]:
    import pymupdf

    from ingest.ocr import OcrConfig, ocr_page
    from ingest.pdf import parse_pdf
    from tests.scans import image_only_pdf  # the same image-only renders the OCR tests ingest

    scans = tmp / "scans"
    scans.mkdir()
    rows, errs, chars, ocr_s, ocr_pages = [], 0, 0, 0.0, 0
    cfg = OcrConfig()
    for src in DOCS:
        scan = image_only_pdf(src, scans / f"{src.stem}-scan.pdf")
        e = n = 0
        t0 = time.perf_counter()
        scanned = parse_pdf(scan)  # the whole parse of the scan (OCR, layout, tables), as ingest runs it
        dt = time.perf_counter() - t0
        with pymupdf.open(src) as text_doc, pymupdf.open(scan) as scan_doc:
            for page, spage in zip(text_doc, scan_doc, strict=True):
                native = [tuple(w[:5]) for w in page.get_text("words") if w[4].strip()]
                pe, pn = word_errors(native, ocr_page(spage, cfg).words)  # type: ignore[arg-type]
                e, n = e + pe, n + pn
        rows.append({"doc": src.stem, "pages": scanned.pages, "ocr_pages": scanned.ocr_pages,
                     "cer": round(e / max(n, 1), 4), "parse_pages_per_s": round(scanned.pages / dt, 2)})
        errs, chars, ocr_s, ocr_pages = errs + e, chars + n, ocr_s + dt, ocr_pages + scanned.ocr_pages
        print(f"  {src.stem}: CER {rows[-1]['cer']:.3f}, {rows[-1]['parse_pages_per_s']} pages/s", flush=True)
    rt = runtime(tmp / "home")
    try:
        ing = rt.ingestor()
        ing.ingest(DOCS, "text")
        ing.ingest(sorted(scans.glob("*.pdf")), "scan")
        sents = [s for p in rt.index.scroll("text") if p.payload.get("kind") == "text"
                 for s in re.split(r"(?<=[.!?])\s+", p.payload["text"]) if 8 <= len(s.split()) <= 60]
        random.Random(13).shuffle(sents)
        queries = [" ".join(s.split()[:12]) for s in sents[:n_queries]]
        overlaps = []
        for q in queries:
            a_set, b_set = set(top_pages(rt, "text", q)), set(top_pages(rt, "scan", q))
            overlaps.append(len(a_set & b_set) / max(len(a_set), 1))
    finally:
        rt.close()
    return {"docs": rows, "pages": sum(r["pages"] for r in rows), "cer": round(errs / max(chars, 1), 4),
            "parse_pages_per_s": round(ocr_pages / ocr_s, 2), "queries": len(queries),
            "top5_page_overlap": round(sum(overlaps) / max(len(overlaps), 1), 3)}


def scanned_tables(tmp: Path, limit: int | None = None) -> dict[str, Any]:
    """Cell F1 of ICDAR 2013's gold tables parsed from the text PDF and from its image-only render, same pages."""
    import xml.etree.ElementTree as ET

    import pymupdf

    from ingest.parse import parse_file
    from ingest.quality import cell_f1, icdar_cells
    from tests.scans import image_only_pdf

    rows = []
    xmls = sorted((SHARED / "tables" / "icdar2013").glob("*/*-str.xml"))[:limit]
    for xml in xmls:
        pdf = xml.with_name(xml.name[: -len("-str.xml")] + ".pdf")
        if not pdf.exists():
            continue
        pages = sorted({int(r.get("page", "1")) for r in ET.parse(xml).getroot().iter("region")})
        text = tmp / f"{pdf.stem}.pdf"
        with pymupdf.open(pdf) as doc:
            doc.select([p - 1 for p in pages if p <= doc.page_count])
            doc.save(text)
        scan = image_only_pdf(text, tmp / f"{pdf.stem}-scan.pdf")
        gold = icdar_cells(xml)
        row: dict[str, Any] = {"doc": pdf.stem, "pages": len(pages)}
        for name, f in (("text", text), ("scan", scan)):
            t0 = time.perf_counter()
            parsed = parse_file(f)
            row[f"{name}_f1"] = round(cell_f1(gold, [c for b in parsed.blocks if b.kind == "table"
                                                     for r in b.cells for c in r]), 3)
            row[f"{name}_s"] = round(time.perf_counter() - t0, 2)
        rows.append(row)
        print(f"  {pdf.stem}: text {row['text_f1']:.3f}  scan {row['scan_f1']:.3f}", flush=True)
    n = max(len(rows), 1)
    return {"docs": len(rows), "pages": sum(r["pages"] for r in rows),
            "text_f1": round(sum(r["text_f1"] for r in rows) / n, 3),
            "scan_f1": round(sum(r["scan_f1"] for r in rows) / n, 3), "per_doc": rows}


def figures(tmp: Path) -> dict[str, Any]:
    import ingest.pdf as pdfmod
    from ingest.ocr import OcrConfig

    out: dict[str, Any] = {}
    for setting in ("before", "now"):
        rt = runtime(tmp / f"fig-{setting}")
        original = pdfmod.vector_figures
        try:
            ing = rt.ingestor()
            if setting == "before":  # ragent before #16: no OCR of images, no vector figures
                ing.ocr = OcrConfig(mode="off")
                pdfmod.vector_figures = lambda *a, **k: []  # type: ignore[assignment]
            ing.ingest(DOCS, "figs")
            chunks = [p.payload for p in rt.index.scroll("figs") if p.payload.get("kind") == "image"]
            real = [c for c in chunks if len(re.sub(r"^Image on page \d+", "", c["text"]).split()) >= 3]
            hits = []
            for stem, pages, q in FIGURE_QUESTIONS:
                top = top_pages(rt, "figs", q)
                hits.append(any(d == stem and p in pages for d, p in top))
            out[setting] = {"image_chunks": len(chunks), "with_text": len(real),
                            "ocr_text": sum(c.get("ocr_confidence") is not None for c in chunks),
                            "gold_page_at_5": round(sum(hits) / len(hits), 3), "per_question": hits}
        finally:
            pdfmod.vector_figures = original
            rt.close()
        print(f"  figures ({setting}): {out[setting]['gold_page_at_5']:.2f} gold-page@5", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--counts-only", action="store_true", help="only the figures/tables found vs present")
    ap.add_argument("--scanned-tables", action="store_true", help="only the scanned-tables section (ICDAR 2013)")
    ap.add_argument("--docs", type=int, default=None, help="--scanned-tables: only the first N ICDAR documents")
    args = ap.parse_args()
    if args.scanned_tables:
        with tempfile.TemporaryDirectory() as d:
            st = scanned_tables(Path(d), args.docs)
        result = json.loads(OUT.read_text()) if OUT.exists() else {}
        result["scanned_tables"] = st | {"command": "python bench/multimodal.py --scanned-tables"
                                         + (f" --docs {args.docs}" if args.docs else "")}
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\n| ICDAR 2013 gold-table pages | {st['pages']} ({st['docs']} docs) |\n|---|---|\n"
              f"| cell F1, text layer | {st['text_f1']:.3f} |\n| cell F1, image-only render (OCR) | "
              f"{st['scan_f1']:.3f} |\nwrote {OUT}")
        return
    print("figures and tables found vs present ...", flush=True)
    found = counts()
    print(json.dumps(found), flush=True)
    if args.counts_only:
        result = json.loads(OUT.read_text()) if OUT.exists() else {}
        result["found_vs_present"] = found
        result["counts_command"] = "python bench/multimodal.py --counts-only"
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {OUT} (found_vs_present)")
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print("scanned vs text ...", flush=True)
        scan = scanned_vs_text(tmp, args.queries)
        print("figures ...", flush=True)
        figs = figures(tmp)
    import os

    result = {"machine": f"{os.cpu_count()} cores", "dpi": 200, "found_vs_present": found,
              "scanned_vs_text": scan, "figures": figs,
              "figure_questions": [{"doc": d, "pages": p, "question": q} for d, p, q in FIGURE_QUESTIONS],
              "command": "python bench/multimodal.py --queries " + str(args.queries)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n| measure | value |\n|---|---|\n| pages (scanned and text) | {scan['pages']} |"
          f"\n| OCR character error rate vs text layer | {scan['cer']:.1%} |"
          f"\n| scanned PDF parse (OCR + layout) pages/s | {scan['parse_pages_per_s']} |"
          f"\n| top-5 page overlap, {scan['queries']} queries | {scan['top5_page_overlap']:.2f} |")
    for k in ("before", "now"):
        f = figs[k]
        print(f"| figures {k}: image chunks / with text / OCR | {f['image_chunks']} / {f['with_text']} / "
              f"{f['ocr_text']} |\n| figures {k}: gold-page@5 (20 questions) | {f['gold_page_at_5']:.2f} |")
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
