"""PDF -> typed blocks with PyMuPDF: text in reading order with heading levels, tables, images.

- Text: ``page.get_text("dict")`` spans; a block's heading level comes from its font size relative to the
  document's body size (the most common size, weighted by characters), and bold short lines. Two-column
  pages are read column by column between full-width blocks.
- Tables: ``page.find_tables()`` costs 0.2-0.7 s a page, so it runs only on candidate pages (enough ruled
  line/rect drawings); tables without ruling lines (and ruled tables whose columns have no rules) are read
  from word positions by ``ingest.text_tables``. Each table becomes a Markdown block with its cell grid,
  and the text inside the table area is dropped from the text blocks so it is not indexed twice.
- Images: unique image xrefs per page, minus tiny/decorative ones (< ``min_px`` pixels a side, < ``min_frac``
  of the page area, or repeated on many pages like logos); each is saved as PNG and described by its caption
  (the nearest "Figure/Fig./Table ..." block below or above) and nearby text.
  Images are read by OCR (``ingest.ocr``) when ``RAGENT_OCR`` is not off: their text joins the caption.
- Scanned pages (no usable text layer, an image on the page) are rendered and read by Tesseract
  (``ingest.ocr.ocr_page``) into the same block/word shape, so headings and tables work on scans too; their
  blocks carry ``ocr_confidence``.
- ``render_page`` renders (and caches) a page image for the UI to show a citation.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.types import BBox
from ingest.blocks import Block, ParsedDoc, to_markdown
from ingest.caption_tables import TABLE_CAPTION, caption_tables
from ingest.figures import vector_figures
from ingest.ocr import OcrConfig, OcrPage, OcrUnavailable, image_text, needs_ocr, read_png, render_png
from ingest.scan_rules import text_page
from ingest.text_tables import Word, inside, logical_rtl, page_words, regrid, text_tables, unstack_lines

logger = logging.getLogger(__name__)

CAPTION_RE = re.compile(r"^\s*(figure|fig\.|table|chart|image|photo|plate|exhibit)\s*[\dIVX]", re.I)
PAGE_NO_RE = re.compile(r"^\s*(page\s*)?\d{1,4}(\s*(of|/)\s*\d{1,4})?\s*$", re.I)
PROSE_CELL = 300  # characters: a table cell longer than this is a paragraph
NUMBER_TOKEN = re.compile(r"(?<![\w.])[-+\u2212\u2013(]?\d[\d.,]*\)?%?(?![\w.])")  # 291,099  (X) no  0.3 yes
TABLE_CAPTION_GAP = 40.0  # points between a table and its caption
MAX_CAPTION = 800  # characters: a longer block is body text that happens to start with "Table 2."
TABLE_MIN_RULES = 3  # long horizontal rules on a page before find_tables (0.2-0.7 s) is worth running


@dataclass(frozen=True)
class _Raw:
    """A text block before heading levels are known."""

    text: str
    page: int
    bbox: BBox
    size: float
    bold: bool
    lines: int


def _open(path: Path) -> Any:
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)
    getattr(pymupdf, "no_recommend_layout", lambda: None)()  # else find_tables print()s a tip: breaks --json stdout
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as e:  # pymupdf raises FileDataError, RuntimeError, ValueError, ... on broken files
        raise IngestError(f"{path.name}: not a readable PDF (corrupt, truncated or another format): {e}") from e
    if doc.is_repaired and b"%%EOF" not in path.read_bytes()[-2048:]:
        pages = doc.page_count
        doc.close()
        raise IngestError(f"{path.name}: the PDF is truncated or damaged (no end-of-file marker; MuPDF could "
                          f"only patch together {pages} page(s)); download or export it again")
    if doc.needs_pass:
        doc.close()
        raise IngestError(f"{path.name}: the PDF is encrypted (password protected); decrypt it first, "
                          "e.g. `qpdf --decrypt --password=... in.pdf out.pdf`")
    return doc


def _join_lines(lines: list[str]) -> str:
    out = ""
    for ln in lines:
        ln = re.sub(r"[ \t\u00a0]+", " ", ln).strip()
        if not ln:
            continue
        joined = out[:-1] + ln if out.endswith("-") and ln[:1].islower() else f"{out} {ln}"
        out = joined.strip()
    return out


def _horizontal(line: dict[str, Any]) -> bool:
    return abs(line.get("dir", (1, 0))[1]) < 0.1


def _text_blocks(page_dict: dict[str, Any], pno: int, exclude: list[BBox], figures: list[BBox] | None = None
                 ) -> list[_Raw]:
    """Text blocks less the lines read elsewhere: horizontal lines in ``exclude`` (tables), any line in
    ``figures`` (a figure's labels, often rotated, are in its own block)."""
    out: list[_Raw] = []
    for b in page_dict["blocks"]:
        if b.get("type", 0) != 0:
            continue
        lines: list[str] = []
        horizontal = 0
        sizes: Counter[float] = Counter()
        bold = 0
        chars = 0
        x0 = y0 = 1e9
        x1 = y1 = -1e9
        for ln in b["lines"]:
            if exclude and _horizontal(ln) and any(inside(ln["bbox"], t) for t in exclude):
                continue  # read as a table (rotated lines are never in a table's cells: keep them)
            if figures and any(inside(ln["bbox"], f) for f in figures):
                continue  # a label drawn inside a figure: read with the figure
            text = "".join(s["text"] for s in ln["spans"])
            if not text.strip():
                continue
            lines.append(text)
            horizontal += _horizontal(ln)
            lx0, ly0, lx1, ly1 = ln["bbox"]
            x0, y0, x1, y1 = min(x0, lx0), min(y0, ly0), max(x1, lx1), max(y1, ly1)
            for s in ln["spans"]:
                n = len(s["text"].strip())
                sizes[round(s["size"] * 2) / 2] += n
                chars += n
                if s["flags"] & 16 or "bold" in s["font"].lower():
                    bold += n
        text = _join_lines(lines)
        if not text or PAGE_NO_RE.match(text):
            continue
        # rotated text (e.g. arXiv side stamps) is never a heading: give it no size
        size = sizes.most_common(1)[0][0] if sizes and horizontal * 2 > len(lines) else 0.0
        out.append(_Raw(text, pno, (x0, y0, x1, y1), size, chars > 0 and bold >= 0.6 * chars, len(lines)))
    return out


def _reading_order(blocks: list[_Raw], page_width: float) -> list[_Raw]:
    """Column-aware order: full-width blocks split the page into bands; in a band, left column then right."""
    mid = page_width / 2
    blocks = sorted(blocks, key=lambda b: (round(b.bbox[1]), b.bbox[0]))
    left = [b for b in blocks if b.bbox[2] <= mid + 10]
    right = [b for b in blocks if b.bbox[0] >= mid - 10]
    if len(left) < 2 or len(right) < 2:  # single column
        return blocks
    out: list[_Raw] = []
    band: list[_Raw] = []
    for b in blocks:
        full = b.bbox[0] < mid - 10 and b.bbox[2] > mid + 10
        if full:
            out += sorted(band, key=lambda x: (x.bbox[0] >= mid - 10, x.bbox[1]))
            band = []
            out.append(b)
        else:
            band.append(b)
    out += sorted(band, key=lambda x: (x.bbox[0] >= mid - 10, x.bbox[1]))
    return out


def _heading_levels(raws: list[_Raw]) -> dict[int, int]:
    """Heading level per raw block index (absent = body), from size relative to the body font size."""
    weights: Counter[float] = Counter()
    for r in raws:
        weights[r.size] += len(r.text)
    if not weights:
        return {}
    body = weights.most_common(1)[0][0]

    def headingish(r: _Raw) -> bool:
        return len(r.text) <= 160 and r.lines <= 3 and bool(re.search(r"[A-Za-z]{2}", r.text))

    big = sorted({r.size for r in raws if r.size >= body * 1.12 and headingish(r)}, reverse=True)[:5]
    rank = {s: i + 1 for i, s in enumerate(big)}
    levels: dict[int, int] = {}
    for i, r in enumerate(raws):
        if r.size in rank and headingish(r):
            levels[i] = rank[r.size]
        elif (r.bold and r.size >= body * 0.95 and len(r.text) <= 90 and r.lines <= 2 and headingish(r)
              and not r.text.rstrip().endswith((".", ",", ";", ":"))):
            levels[i] = min(len(big) + 1, 6)
    return levels


def _drawings(page: Any) -> tuple[list[BBox], list[BBox], list[BBox]]:
    """(rules, strokes, verticals) of a page's vector drawings. Rules: long horizontal lines, thin rects and
    rect edges (>= 10% of the page width); on ICDAR 2013, >= 3 of them caught 124 of 128 table pages while
    skipping most text-only pages. Strokes: the bboxes of curves and diagonal lines, which charts are drawn
    with and tables are not. Verticals: vertical lines and thin rects (column rules)."""
    import pymupdf

    min_w = 0.1 * page.rect.width
    rules: list[BBox] = []
    strokes: list[BBox] = []
    verticals: list[BBox] = []
    for d in page.get_cdrawings():
        for it in d.get("items", ()):
            if it[0] == "l":
                (ax, ay), (bx, by) = it[1], it[2]
                box = (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))
                if abs(ay - by) < 1.5 and abs(ax - bx) >= min_w:
                    rules.append(box)
                elif abs(ax - bx) < 1.5 and abs(ay - by) >= 5:
                    verticals.append(box)
                elif abs(ay - by) > 0.5 and abs(ax - bx) > 0.5:
                    strokes.append(box)
            elif it[0] == "re":
                r = pymupdf.Rect(it[1])
                if r.width >= min_w:
                    rules += [(r.x0, r.y0, r.x1, r.y0)] * (1 if r.height < 2 else 2)
                elif r.width < 2 and r.height >= 5:
                    verticals.append((r.x0, r.y0, r.x1, r.y1))
            elif it[0] == "c":
                xs, ys = [p[0] for p in it[1:5]], [p[1] for p in it[1:5]]
                strokes.append((min(xs), min(ys), max(xs), max(ys)))
    return rules, strokes, verticals


