"""The executor's tools: thin async calls into the Retriever (and the LLM for sub-answers).

Each tool takes the step's filled input and returns a ``ToolResult``: hits (evidence), a one-line summary,
and a ``value`` later steps can reference as ``{<step id>}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agents.answer import NOT_FOUND, answer_messages, parse_reply, short_supported
from core.llm import LLM
from core.types import Chunk, Hit
from retrieval.searcher import Searcher


@dataclass(frozen=True)
class ToolResult:
    hits: tuple[Hit, ...] = ()
    summary: str = ""
    value: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolContext:
    retriever: Searcher
    llm: LLM
    workspace: str
    question: str
    evidence: tuple[Chunk, ...]  # evidence gathered so far (for sub-answers without explicit sources)
    step_hits: dict[str, tuple[Chunk, ...]]  # chunks found by each finished step
    source_chars: int = 600
    answer_tokens: int = 64


MAX_HOPS = 3

Tool = Callable[[ToolContext, dict[str, Any]], Awaitable[ToolResult]]

TOOL_DOCS: dict[str, str] = {
    "search": 'hybrid search. input {"query": str, "k": int}',
    "recall": 'one recall path alone. input {"path": str, "query": str, "k": int}',
    "neighbourhood": 'knowledge-graph neighbours of entities. input {"entities": [str], "hops": int}',
    "read_chunk": 'read chunks by id. input {"ids": [str]}',
    "read_page": 'read a PDF page. input {"doc_id": str, "page": int}',
    "answer": 'answer a sub-question from earlier steps. input {"question": str, "from": [step ids]}',
}


def _query(inp: dict[str, Any], ctx: ToolContext) -> str:
    q = str(inp.get("query") or inp.get("q") or "").strip()
    return q or ctx.question


def _k(inp: dict[str, Any], default: int = 5) -> int:
    try:
        return max(1, min(int(inp.get("k", default)), 20))
    except (TypeError, ValueError):
        return default


def _hits_result(hits: list[Hit], what: str) -> ToolResult:
    if not hits:
        return ToolResult(summary=f"{what}: no hits")
    titles = []
    for h in hits:
        t = h.chunk.doc_title or h.chunk.source
        if t and t not in titles:
            titles.append(t)
    return ToolResult(hits=tuple(hits), summary=f"{what}: {len(hits)} hits ({'; '.join(titles[:3])})",
                      value=titles[0] if titles else hits[0].chunk.text[:80])


async def search(ctx: ToolContext, inp: dict[str, Any]) -> ToolResult:
    q = _query(inp, ctx)
    return _hits_result(await ctx.retriever.search(ctx.workspace, q, k=_k(inp)), f"search {q[:60]!r}")


async def recall(ctx: ToolContext, inp: dict[str, Any]) -> ToolResult:
    path = str(inp.get("path") or (ctx.retriever.paths[0] if ctx.retriever.paths else "dense"))
    q = _query(inp, ctx)
    if path not in ctx.retriever.paths:
        # small planners invent path names ("specifications"); a retry would repeat the same call, so run
        # the hybrid search instead and say so in the trace
        hits = await ctx.retriever.search(ctx.workspace, q, k=_k(inp))
        return _hits_result(hits, f"unknown recall path {path!r}, ran hybrid search {q[:50]!r}")
    return _hits_result(await ctx.retriever.recall(path, ctx.workspace, q, _k(inp)), f"recall[{path}] {q[:50]!r}")


async def neighbourhood(ctx: ToolContext, inp: dict[str, Any]) -> ToolResult:
    ents = inp.get("entities") or []
    if isinstance(ents, str):
        ents = [ents]
    try:
        hops = max(1, min(int(inp.get("hops", 1) or 1), MAX_HOPS))  # the model's number, bounded
    except (TypeError, ValueError):
        hops = 1
    hood = await ctx.retriever.neighbourhood(ctx.workspace, [str(e)[:200] for e in ents][:10], hops)
    chunks = ctx.retriever.get_chunks(ctx.workspace, list(hood.chunk_ids)[:8]) if hood.chunk_ids else []
    hits = [Hit(chunk=c, score=1.0 / (i + 1), paths={"graph": i + 1}) for i, c in enumerate(chunks)]
    rel = "; ".join(f"{s} {r} {t}" for s, r, t in hood.relations[:5])
    res = _hits_result(hits, f"neighbourhood of {ents}")
    return ToolResult(res.hits, f"{res.summary}; {len(hood.entities)} entities {rel}".strip(), rel or res.value)


async def read_chunk(ctx: ToolContext, inp: dict[str, Any]) -> ToolResult:
    ids = inp.get("ids") or inp.get("id") or []
    if isinstance(ids, str):
        ids = [ids]
    chunks = ctx.retriever.get_chunks(ctx.workspace, [str(i) for i in ids])
    return _hits_result([Hit(chunk=c, score=0.5) for c in chunks], f"read {len(ids)} chunk(s)")


async def read_page(ctx: ToolContext, inp: dict[str, Any]) -> ToolResult:
    chunks = ctx.retriever.page_chunks(ctx.workspace, str(inp.get("doc_id", "")), int(inp.get("page", 1)))
    return _hits_result([Hit(chunk=c, score=0.5) for c in chunks], f"read page {inp.get('page')}")


async def answer(ctx: ToolContext, inp: dict[str, Any]) -> ToolResult:
    """A hop's short answer from the chunks of the steps it names (its ``value`` fills the next hop's query).
    When the sources do not say, the value is the title of the hop's best hit, so the chain goes on."""
    sub_q = str(inp.get("question") or ctx.question)[:500]
    refs = inp.get("from") or []
    chunks: list[Chunk] = []
    for r in refs if isinstance(refs, list) else [refs]:
        chunks.extend(c for c in ctx.step_hits.get(str(r), ()) if c not in chunks)
    chunks = (chunks or list(ctx.evidence))[:4]
    if not chunks:
        return ToolResult(summary=f"answer {sub_q[:50]!r}: no evidence")
    hits = [Hit(chunk=c, score=1.0) for c in chunks]
    raw = await ctx.llm.chat(answer_messages(sub_q, hits, max_chars=ctx.source_chars), max_tokens=ctx.answer_tokens)
    short, _ = parse_reply(raw)
    known = short != NOT_FOUND and short_supported(short, hits)
    value = short if known else (chunks[0].doc_title or "")
    note = short if known else f"{short}; going on with {value!r}"
    return ToolResult(summary=f"answer {sub_q[:50]!r}: {note[:80]}", value=value[:200],
                      extra={"fact": [sub_q, short if known else NOT_FOUND]})


TOOLS: dict[str, Tool] = {
    "search": search,
    "recall": recall,
    "neighbourhood": neighbourhood,
    "read_chunk": read_chunk,
    "read_page": read_page,
    "answer": answer,
}
