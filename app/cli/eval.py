"""``ragent eval``: evaluation harnesses. ``ragent eval retrieval --dataset hotpotqa|musique|PATH``."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import sys
import time
from functools import partial
from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table

from app.cli import common
from app.cli.common import err, fail, out
from core.errors import RagentError

eval_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Evaluation harnesses.")

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "multihop"
START, END = "<!-- results:start -->", "<!-- results:end -->"
AGENT_ROW = "agent evidence (multi-hop chain on nested questions)"


def write_markdown(results_dir: Path, doc: Path) -> None:
    """Regenerate the results block of ``doc`` from every ``retrieval_<dataset>.json`` in ``results_dir``."""
    from retrieval.eval import markdown

    reports = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(results_dir.glob("retrieval_*.json"))
               if re.fullmatch(r"retrieval_[a-z0-9]+\.json", p.name) and p.name != "retrieval_latency.json"]
    block = f"{START}\n{markdown(reports)}\n{END}"
    text = doc.read_text(encoding="utf-8") if doc.exists() else f"# Retrieval\n\n## Results\n\n{START}\n{END}\n"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text += f"\n## Results\n\n{block}\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")


@eval_app.command("retrieval")
def retrieval(
    dataset: str = typer.Option(..., "--dataset", "-d", help="hotpotqa | musique | path to a questions file."),
    limit: int = typer.Option(None, "--limit", "-n", help="Only the first N questions."),
    pool: int = typer.Option(None, "--pool", help="Candidates per recall path (default RAGENT_RECALL_CANDIDATES)."),
    rerank_n: int = typer.Option(None, "--rerank-n", help="Fused hits the cross-encoder rescores (default 30)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Folder with <name>_100.json + _corpus.json "
                                  "(default: ../shared/data/multihop next to the checkout)."),
    out_json: Path = typer.Option(None, "--out", help="JSON report (default bench/results/retrieval_<name>.json; "
                                  "not written for --limit runs unless given)."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report."),
    no_rerank: bool = typer.Option(False, "--no-rerank", help="Skip the cross-encoder rows (fast)."),
    agent: bool = typer.Option(False, "--agent", help="Add a row for the evidence the agent reads (its multi-hop "
                               "chain on nested questions): runs the agent, so the LLM server must be up; slow."),
) -> None:
    """Index a multi-hop corpus (cached) and report recall@2/5/10, MRR, nDCG@10 per path, fused and reranked."""
    from app.eval_answers import agent_evidence, embedder_key
    from retrieval.eval import HEADER, evaluate, index_corpus, load_dataset, table_rows, workspace_for
    try:
        with common.runtime() as rt:
            s = rt.settings
            ds = load_dataset(dataset, data_dir or DEFAULT_DATA, limit)
            ws = workspace_for(ds, embedder_key(s))
            retriever = rt.retriever
            if no_rerank:
                retriever.reranker = None
            rerank_key = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{s.rerank_model}_{s.rerank_max_tokens}")
            writer = rt.writer
            with Progress(console=err, transient=True) as bar:
                task = bar.add_task(f"indexing {ds.name} into {ws}", total=len(ds.passages))
                bar.advance(task, len(rt.registry.done_doc_ids(ws) & {p.pid for p in ds.passages}))
                t = time.perf_counter()
                n = index_corpus(ds, ws, writer, rt.registry, progress=lambda k: bar.advance(task, k))
                index_s = time.perf_counter() - t
                task2 = bar.add_task(f"evaluating {len(ds.questions)} questions", total=len(ds.questions))
                extra = {AGENT_ROW: partial(agent_evidence, rt.agent, ws)} if agent else None
                rep = asyncio.run(evaluate(retriever, ds, ws, pool=pool or s.recall_candidates,
                                           rerank_n=rerank_n or s.rerank_top_n,
                                           progress=lambda k: bar.advance(task2, k),
                                           cache_file=s.home / "eval" / f"{ws}_rerank_{rerank_key}.json",
                                           extra=extra))
    except RagentError as e:
        fail(str(e))
        return
    rep["command"] = "ragent eval retrieval " + " ".join(shlex.quote(a) for a in sys.argv[3:])
    rep["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rep["indexed_now"] = {"passages": n, "seconds": round(index_s, 1)}
    target = out_json or (None if limit else ROOT / "bench" / "results" / f"retrieval_{ds.name}.json")
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(rep, indent=1) + "\n", encoding="utf-8")
        if target.parent.resolve() == (ROOT / "bench" / "results").resolve():
            write_markdown(target.parent, ROOT / "docs" / "RETRIEVAL.md")
    if as_json:
        print(json.dumps(rep))
        return
    table = Table(*HEADER, title=f"retrieval on {ds.name}: {rep['questions']} questions, {len(ds.passages)} passages")
    for r in table_rows(rep):
        table.add_row(*r)
    out.print(table)
    out.print(", ".join(f"{p} p50 {v['p50']} ms" for p, v in rep["latency_ms"].items()), highlight=False)


ANSWER_COLUMNS = ("system", "n", "EM", "F1", "contains", "faithful", "cited gold", "not found", "p50 s", "p95 s",
                  "TTFT p50 s", "LLM calls", "prompt tok", "compl tok")


def answer_rows(report: dict[str, object]) -> list[list[str]]:
    """One table row per system of an ``eval answers`` report (percentages for the rates)."""
    def pct(v: object) -> str:
        return "-" if v is None else f"{100 * float(v):.1f}"  # type: ignore[arg-type]

    def num(v: object, fmt: str = "{:.1f}") -> str:
        return "-" if v is None else fmt.format(v)

    rows = []
    for name, s in report["systems"].items():  # type: ignore[attr-defined]
        rows.append([name, str(s["n"]), pct(s["em"]), pct(s["f1"]), pct(s["contains"]), pct(s["faithfulness"]),
                     pct(s["cited_gold"]), pct(s["not_found"]), num(s["latency_p50_s"]), num(s["latency_p95_s"]),
                     num(s["ttft_p50_s"]), num(s["llm_calls"]), num(s["prompt_tokens"], "{:.0f}"),
                     num(s["completion_tokens"], "{:.0f}")])
    return rows


@eval_app.command("answers")
def answers(
    dataset: str = typer.Option(..., "--dataset", "-d", help="hotpotqa | musique | covidqa | covidqa-heldout | "
                                "pdfs (60 questions over 9 real PDFs) | PATH.jsonl (fields: question, answer, "
                                "optional answer_aliases, gold_doc, gold_pages)."),
    workspace: str = typer.Option(None, "--workspace", "-w", help="Workspace holding the documents (required for "
                                  "a .jsonl; the built-in sets index their own corpus when omitted)."),
    systems: str = typer.Option("llm-only,rag,agent", "--systems", help="Comma-separated: llm-only, rag, agent "
                                "(memory off: every question starts from the same state), agent-memory (uses and "
                                "updates its tips and shortcuts), agent-placebo (random tips of the same length)."),
    limit: int = typer.Option(None, "--limit", "-n", min=1, help="Only the first N questions."),
    skip: int = typer.Option(0, "--skip", min=0, help="Leave out the first K questions (e.g. warm the memory up on "
                             "questions 51-100 with --skip 50 --limit 50, then score 1-50)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Folder with the multi-hop sets (default: "
                                  "../shared/data/multihop next to the checkout)."),
    out_json: Path = typer.Option(None, "--out", help="Also write the JSON report (summary + every row) here."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON summary."),
) -> None:
    """Answer quality end to end: EM / F1 of the short answer, contains-gold, citation faithfulness, cited-gold
    rate, latency, LLM calls and tokens, per system. Per-question results are cached, so an interrupted run
    continues where it stopped."""
    from app.eval_answers import evaluate, load_set

    names = [s.strip() for s in systems.split(",") if s.strip()]
    try:
        with common.runtime() as rt:
            qset = load_set(dataset, data_dir or DEFAULT_DATA, workspace or "", limit, skip)
            with Progress(console=err, transient=True) as bar:
                tasks = {s: bar.add_task(f"{s} on {qset.name}", total=len(qset.questions)) for s in names}
                rep = evaluate(rt, qset, names, progress=lambda s: bar.advance(tasks[s]))
    except RagentError as e:
        fail(str(e))
        return
    rep["command"] = "ragent eval answers " + " ".join(shlex.quote(a) for a in sys.argv[3:])
    rep["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(rep, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if as_json:
        print(json.dumps({k: v for k, v in rep.items() if k != "rows"}))
        return
    table = Table(*ANSWER_COLUMNS, title=f"answers on {rep['dataset']} ({rep['workspace']}, model {rep['model']})")
    for r in answer_rows(rep):
        table.add_row(*r)
    out.print(table)
