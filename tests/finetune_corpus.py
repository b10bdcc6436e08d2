"""A tiny synthetic workspace for the finetune tests: ~40 made-up encyclopedia passages, written for real."""

from __future__ import annotations

import random

from core.types import Chunk, content_id
from retrieval.registry import DocRecord, Registry
from retrieval.retriever import Retriever
from retrieval.writer import IndexWriter

FIRST = ["Amelia", "Bruno", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas"]
LAST = ["Stroud", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Vargas", "Keller", "Novak", "Reyes", "Hale"]
PLACES = ["Corvina", "Lisbon", "Kraków", "Osaka", "Toronto", "Nairobi", "Valparaíso", "Tallinn", "Hobart", "Quito"]
KINDS = [("bridge", "designed"), ("opera", "composed"), ("novel", "written"), ("observatory", "founded"),
         ("railway", "engineered"), ("museum", "established"), ("symphony", "composed"), ("cathedral", "built")]
NAMES = ["Veltrane", "Ashcombe", "Marrowgate", "Ostrava", "Penhallow", "Quillon", "Rosmere", "Sablewood",
         "Thornbury", "Umbridge", "Varenne", "Wexcombe", "Yarrowdale", "Zephyrine"]


def passages(n: int = 40, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind, verb = KINDS[i % len(KINDS)]
        title = f"The {NAMES[i % len(NAMES)]} {kind.title()}" + (f" {i // len(NAMES) + 1}" if i >= len(NAMES) else "")
        person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        place, year = rng.choice(PLACES), rng.randint(1801, 1999)
        text = (f"{title} is a {kind} in {place}. It was {verb} by {person} in {year}. "
                f"In {year + rng.randint(3, 40)} the {kind} was restored with funds from the city of {place}. "
                f"{person} later said the {kind} was inspired by a journey to {rng.choice(PLACES)}.")
        out.append((title, text))
    return out


def build_workspace(retriever: Retriever, registry: Registry, ws: str, n: int = 40) -> list[Chunk]:
    """Write the passages as ``done`` documents through the IndexWriter (real embedder, real Qdrant)."""
    chunks = []
    for title, text in passages(n):
        doc_id = content_id(ws, title)
        chunks.append(Chunk(id=content_id(doc_id, "0", text), doc_id=doc_id, workspace=ws, text=f"{title}\n{text}",
                            doc_title=title, source=f"{title}.txt"))
    IndexWriter(retriever.index, retriever.embedder_for, graph=None).write(ws, chunks)
    for c in chunks:
        registry.put(DocRecord(workspace=ws, doc_id=c.doc_id, source=c.source, title=c.doc_title,
                               content_hash=c.doc_id, status="done", chunk_ids=(c.id,)))
    return chunks
