"""What the answer call sees of long chunks: is the gold answer in what the prompt shows of the top-5 hits?

    .venv/bin/python bench/excerpt.py [--articles 50] [--k 5]

Every COVID-QA question of the first ``--articles`` articles (the ``eval-covidqa`` workspace of
``ragent eval answers -d covidqa``, indexed here when missing) is searched once; the gold answer string is then
looked for in what each way of cutting a source shows of the hits: the first N characters (the answer prompt
until 2026-12-07), the question-focused excerpt of ``agents/excerpt.py`` (by distinct question words, and by
their rarity as the prompt uses), and the whole chunk (the bound). No LLM. Prints a table and writes
bench/results/excerpt_covidqa.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.excerpt import excerpt, rarity  # noqa: E402
from app.cli.eval import DEFAULT_DATA  # noqa: E402
from app.eval_answers import load_set  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.types import Hit  # noqa: E402

OUT = ROOT / "bench" / "results" / "excerpt_covidqa.json"


async def search_all(rt: Runtime, ws: str, questions: list[str], k: int) -> list[list[Hit]]:
    return [await rt.retriever.search(ws, q, k=k) for q in questions]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=50)
    ap.add_argument("--k", type=int, default=5)
    args = ap.parse_args()
    data = json.loads((DEFAULT_DATA.parent / "longdoc_qa" / "covidqa_200423.json").read_text(encoding="utf-8"))
    qs = [(qa["question"], [a["text"].strip() for a in qa["answers"]])
          for art in data["data"][:args.articles] for qa in art["paragraphs"][0]["qas"]]
    rt = Runtime(Settings.from_env(ROOT / ".env"))
    try:
        qset = load_set("covidqa", DEFAULT_DATA, "", args.articles)
        assert qset.prepare is not None
        ws = qset.prepare(rt)
        t0 = time.time()
        hits = asyncio.run(search_all(rt, ws, [q for q, _ in qs], args.k))
        search_s = time.time() - t0
    finally:
        rt.close()
    texts_of = [[h.chunk.text for h in hs] for hs in hits]
    weights = [rarity(texts) for texts in texts_of]  # one per question's top-k, as the answer prompt builds it
    ways: dict[str, dict[str, int]] = {}
    for budget in (400, 600, 800):
        seen = {"first": 0, "excerpt-count": 0, "excerpt-rarity": 0}
        for (q, golds), texts, weight in zip(qs, texts_of, weights, strict=True):
            shown = {"first": [t[:budget] for t in texts],
                     "excerpt-count": [excerpt(t, q, budget, slack=1.0) for t in texts],
                     "excerpt-rarity": [excerpt(t, q, budget, weight, slack=1.0) for t in texts]}
            for way, parts in shown.items():
                seen[way] += any(g in p for p in parts for g in golds)
        ways[str(budget)] = seen
    slacks: dict[str, dict[str, float]] = {}  # at 600 characters: a chunk up to slack x 600 is shown whole
    for slack in (1.0, 1.15, 1.25, 1.5):
        n_seen, chars = 0, 0
        for (q, golds), texts, weight in zip(qs, texts_of, weights, strict=True):
            parts = [excerpt(t, q, 600, weight, slack=slack) for t in texts]
            n_seen += any(g in p for p in parts for g in golds)
            chars += sum(len(p) for p in parts)
        slacks[str(slack)] = {"shown": n_seen, "chars_per_prompt": round(chars / max(len(qs), 1))}
    whole = sum(any(g in h.chunk.text for h in hs for g in golds) for (_, golds), hs in zip(qs, hits, strict=True))
    lens = sorted(len(h.chunk.text) for hs in hits for h in hs)
    rep = {"questions": len(qs), "articles": args.articles, "k": args.k, "answer_in_whole_hits": whole,
           "shown": ways, "slack_600": slacks, "chunk_chars_p50": lens[len(lens) // 2] if lens else None,
           "search_s": round(search_s, 1), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "command": "bench/excerpt.py " + " ".join(sys.argv[1:])}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(rep, indent=1) + "\n", encoding="utf-8")
    print(f"{len(qs)} questions; gold answer in the whole top-{args.k} hits: {whole}; chunk p50 "
          f"{rep['chunk_chars_p50']} chars\n")
    print("| chars a source | first N | excerpt (distinct words) | excerpt (rarity, the prompt's) |")
    print("|---|---|---|---|")
    for budget, seen in ways.items():
        print(f"| {budget} | {seen['first']} | {seen['excerpt-count']} | {seen['excerpt-rarity']} |")
    print("\n| 600 chars, a chunk up to slack x 600 shown whole | gold answer shown | source chars a prompt |")
    print("|---|---|---|")
    for slack, r in slacks.items():
        print(f"| {slack} | {r['shown']} | {r['chars_per_prompt']} |")


if __name__ == "__main__":
    main()