def _tables(page: Any, pno: int, words: list[Word], page_dict: dict[str, Any],
            also: list[Word] | None = None) -> list[Block]:
    """Ruled tables (``find_tables`` on candidate pages, columns re-read from word gaps where it merged
    them), then captioned tables drawn with a few horizontal rules (``ingest.caption_tables``: booktabs), then
    borderless tables among the remaining words (else among the remaining ``also`` words, when given: a scan's
    own OCR boxes where its rebuilt page shows none)."""
    rules, strokes, verticals = _drawings(page)
    ruled = [t for t in (regrid(t, words) for t in _ruled_tables(page, pno, rules))
             if not _prose(t) and not _collapsed(t)]
    ruled += caption_tables(page_dict, pno, words, rules, verticals, [t.bbox for t in ruled if t.bbox])
    loose: list[Block] = []
    for pool in (words, also or []):
        rest = [w for w in pool if not any(inside(w, t.bbox) for t in ruled if t.bbox)]
        loose = [t for t in text_tables(rest, pno, page.rect.width, strokes=strokes) if not _prose(t)]
        if loose:
            break
    return ruled + loose


def _scan_tables(page: Any, scanned: OcrPage) -> list[Block]:
    """The tables of a scanned page: found on the page rebuilt from its OCR words and pixel rules
    (``ingest.scan_rules.text_page``), as on a text PDF; borderless ones from Tesseract's own word boxes where
    the rebuilt words give none (cell F1 on ICDAR 2013 scans: ``bench/multimodal.py --scanned-tables``)."""
    with text_page(scanned.words, scanned.rules, scanned.verticals, page.rect.width, page.rect.height) as doc:
        rebuilt = doc[0]
        textpage = rebuilt.get_textpage()
        return _tables(rebuilt, page.number + 1, page_words(rebuilt, textpage, []),
                       rebuilt.get_text("dict", textpage=textpage), also=scanned.words)


