"""Table reading: with the right table in the prompt, does the answer model read the right cell?

    .venv/bin/python bench/table_reading.py

Every question of the ``pdfs`` set of kind ``table`` (app/evalsets/pdfs.jsonl) is asked with the tables of its
gold page as the only sources (parsed here, no search), shown two ways: ``markdown``, the table chunk's text as
it is (caption + Markdown grid, never cut), and ``records`` (the answer prompt since 2026-12-07, session 8:
``agents.excerpt.table_records``, each row a line whose cells are named by their columns, within the 600-char
source budget). Retrieval is out of the picture, so the gap is the format alone. Needs the LLM server
(``ragent llm serve``). Prints a table and writes bench/results/table_reading.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import agents.answer  # noqa: E402
from agents.answer import answer_messages, finalize  # noqa: E402
from app.eval_answers import PDF_QUESTIONS, score  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.types import Chunk, Hit  # noqa: E402
from ingest.pdf import parse_pdf  # noqa: E402

OUT = ROOT / "bench" / "results" / "table_reading.json"
PDFS = ROOT.parent / "shared" / "data" / "pdfs"


def gold_tables(q: dict[str, Any], cache: dict[str, Any]) -> list[Hit]:
    name = q["gold_doc"]
    if name not in cache:
        cache[name] = parse_pdf(next(PDFS.rglob(name)))
    doc = cache[name]
    pages = set(q.get("gold_pages") or [])
    return [Hit(Chunk(id=f"{name}-{n}", doc_id=name, workspace="bench", page=b.page, kind="table",
                      doc_title=doc.title, text=f"{b.caption}\n{b.text}" if b.caption else b.text), 1.0)
            for n, b in enumerate(doc.blocks) if b.kind == "table" and b.page in pages]


async def ask(rt: Runtime, question: str, hits: list[Hit], whole: bool) -> tuple[str, str]:
    keep = agents.answer.excerpt
    if whole:
        agents.answer.excerpt = lambda text, *a, **k: text  # type: ignore[assignment]
    try:
        msgs = answer_messages(question, hits, max_chars=600)
    finally:
        agents.answer.excerpt = keep
    raw = await rt.llm.chat(msgs, max_tokens=96)
    return finalize(question, raw, hits).short_answer, msgs[-1]["content"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    qs = [json.loads(line) for line in PDF_QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    qs = [q for q in qs if q.get("kind") == "table"]
    rt = Runtime(Settings())
    cache: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    for q in qs:
        hits = gold_tables(q, cache)
        row: dict[str, Any] = {"id": q["id"], "question": q["question"], "gold": q["answer"], "tables": len(hits)}
        for arm, whole in (("markdown", True), ("records", False)):
            short, prompt = asyncio.run(ask(rt, q["question"], hits, whole)) if hits else ("", "")
            s = score(short, "", [q["answer"], *q.get("answer_aliases", [])])
            row[arm] = {"short": short, "f1": s["f1"], "em": s["em"], "prompt_chars": len(prompt)}
        rows.append(row)
        print(f"{q['id']:10s} md {row['markdown']['f1']:.2f} {row['markdown']['short'][:25]:25s} "
              f"rec {row['records']['f1']:.2f} {row['records']['short'][:25]}", flush=True)
    summary = {arm: {"f1": round(100 * sum(r[arm]["f1"] for r in rows) / len(rows), 1),
                     "em": round(100 * sum(r[arm]["em"] for r in rows) / len(rows), 1),
                     "prompt_chars_mean": round(sum(r[arm]["prompt_chars"] for r in rows) / len(rows))}
               for arm in ("markdown", "records")}
    print("\n| format | n | EM | F1 | prompt chars (mean) |\n|---|---|---|---|---|")
    for arm, s in summary.items():
        print(f"| {arm} | {len(rows)} | {s['em']} | {s['f1']} | {s['prompt_chars_mean']} |")
    Path(args.out).write_text(json.dumps({"command": "bench/table_reading.py", "model": rt.settings.llm.model,
                                          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                          "wall_s": round(time.time() - t0, 1), "summary": summary, "rows": rows},
                                         indent=1, ensure_ascii=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
