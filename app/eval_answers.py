"""``ragent eval answers``: answer quality end to end, per system, on a question set with gold answers.

Systems: ``llm-only`` (one call, no retrieval), ``rag`` (one hybrid search + one answer call, checked the same
way as the agent's answers), ``agent`` (the LangGraph agent, its experience memory off), and the two arms of the
memory experiment: ``agent-memory`` (uses and updates its tips and shortcuts) and ``agent-placebo`` (reads random
tips of the same length, learns nothing; ``agents.memory.PlaceboMemory``). Per question and system it records
the answer, short answer, citations, faithfulness, LLM calls, prompt and completion tokens, time to first token
and total time; per system EM and F1 on the short answer (SQuAD normalisation, best over the gold aliases),
contains-gold, faithfulness, cited-gold rate and latency p50/p95.

Results are cached per question (JSONL under ``$RAGENT_HOME/eval/answers``, keyed by the set, workspace, system,
model, prompt version and the settings the system's answers depend on: ``run_config``), so a long run resumes where
it stopped, across sessions, and a run with other settings (``RAGENT_AGENT_CHAIN_FIRST_DEPTH=100``) never reuses
another's rows; the report states n.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import string
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from agents.agent import Agent
from agents.answer import ANSWER_VERSION, NOT_FOUND, parse_reply, rag_answer
from agents.answerer import answer_evidence, facts_of
from agents.experience import LEARN_VERSION
from agents.memory import PlaceboMemory
from agents.prompts import ANSWER_SYSTEM, DECOMPOSE_SYSTEM, NO_CONTEXT_SYSTEM
from app.runtime import Runtime
from core.errors import ConfigError, LLMUnavailableError, RagentError
from core.llm import metered, stream_chat
from core.settings import Settings
from core.stats import percentile
from core.types import Hit
from retrieval.sparse import SPARSE_VERSION

SYSTEMS = ("llm-only", "rag", "agent", "agent-memory", "agent-placebo")
MEMORY_ARMS = ("agent-memory", "agent-placebo")  # their cached rows are kept per version of what is learned
BUILTIN = ("hotpotqa", "musique", "covidqa", "covidqa-heldout", "pdfs")
PDF_QUESTIONS = Path(__file__).resolve().parent / "evalsets" / "pdfs.jsonl"
MAX_QUESTIONS = 5000
PROMPT_VERSION = hashlib.sha256((ANSWER_SYSTEM + NO_CONTEXT_SYSTEM + DECOMPOSE_SYSTEM + ANSWER_VERSION).encode()
                                ).hexdigest()[:8]


@dataclass(frozen=True)
class QA:
    qid: str
    question: str
    answers: tuple[str, ...]  # the gold answer first, then its aliases
    gold_docs: frozenset[str] = frozenset()  # titles of the documents that hold the answer, where known
    gold_pages: frozenset[int] = frozenset()


@dataclass
class QASet:
    name: str
    questions: list[QA]
    workspace: str = ""
    prepare: Callable[[Runtime], str] | None = None  # indexes the set's corpus; returns the workspace
    notes: dict[str, Any] = field(default_factory=dict)


# ---- SQuAD answer metrics ---------------------------------------------------------------------------------
def normalize(s: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    s = re.sub(r"\[\d+\]", " ", s.lower())
    s = "".join(ch if ch not in string.punctuation else " " for ch in s)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def embedder_key(s: Settings) -> str:
    """What the vectors of an eval workspace depend on, so an int8 index never reuses an fp32 one's workspace (and
    the other way round), nor one with another BM25 tokeniser; fp32 and SPARSE_VERSION 1 keep the key older
    homes were built under."""
    return (f"{s.embed_model}|{s.graph_extractor}" + (f"|{s.embed_quant}" if s.embed_quant != "none" else "")
            + (f"|sparse{SPARSE_VERSION}" if SPARSE_VERSION != 1 else ""))


def f1_score(pred: str, gold: str) -> float:
    p, g = normalize(pred).split(), normalize(gold).split()
    same = sum((Counter(p) & Counter(g)).values())
    if not same:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


def score(short: str, full: str, answers: Sequence[str]) -> dict[str, float]:
    """EM and F1 of the short answer, and whether the whole answer contains a gold answer (best alias)."""
    return {"em": max(float(normalize(short) == normalize(a)) for a in answers),
            "f1": round(max(f1_score(short, a) for a in answers), 4),
            "contains": max(float(bool(normalize(a)) and f" {normalize(a)} " in f" {normalize(short + ' ' + full)} ")
                            for a in answers)}


# ---- question sets ----------------------------------------------------------------------------------------
def _multihop(name: str, data_dir: Path, limit: int | None) -> QASet:
    from retrieval.eval import index_corpus, load_dataset, workspace_for

    raw = json.loads((data_dir / f"{name}_100.json").read_text(encoding="utf-8"))
    ds = load_dataset(name, data_dir, limit)
    qs = []
    for q, eq in zip(raw, ds.questions, strict=False):
        aliases = [q["answer"], *q.get("answer_aliases", [])]
        gold = ({t for t, _ in q["supporting_facts"]} if "supporting_facts" in q
                else {p["title"] for p in q.get("paragraphs", []) if p.get("is_supporting")})
        qs.append(QA(eq.qid, q["question"], tuple(dict.fromkeys(a for a in aliases if a)), frozenset(gold)))

    def prepare(rt: Runtime) -> str:
        s = rt.settings
        ws = workspace_for(ds, embedder_key(s))  # shared with `ragent eval retrieval`
        index_corpus(ds, ws, rt.writer, rt.registry)
        return ws

    return QASet(name, qs, prepare=prepare, notes={"passages": len(ds.passages)})


def _covidqa(data_dir: Path, limit: int | None, held_out: bool = False) -> QASet:
    """One question per article (the first), over the first ``limit`` (default 50) articles, each article
    ingested as a text document through the normal ingest pipeline. ``held_out`` (``covidqa-heldout``): the
    second and third questions of each of the first 50 articles (91 questions, the first ``limit``), which
    nothing was tuned on."""
    path = data_dir.parent / "longdoc_qa" / "covidqa_200423.json"
    if not path.exists():
        raise ConfigError(f"COVID-QA not found at {path} (see ../shared/data/README.md)")
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    n = min(50 if held_out else limit or 50, len(data))
    qs, articles = [], []
    for i, art in enumerate(data[:n]):
        para = art["paragraphs"][0]
        title = f"covidqa-{i:03d}"
        articles.append((title, para["context"]))
        for qa in para["qas"][1:3] if held_out else para["qas"][:1]:
            qs.append(QA(str(qa["id"]), qa["question"],
                         tuple(dict.fromkeys(a["text"].strip() for a in qa["answers"])), frozenset({title})))

    def prepare(rt: Runtime) -> str:
        folder = rt.settings.home / "eval" / "covidqa_docs"
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for title, text in articles:
            f = folder / f"{title}.txt"
            if not f.exists():
                f.write_text(text, encoding="utf-8")
            files.append(f)
        ws = "eval-covidqa"
        rt.ingestor(enrich=False).ingest(files, ws)
        return ws

    return QASet("covidqa-heldout" if held_out else "covidqa", qs, prepare=prepare, notes={"articles": n})


def ingest_key(extra: str = "") -> str:
    """A hash of the ingest code (and ``extra``): a PDF's chunks follow the parser, and ingest skips a file it
    has seen, so the ``pdfs`` workspace, and with it the cached answers, are per version of the code."""
    h = hashlib.sha256(extra.encode())
    for f in sorted((Path(__file__).resolve().parent.parent / "ingest").glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:8]


def _pdfs(data_dir: Path, limit: int | None) -> QASet:
    """60 questions over 9 real PDFs of ../shared/data/pdfs (two arXiv papers, an IBM Redpaper, docling's layout
    samples: running text, tables, captions, title pages, a Korean report), written from the PDFs alone, with the
    gold file and page(s) (``app/evalsets/pdfs.jsonl``). The PDFs are ingested into ``eval-pdfs-<ingest_key>``."""
    qs = _jsonl(PDF_QUESTIONS, "eval-pdfs", limit)
    root = data_dir.parent / "pdfs"
    names = sorted({d for q in qs.questions for d in q.gold_docs})
    found = {f.name: f for f in root.rglob("*.pdf")} if root.is_dir() else {}
    if missing := [n for n in names if n not in found]:
        raise ConfigError(f"pdfs: {', '.join(missing)} not found under {root} (see ../shared/data/README.md)")

    def prepare(rt: Runtime) -> str:
        ws = f"eval-pdfs-{ingest_key(embedder_key(rt.settings))}"
        rt.ingestor(enrich=False).ingest([found[n] for n in names], ws)
        return ws

    return QASet("pdfs", qs.questions, prepare=prepare, notes={"documents": len(names)})


def _jsonl(path: Path, workspace: str, limit: int | None) -> QASet:
    if not workspace:
        raise ConfigError(f"{path.name}: a question file needs the workspace that holds its documents: pass -w WS")
    qs = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            answers = [str(d["answer"]), *[str(a) for a in d.get("answer_aliases") or []]]
            question = str(d["question"]).strip()[:2000]
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{path.name} line {i + 1}: needs JSON with 'question' and 'answer' ({e})") from e
        gold = d.get("gold_doc") or []
        qs.append(QA(str(d.get("id", i)), question, tuple(a for a in answers if a),
                     frozenset([gold] if isinstance(gold, str) else gold),
                     frozenset(int(p) for p in d.get("gold_pages") or [])))
        if len(qs) >= min(limit or MAX_QUESTIONS, MAX_QUESTIONS):
            break
    if not qs:
        raise ConfigError(f"{path.name}: no questions")
    return QASet(path.stem, qs, workspace=workspace)


def load_set(dataset: str, data_dir: Path, workspace: str = "", limit: int | None = None, skip: int = 0) -> QASet:
    """The question set; ``skip`` leaves out its first questions (e.g. the memory experiment warms up on
    questions 51-100 and is scored on 1-50)."""
    upto = None if limit is None else skip + limit
    if dataset in ("hotpotqa", "musique"):
        qs = _multihop(dataset, data_dir, upto)
    elif dataset in ("covidqa", "covidqa-heldout"):
        qs = _covidqa(data_dir, upto, held_out=dataset == "covidqa-heldout")
    elif dataset == "pdfs":
        qs = _pdfs(data_dir, upto)
    else:
        path = Path(dataset)
        if not path.is_file():
            raise ConfigError(f"unknown dataset {dataset!r}: use {' | '.join(BUILTIN)} or a .jsonl file")
        qs = _jsonl(path, workspace, upto)
    if workspace and qs.prepare is not None:
        qs.workspace, qs.prepare = workspace, None
    qs.questions = qs.questions[skip:upto]
    if not qs.questions:
        raise ConfigError(f"{qs.name}: no questions left after skipping {skip}")
    return qs


# ---- systems ----------------------------------------------------------------------------------------------
@dataclass
class Run:
    short: str = ""
    answer: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    faithfulness: float | None = None
    ttft_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def _llm_only(rt: Runtime, ws: str, q: QA, t0: float) -> Run:
    run = Run()
    raw = ""
    async for piece in stream_chat(rt.llm, [{"role": "system", "content": NO_CONTEXT_SYSTEM},
                                            {"role": "user", "content": q.question}], max_tokens=64):
        run.ttft_s = run.ttft_s if run.ttft_s is not None else time.perf_counter() - t0
        raw += piece
    run.short, run.answer = parse_reply(raw)
    return run


async def _rag(rt: Runtime, ws: str, q: QA, t0: float, k: int = 5) -> Run:
    run = Run()
    pieces: list[str] = []

    def token(piece: str) -> None:
        run.ttft_s = run.ttft_s if run.ttft_s is not None else time.perf_counter() - t0
        pieces.append(piece)

    ans, hits = await rag_answer(rt.retriever, rt.llm, ws, q.question, k=k, on_token=token)
    if not hits:
        return Run(short=NOT_FOUND, answer="no hits")
    raw = "".join(pieces)
    run.short, run.answer, run.faithfulness = ans.short_answer, ans.answer, ans.faithfulness
    run.citations = [c.to_json() for c in ans.citations]
    run.extra = {"raw": raw.strip(), "dropped": list(ans.dropped), "retrieved": [h.chunk.doc_title for h in hits],
                 "retrieved_ids": [h.chunk.id for h in hits]}
    return run


async def _agent(rt: Runtime, ws: str, q: QA, t0: float, memory: str = "off") -> Run:
    """The agent; ``memory``: ``off``, ``on`` (uses and updates the workspace's tips and shortcuts; its
    reflectors run after the answer, outside the measured time) or ``placebo``."""
    run = Run()
    final: dict[str, Any] = {}
    agent = rt.agent
    if memory == "placebo":
        agent = Agent(rt.retriever, rt.llm, PlaceboMemory(rt.memory), rt.settings.agent)
    stream = agent.astream(ws, q.question, use_memory=memory != "off")
    async for ev in stream:
        if ev["type"] == "token" and run.ttft_s is None:
            run.ttft_s = time.perf_counter() - t0
        elif ev["type"] == "answer":
            final = ev["answer"]
            hits = answer_evidence(agent.last_state, 5)  # type: ignore[arg-type]
            run.extra["facts"] = facts_of(agent.last_state)  # type: ignore[arg-type]  # each hop's short answer
            run.ttft_s = run.ttft_s if run.ttft_s is not None else time.perf_counter() - t0
            t_answer = time.perf_counter()
            with metered() as learning:  # the experience reflectors: after the answer, not answer latency
                async for _ in stream:
                    pass
            run.extra["learn_s"] = round(time.perf_counter() - t_answer, 3)
            run.extra["learn_llm_calls"] = learning.calls
            run.extra["evidence"] = [h.chunk.doc_title for h in hits]
            run.extra["evidence_ids"] = [h.chunk.id for h in hits]  # recall of gold passages, where ids are known
            break
    run.short, run.answer = str(final.get("short_answer", "")), str(final.get("answer", ""))
    run.citations, run.faithfulness = list(final.get("citations", [])), final.get("faithfulness")
    stats = final.get("stats") or {}
    run.extra |= {"raw": final.get("raw", ""), "dropped": final.get("dropped", []), "route": stats.get("route"),
                 "steps": stats.get("steps_run"), "replans": stats.get("replans"),
                 "plan": [f"{s.get('tool')}:{str((s.get('filled') or s.get('input') or {}).get('query', ''))[:80]}"
                          for s in final.get("plan", [])]}
    return run


async def agent_evidence(agent: Agent, ws: str, question: str, k: int = 10) -> list[Hit]:
    """The evidence the agent's answerer reads for ``question``, best first (the single route's search, or every
    hop of the multi-hop chain interleaved by rank): what ``ragent eval retrieval --agent`` scores as a row."""
    async for ev in agent.astream(ws, question, use_memory=False):
        if ev["type"] == "answer":
            break
    return answer_evidence(agent.last_state, k)  # type: ignore[arg-type]


RUNNERS: dict[str, Callable[[Runtime, str, QA, float], Awaitable[Run]]] = {
    "llm-only": _llm_only, "rag": _rag, "agent": _agent,
    "agent-memory": partial(_agent, memory="on"), "agent-placebo": partial(_agent, memory="placebo")}


def _cited_gold(cites: list[dict[str, Any]], q: QA, files: dict[str, str] | None = None) -> float | None:
    """Whether a citation points at a gold document (by title, or by file name through ``files``: doc id ->
    file name) on a gold page."""
    if not q.gold_docs:
        return None
    if not cites:
        return 0.0
    files = files or {}
    hit = any((c.get("doc") in q.gold_docs or files.get(str(c.get("doc_id"))) in q.gold_docs)
              and (not q.gold_pages or c.get("page") in q.gold_pages) for c in cites)
    return float(hit)


async def run_one(rt: Runtime, system: str, ws: str, q: QA) -> dict[str, Any]:
    t0 = time.perf_counter()
    with metered() as usage:
        try:
            r = await RUNNERS[system](rt, ws, q, t0)
            error = ""
        except LLMUnavailableError:
            raise  # no server: every later question would fail the same way
        except RagentError as e:
            r, error = Run(short=NOT_FOUND), f"{type(e).__name__}: {e}"[:300]
    total = time.perf_counter() - t0 - float(r.extra.get("learn_s", 0.0))
    files = {}  # doc id -> file name, of the cited documents only
    if system != "llm-only" and q.gold_docs:
        for doc_id in {str(c.get("doc_id")) for c in r.citations}:
            if (rec := rt.registry.get(ws, doc_id)) is not None:
                files[doc_id] = Path(rec.source).name
    return {"qid": q.qid, "question": q.question, "gold": list(q.answers), "short_answer": r.short,
            "answer": r.answer, "citations": [{k: c.get(k) for k in ("n", "doc", "page", "chunk_id", "verified")}
                                              for c in r.citations],
            "faithfulness": r.faithfulness,
            "cited_gold": None if system == "llm-only" else _cited_gold(r.citations, q, files),
            **score(r.short, r.answer, q.answers), "llm_calls": usage.calls, "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens, "ttft_s": None if r.ttft_s is None else round(r.ttft_s, 3),
            "total_s": round(total, 3), "error": error, **r.extra}


# ---- cache + report ---------------------------------------------------------------------------------------
def run_config(s: Settings, system: str) -> dict[str, Any]:
    """The settings a system's answers depend on, besides the model and the prompts: the LLM's sampling for all,
    the retrieval and the agent's sizes and routing for the systems that search (``rag`` shares the agent's answer
    sizes). No credentials."""
    out: dict[str, Any] = {"max_tokens": s.llm_max_tokens, "temperature": s.llm_temperature}
    if system != "llm-only":
        retrieval = {k: v for k, v in asdict(s.retrieval).items() if not k.startswith("neo4j_")}
        out |= {"retrieval": retrieval, "agent": asdict(s.agent)}
    return out


def cache_path(home: Path, qset: str, ws: str, system: str, model: str, config: dict[str, Any] | None = None) -> Path:
    conf = json.dumps(config, sort_keys=True, default=str) if config else ""
    key = hashlib.sha256(f"{qset}|{ws}|{system}|{model}|{PROMPT_VERSION}|{conf}".encode()).hexdigest()[:10]
    return home / "eval" / "answers" / f"{qset}_{system}_{key}.jsonl"


def load_cache(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                out[str(row["qid"])] = row
            except (ValueError, KeyError):
                continue  # a line cut by a crash
    return out


def _pct(xs: list[float], p: float) -> float | None:
    v = percentile(xs, p)
    return None if v is None else round(v, 2)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(key: str) -> float | None:
        vals = [float(r[key]) for r in rows if r.get(key) is not None]
        return round(statistics.fmean(vals), 4) if vals else None

    lat = [float(r["total_s"]) for r in rows]
    ttft = [float(r["ttft_s"]) for r in rows if r.get("ttft_s") is not None]
    return {"n": len(rows), "em": mean("em"), "f1": mean("f1"), "contains": mean("contains"),
            "faithfulness": mean("faithfulness"), "cited_gold": mean("cited_gold"),
            "not_found": round(sum(r["short_answer"] == NOT_FOUND for r in rows) / len(rows), 3) if rows else None,
            "latency_p50_s": _pct(lat, 0.5), "latency_p95_s": _pct(lat, 0.95), "ttft_p50_s": _pct(ttft, 0.5),
            "llm_calls": mean("llm_calls"), "prompt_tokens": mean("prompt_tokens"),
            "completion_tokens": mean("completion_tokens"), "errors": sum(1 for r in rows if r.get("error"))}


def cpu_info() -> dict[str, Any]:
    """What every latency is reported with: the CPU model, its cores and the flags that decide the LLM's speed."""
    from app.serving.vllm_server import cpu_flags

    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return {}
    model = re.search(r"model name\s*:\s*(.+)", text)
    return {"model": model.group(1).strip() if model else "?", "cores": text.count("processor\t:"),
            "flags": sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16"})}


def evaluate(rt: Runtime, qset: QASet, systems: Sequence[str], *,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every system on every question not cached yet; return the report (summary + rows per system)."""
    import asyncio

    bad = [s for s in systems if s not in RUNNERS]
    if bad:
        raise ConfigError(f"unknown system(s) {bad}: choose from {', '.join(SYSTEMS)}")
    ws = qset.workspace
    t_index = time.perf_counter()
    if qset.prepare is not None:
        ws = qset.prepare(rt)
    index_s = time.perf_counter() - t_index
    model = rt.settings.llm_served_name or rt.settings.llm_model
    report: dict[str, Any] = {"dataset": qset.name, "workspace": ws, "model": model, "prompt_version": PROMPT_VERSION,
                              "cpu": cpu_info(), "systems": {}, "rows": {}, "notes": qset.notes,
                              "index_s": round(index_s, 1), "learn_version": LEARN_VERSION,
                              "config": run_config(rt.settings, "agent")}

    async def go() -> None:
        paths = {s: cache_path(rt.settings.home, qset.name, ws, f"{s}-v{LEARN_VERSION}" if s in MEMORY_ARMS else s,
                               model, run_config(rt.settings, s)) for s in systems}
        cached = {s: load_cache(p) for s, p in paths.items()}
        rows: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
        for p in paths.values():
            p.parent.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            files = {s: stack.enter_context(p.open("a", encoding="utf-8")) for s, p in paths.items()}
            for i, q in enumerate(qset.questions):
                # question by question, the systems in turn, each going first as often as the others: rag and
                # the agent's direct route send the same prompt, so whichever runs second finds it in vLLM's
                # prefix cache; rotating shares that advantage out instead of handing it to one system
                for system in [*systems[i % len(systems):], *systems[:i % len(systems)]]:
                    row = cached[system].get(q.qid)
                    if row is None:
                        row = await run_one(rt, system, ws, q)
                        files[system].write(json.dumps(row, ensure_ascii=False) + "\n")
                        files[system].flush()
                    rows[system].append(row)
                    if progress is not None:
                        progress(system)
        for system in systems:
            report["systems"][system] = summarize(rows[system]) | {"cache": str(paths[system])}
            report["rows"][system] = rows[system]

    asyncio.run(go())
    return report


def as_dict(q: QA) -> dict[str, Any]:
    d = asdict(q)
    d["gold_docs"], d["gold_pages"] = sorted(q.gold_docs), sorted(q.gold_pages)
    return d