def _collapsed(t: Block) -> bool:
    """A ruled "table" whose rows fell together: over a quarter of its filled cells hold three or more numbers
    (a scan's table whose row rules were not found gave cells like "291,099 34,947 54,425"). The caption and
    word-gap finders read it instead."""
    filled = [c for r in t.cells for c in r if c.strip()]
    many = sum(len(NUMBER_TOKEN.findall(c)) >= 3 for c in filled)
    return bool(filled) and many > 0.25 * len(filled)


def _prose(t: Block) -> bool:
    """A "table" whose text is mostly in cells of over ``PROSE_CELL`` characters is prose laid out in a frame or
    in columns (the Redpaper's back cover became a 2 x 2 grid of paragraphs), not a grid of values: it is read
    as text."""
    lens = [len(c) for r in t.cells for c in r]
    return sum(n for n in lens if n > PROSE_CELL) > 0.6 * max(sum(lens), 1)


def _ruled_tables(page: Any, pno: int, rules: list[BBox]) -> list[Block]:
    if len(rules) < TABLE_MIN_RULES:
        return []
    import pymupdf

    # only look where the rules are: find_tables' cost grows with the characters it has to consider
    clip = pymupdf.Rect(min(r[0] for r in rules) - 40, min(r[1] for r in rules) - 40,
                        max(r[2] for r in rules) + 40, max(r[3] for r in rules) + 40) & page.rect
    blocks = []
    try:
        found = page.find_tables(clip=clip).tables
    except Exception as e:  # a table finder failure must not lose the page's text
        logger.warning("page %d: table detection failed (%s); reading it as text", pno, e)
        return []
    for t in found:
        rows = tuple(tuple(logical_rtl(re.sub(r"\s+", " ", c).strip()) for c in sub)
                     for r in t.extract() for sub in unstack_lines([c or "" for c in r]))
        rows = tuple(r for r in rows if any(r))
        if len(rows) < 2 or max(len(r) for r in rows) < 2:
            continue
        blocks.append(Block(text=to_markdown(rows), page=pno, bbox=tuple(t.bbox), kind="table", cells=rows))
    return blocks


