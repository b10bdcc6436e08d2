"""Evidence maths over the run's state: chunks found by each step, ranked for the answerer, and how much of the
question they cover; templating of step inputs for learned shortcuts."""

from __future__ import annotations

import re
from typing import Any

from agents.cite import content_words
from core.types import Chunk, Hit


def chunk_of(ev: dict[str, Any]) -> Chunk:
    return Chunk.from_payload(ev["chunk"])


def ranked_hits(evidence: list[dict[str, Any]], limit: int, first: str = "") -> list[Hit]:
    """Evidence as hits, deduplicated by chunk, interleaved by each step's rank (round robin) so the best hit
    of every hop gets in before the second-best of any; the hits of step ``first`` lead each round."""
    per_step: dict[str, list[dict[str, Any]]] = {}
    if first:
        per_step[first] = []
    for ev in evidence:
        per_step.setdefault(ev["step"], []).append(ev)
    out: list[Hit] = []
    seen: set[str] = set()
    depth = max((len(v) for v in per_step.values()), default=0)
    for r in range(depth):
        for evs in per_step.values():
            if r < len(evs) and evs[r]["chunk"]["id"] not in seen:
                seen.add(evs[r]["chunk"]["id"])
                out.append(Hit(chunk=chunk_of(evs[r]), score=float(evs[r]["score"])))
    return out[:limit]


def naming(hit: Hit, name: str) -> bool:
    """Whether the hit's passage (or its document's title) names ``name``: every content word of the name occurs
    in it ("Jefferson County" in "... a township in Jefferson County, Iowa"). A name of no content word names
    nothing."""
    words = content_words(name)
    return bool(words) and words <= content_words(f"{hit.chunk.text} {hit.chunk.doc_title}")


def coverage(question: str, evidence: list[dict[str, Any]]) -> tuple[float, list[str]]:
    """Share of the question's content words found in the evidence, and the missing words."""
    qw = content_words(question)
    if not qw:
        return 1.0, []
    have: set[str] = set()
    for ev in evidence:
        have |= content_words(ev["chunk"]["text"] + " " + ev["chunk"].get("doc_title", ""))
    missing = sorted(qw - have)
    return 1 - len(missing) / len(qw), missing


def templated(value: Any, question: str) -> Any:
    """A step input made reusable (for learned shortcuts): the literal question becomes ``{question}`` and
    step references lose their round prefix."""
    if isinstance(value, str):
        return re.sub(r"\{r\d+\.", "{", value.replace(question, "{question}"))
    if isinstance(value, list):
        return [short_id(v) if isinstance(v, str) else templated(v, question) for v in value]
    return value


def short_id(step_id: str) -> str:
    return re.sub(r"^r\d+\.", "", step_id)