def _caption(img: BBox, texts: list[_Raw]) -> tuple[str, str]:
    """(caption, nearby text) for an image: a Figure/Table line just below or above, else the nearest."""

    def overlaps(b: _Raw) -> bool:
        return b.bbox[0] < img[2] and b.bbox[2] > img[0]

    def gap(b: _Raw) -> float:
        return b.bbox[1] - img[3] if b.bbox[1] >= img[3] - 5 else img[1] - b.bbox[3]

    near = sorted((b for b in texts if overlaps(b) and -5 <= gap(b) <= 120), key=gap)
    caption = next((b.text for b in near if CAPTION_RE.match(b.text) and gap(b) <= 60), "")
    nearby = next((b.text for b in near if b.text != caption), "")
    return caption, nearby[:400]


SECTION_NO = re.compile(r"^\s*(\d+(\.\d+)*|[IVX]+)[.)]?\s")  # "5.1 Hyper Parameter Optimization", "IV. Results"


def _title(blocks: list[Block], page_height: float) -> str:
    """A PDF's title when its metadata has none: the largest heading in the upper 40% of page 1 that is not a
    numbered section ("5.1 ..."), a caption or a line wrapped from one; '' when there is none. Without the
    bounds, a page with no title was named by a section heading ("5.1 Hyper Parameter Optimization") or by a
    table's bold column header lower down ("State funded")."""
    top = [(b.heading_level, n, b.text) for n, b in enumerate(blocks) if b.page == 1 and b.heading_level
           and b.bbox and b.bbox[1] <= 0.4 * page_height and len(b.text) >= 4 and not SECTION_NO.match(b.text)
           and not CAPTION_RE.match(b.text) and not b.text[0].islower()]
    return min(top)[2] if top else ""


def _claim_captions(tables: list[Block], texts: list[_Raw]) -> tuple[list[Block], list[_Raw]]:
    """Each table takes the "Table N" caption block just above or below it in its column (within
    ``TABLE_CAPTION_GAP``) out of the text flow: the caption names what the table holds ("Table 3: Variations on
    the Transformer architecture") and its numbers are only found with it. Left in the text, the caption was a
    chunk of its own, found by a question about the table while the numbers were not."""
    claimed: set[int] = set()
    out = []
    for t in tables:
        if t.bbox is None or t.caption:
            out.append(t)
            continue
        tb = t.bbox

        def gap(b: _Raw, tb: BBox = tb) -> float:
            return tb[1] - b.bbox[3] if b.bbox[3] <= tb[1] + 5 else b.bbox[1] - tb[3]

        near = [(gap(b), i) for i, b in enumerate(texts) if i not in claimed and b.bbox[0] < tb[2]
                and b.bbox[2] > tb[0] and len(b.text) <= MAX_CAPTION and TABLE_CAPTION.match(b.text)
                and -5 <= gap(b) <= TABLE_CAPTION_GAP]
        if not near:
            out.append(t)
            continue
        i = min(near)[1]
        claimed.add(i)
        cap = texts[i]
        out.append(replace(t, caption=re.sub(r"\s+", " ", cap.text).strip(),
                           bbox=(min(tb[0], cap.bbox[0]), min(tb[1], cap.bbox[1]),
                                 max(tb[2], cap.bbox[2]), max(tb[3], cap.bbox[3]))))
    return out, [b for i, b in enumerate(texts) if i not in claimed]


def _images(doc: Any, page: Any, pno: int, texts: list[_Raw], files_dir: Path | None, repeated: set[int],
            min_px: int, min_frac: float, ocr: OcrConfig, warnings: list[str],
            max_frac: float = 1.01) -> tuple[list[Block], int]:
    """Image blocks of a page: saved as PNG, text = caption + the text OCR reads in it + the nearby paragraph.
    Images covering more than ``max_frac`` of the page are skipped (an OCRed page's scan is its text)."""
    import pymupdf

    seen = {x[0] for x in page.get_images()}
    area = page.rect.width * page.rect.height
    boxes: dict[int, BBox] = {}
    for info in page.get_image_info(xrefs=True):
        xref = info.get("xref", 0)
        if info["width"] < min_px or info["height"] < min_px or xref in repeated:
            continue
        x0, y0, x1, y1 = info["bbox"]
        prev = boxes.get(xref)
        boxes[xref] = (x0, y0, x1, y1) if prev is None else (
            min(prev[0], x0), min(prev[1], y0), max(prev[2], x1), max(prev[3], y1))
    blocks = []
    for n, (xref, bb) in enumerate(boxes.items(), start=1):
        clip = pymupdf.Rect(bb) & page.rect
        if clip.is_empty or not min_frac * area <= clip.width * clip.height <= max_frac * area:
            continue
        bb = (clip.x0, clip.y0, clip.x1, clip.y1)
        pix = None
        try:
            if xref:
                pix = pymupdf.Pixmap(doc, xref)
                if pix.n - pix.alpha >= 4 or pix.colorspace is None or pix.colorspace.n not in (1, 3):
                    pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
            else:
                pix = page.get_pixmap(clip=clip, dpi=110)
        except Exception as e:  # an odd or corrupt image must not fail the document
            logger.warning("page %d: could not read image %d (%s)", pno, xref, e)
        saved = ""
        if files_dir is not None and pix is not None:
            files_dir.mkdir(parents=True, exist_ok=True)
            dest = files_dir / f"p{pno}-img{n}.png"
            try:
                pix.save(dest)
                saved = dest.name
            except Exception as e:
                logger.warning("page %d: could not save image %d (%s)", pno, xref, e)
        seen_text, conf = image_text(pix, ocr, warnings, f"page {pno}")
        caption, nearby = _caption(bb, texts)
        text = "\n".join(p for p in (caption or f"Image on page {pno}", seen_text, nearby) if p)
        blocks.append(Block(text=text, page=pno, bbox=bb, kind="image", image_path=saved, ocr_confidence=conf))
    return blocks, len(seen)


def _figures(page: Any, pno: int, page_dict: dict[str, Any], textpage: Any, tables: list[Block],
             files_dir: Path | None, ocr: OcrConfig, warnings: list[str], min_frac: float) -> list[Block]:
    """Figure blocks for the page's vector figures (``ingest.figures``): the region rendered and saved as PNG,
    text = caption + the words drawn inside it (OCR of the render when it has none)."""
    import pymupdf

    area = page.rect.width * page.rect.height
    taken = [t.bbox for t in tables if t.bbox] + [tuple(i["bbox"]) for i in page.get_image_info()
                                                  if _area(tuple(i["bbox"])) >= min_frac * area]
    blocks = []
    for n, (bb, caption) in enumerate(vector_figures(page, page_dict, taken, min_frac), start=1):
        clip = pymupdf.Rect(bb[0] - 4, bb[1] - 4, bb[2] + 4, bb[3] + 4) & page.rect
        bb = (clip.x0, clip.y0, clip.x1, clip.y1)
        pix = page.get_pixmap(clip=clip, dpi=150)
        saved = ""
        if files_dir is not None:
            files_dir.mkdir(parents=True, exist_ok=True)
            dest = files_dir / f"p{pno}-fig{n}.png"
            pix.save(dest)
            saved = dest.name
        box = (clip.x0, clip.y0, clip.x1, clip.y1)  # (get_text ignores clip= when given a textpage)
        labels = " ".join(w[4] for w in page.get_text("words", textpage=textpage) if inside(w, box))[:1500]
        conf = None
        if len(labels.split()) < 2:
            labels, conf = image_text(pix, ocr, warnings, f"page {pno}")
        blocks.append(Block(text="\n".join(p for p in (caption[:600], labels) if p), page=pno, bbox=bb,
                            kind="image", image_path=saved, ocr_confidence=conf))
    return blocks


def _area(b: BBox) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def parse_pdf(path: Path, *, max_pages: int = 3000, files_dir: Path | None = None, min_px: int = 64,
              min_frac: float = 0.01, tables: bool = True, images: bool = True,
              ocr: OcrConfig | None = None) -> ParsedDoc:
    """``ocr``: how pages without a text layer and images with text are read (default: auto, eng)."""
    import pymupdf

    ocr = ocr or OcrConfig()

    doc = _open(path)
    with doc:
        if doc.page_count == 0:
            raise IngestError(f"{path.name}: the PDF has no pages")
        if doc.page_count > max_pages:
            raise IngestError(f"{path.name}: {doc.page_count} pages is over the limit of {max_pages}; "
                              "raise RAGENT_MAX_PAGES or split the file")
        xref_pages: Counter[int] = Counter()
        if images:
            for page in doc:
                xref_pages.update({x[0] for x in page.get_images()})
        repeated = {x for x, n in xref_pages.items() if n >= 3 and n >= doc.page_count // 2}
        raws: list[_Raw] = []
        extra: dict[int, list[Block]] = {}  # per page: tables and images, placed after the page's text
        images_seen = 0
        ocr_conf: dict[int, float] = {}  # OCRed page -> confidence
        warnings: list[str] = []
        flags = pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES
        ahead = _OcrAhead(doc, ocr, flags)
        try:
            for page in doc:
                pno = page.number + 1
                textpage = page.get_textpage(flags=flags)  # one text extraction for the text blocks and the tables
                page_dict = page.get_text("dict", textpage=textpage)
                scanned: OcrPage | None = None
                if (reading := ahead.get(page.number)) is not None:
                    try:
                        scanned = reading.result()
                    except OcrUnavailable:
                        raise
                    except Exception as e:  # a page Tesseract cannot read must not stop the document
                        logger.warning("page %d: OCR failed (%s)", pno, e)
                        warnings.append(f"page {pno}: OCR failed ({e})")
                    else:
                        page_dict = scanned.dict
                        ocr_conf[pno] = scanned.confidence
                tbls: list[Block] = []
                if tables:
                    rotated = [tuple(ln["bbox"]) for b in page_dict["blocks"] for ln in b.get("lines", ())
                               if not _horizontal(ln)]
                    if scanned is None:
                        tbls = _tables(page, pno, page_words(page, textpage, rotated), page_dict)
                    else:
                        tbls = [replace(t, ocr_confidence=ocr_conf.get(pno)) for t in _scan_tables(page, scanned)]
                figs: list[Block] = []
                if images and scanned is None:
                    figs = _figures(page, pno, page_dict, textpage, tbls, files_dir, ocr, warnings, min_frac)
                texts = _reading_order(_text_blocks(page_dict, pno, [b.bbox for b in tbls if b.bbox],
                                                    [b.bbox for b in figs if b.bbox]), page.rect.width)
                imgs: list[Block] = [*figs]
                if images:
                    found, n_seen = _images(doc, page, pno, texts, files_dir, repeated, min_px, min_frac, ocr, warnings,
                                           max_frac=0.6 if pno in ocr_conf else 1.01)
                    imgs += found
                    images_seen += n_seen
                tbls, texts = _claim_captions(tbls, texts)
                raws += texts
                extra[pno] = [*tbls, *imgs]
        finally:
            ahead.close()
        levels = _heading_levels(raws)
        blocks: list[Block] = []
        by_page: dict[int, list[Block]] = {}
        for i, r in enumerate(raws):
            lst = by_page.setdefault(r.page, [])
            lvl = levels.get(i, 0)
            prev = lst[-1] if lst else None
            if (lvl and prev is not None and prev.heading_level == lvl and prev.bbox
                    and 0 <= r.bbox[1] - prev.bbox[3] < r.size):  # a heading wrapped over two blocks
                lst[-1] = Block(text=f"{prev.text} {r.text}", page=r.page, heading_level=lvl,
                                bbox=(min(prev.bbox[0], r.bbox[0]), prev.bbox[1], max(prev.bbox[2], r.bbox[2]),
                                      r.bbox[3]))
            else:
                lst.append(Block(text=r.text, page=r.page, bbox=r.bbox, heading_level=lvl,
                                 ocr_confidence=ocr_conf.get(r.page)))
        for p in range(1, doc.page_count + 1):
            blocks += _place(by_page.get(p, []), extra.get(p, []))
        meta_title = ((doc.metadata or {}).get("title") or "").strip()
        title = meta_title if len(meta_title) > 3 else (_title(blocks, doc[0].rect.height) or path.stem)
        if not any(b.kind in ("text", "table") or b.ocr_confidence is not None for b in blocks):
            if ocr.mode == "off":
                hint = "set RAGENT_OCR=auto (or force) to read scanned pages with Tesseract"
            elif not ocr_conf:
                hint = ("no page shows an image to OCR (vector drawings only?); export it with its text, or set "
                        "RAGENT_OCR=force to OCR every page")
            else:
                hint = "OCR found no readable text either: check the scan's quality and RAGENT_OCR_LANGUAGES"
            raise IngestError(f"{path.name}: no extractable text in {doc.page_count} pages; {hint}")
        if ocr_conf:
            low = sorted(p for p, c in ocr_conf.items() if c < 0.6)
            if low:
                warnings.append(f"OCR read page(s) {_pages(low)} with low confidence; check the scan")
        if doc.is_repaired:
            warnings.append("the PDF was damaged and repaired while reading; check the text")
        return ParsedDoc(title=title[:200], pages=doc.page_count, blocks=blocks, images_seen=images_seen,
                         warnings=tuple(warnings), ocr_pages=len(ocr_conf))


class _OcrAhead:
    """Tesseract reads the next pages that need OCR while this one is parsed: each read is a subprocess, so
    ``workers`` pages (one per core) are read at once; at most ``2 x workers`` rendered pages wait in memory."""

    def __init__(self, doc: Any, ocr: OcrConfig, flags: int, workers: int | None = None) -> None:
        self.doc, self.ocr, self.flags = doc, ocr, flags
        self.workers = max(1, min(workers or os.cpu_count() or 1, 8))
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ocr") if ocr.mode != "off" else None
        self.futures: dict[int, Future[OcrPage]] = {}
        self.next = 0

    def get(self, index: int) -> Future[OcrPage] | None:
        """The OCR reading of page ``index`` (0-based), or None when the page has a usable text layer."""
        end = min(self.doc.page_count, index + 2 * self.workers + 1)
        while self.pool is not None and self.next < end:
            page = self.doc[self.next]
            if needs_ocr(page, page.get_text("text", flags=self.flags), self.ocr.mode):
                png, dpi = render_png(page, self.ocr.dpi)
                self.futures[self.next] = self.pool.submit(read_png, png, self.ocr, dpi)
            self.next += 1
        return self.futures.pop(index, None)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def _pages(nums: list[int]) -> str:
    return ", ".join(map(str, nums[:10])) + (f" and {len(nums) - 10} more" if len(nums) > 10 else "")


def _place(texts: list[Block], extra: list[Block]) -> list[Block]:
    """Insert each table/image before the first text block (in reading order) that starts below it in
    the same column; else at the end of the page."""
    out = list(texts)
    for x in sorted(extra, key=lambda b: b.bbox[1] if b.bbox else 0):
        xb = x.bbox or (0.0, 0.0, 0.0, 0.0)
        at = next((i for i, b in enumerate(out) if b.kind == "text" and b.bbox and b.bbox[1] >= xb[1]
                   and b.bbox[0] < xb[2] and b.bbox[2] > xb[0]), len(out))
        out.insert(at, x)
    return out


def render_page(home: Path, doc_id: str, source_pdf: Path, page: int, dpi: int = 110) -> Path:
    """The PNG of ``page`` (1-based) of a PDF, rendered once and cached under home/pages/<doc_id>/."""
    dest = home / "pages" / doc_id / f"{page}.png"
    if dest.exists():
        return dest
    doc = _open(source_pdf)
    with doc:
        if not 1 <= page <= doc.page_count:
            raise IngestError(f"{source_pdf.name}: no page {page} (it has {doc.page_count})")
        pix = doc[page - 1].get_pixmap(dpi=dpi)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{page}.{uuid.uuid4().hex}.png")  # one per call: concurrent renders share none
        try:
            pix.save(tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    return dest
