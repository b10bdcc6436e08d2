"""Answer-quality benchmark: llm-only / rag / agent on HotpotQA, MuSiQue and COVID-QA with the configured LLM.

    .venv/bin/python bench/answers.py --sets hotpotqa,musique,covidqa,covidqa-heldout --limit 50

``covidqa-heldout`` asks other questions of the same 50 articles as ``covidqa``: nothing was tuned on them.
``pdfs`` asks 60 questions over 9 real PDFs (papers, a Redpaper, layout samples; app/evalsets/pdfs.jsonl).

Runs ``ragent eval answers`` (app/eval_answers.py: per-question results cached under $RAGENT_HOME/eval/answers,
so a stopped run resumes) for each set, writes bench/results/answers_<set>.json (summary + every row), the
table in docs/ANSWERS.md and the plot bench/results/answers.png.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.cli.eval import ANSWER_COLUMNS, DEFAULT_DATA, answer_rows  # noqa: E402
from app.eval_answers import evaluate, load_set  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from core.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "ANSWERS.md"
START, END = "<!-- answers:start -->", "<!-- answers:end -->"


def markdown(reports: list[dict]) -> str:
    lines = []
    for rep in reports:
        cpu = rep.get("cpu", {})
        lines += [f"### {rep['dataset']} ({rep['date']}, model `{rep['model']}`, {cpu.get('cores', '?')} cores "
                  f"{cpu.get('model', '?')}, flags {', '.join(cpu.get('flags', []))})", "",
                  f"`{rep['command']}`", "",
                  "| " + " | ".join(ANSWER_COLUMNS) + " |", "|" + "---|" * len(ANSWER_COLUMNS)]
        lines += ["| " + " | ".join(r) + " |" for r in answer_rows(rep)]
        lines.append("")
    return "\n".join(lines)


def write_doc(reports: list[dict]) -> None:
    block = f"{START}\n{markdown(reports)}\n{END}"
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else f"# Answers\n\n## Results\n\n{START}\n{END}\n"
    text = text[: text.index(START)] + block + text[text.index(END) + len(END):]
    DOC.write_text(text, encoding="utf-8")


def plot(reports: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    names = [r["dataset"] for r in reports]
    systems = ["llm-only", "rag", "agent"]
    width = 0.25
    for i, s in enumerate(systems):
        f1 = [100 * (r["systems"].get(s, {}).get("f1") or 0) for r in reports]
        lat = [r["systems"].get(s, {}).get("latency_p50_s") or 0 for r in reports]
        xs = [j + (i - 1) * width for j in range(len(names))]
        ax1.bar(xs, f1, width, label=s)
        ax2.bar(xs, lat, width, label=s)
    for ax, title in ((ax1, "short-answer F1"), (ax2, "latency p50 (s); the systems take turns going first")):
        ax.set_xticks(range(len(names)), [f"{n}\n(n={reports[j]['systems'].get('agent', {}).get('n', '?')})"
                                          for j, n in enumerate(names)])
        ax.set_title(title)
        ax.legend()
    model = reports[0]["model"] if reports else "?"
    fig.suptitle(f"ragent answers, {model} on vLLM")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def load_reports(folder: Path) -> list[dict]:
    """One report per built-in set, in set order: ``answers_<set>.json`` only (``answers_<set>_<variant>.json``
    files are side experiments, quoted in the prose, never the main table)."""
    paths = (folder / f"answers_{name}.json" for name in ("hotpotqa", "musique", "covidqa", "covidqa-heldout", "pdfs"))
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths if p.exists()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="hotpotqa,musique,covidqa")
    ap.add_argument("--systems", default="llm-only,rag,agent")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--report-only", action="store_true", help="Rebuild the table and plot from the JSON files.")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        rt = Runtime(Settings.from_env(ROOT / ".env"))
        try:
            for name in args.sets.split(","):
                qset = load_set(name, DEFAULT_DATA, "", args.limit)
                t0 = time.time()
                rep = evaluate(rt, qset, args.systems.split(","),
                               progress=lambda s: print(".", end="", file=sys.stderr, flush=True))
                rep["command"] = "bench/answers.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
                rep["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
                rep["wall_s"] = round(time.time() - t0)
                (RESULTS / f"answers_{name}.json").write_text(json.dumps(rep, indent=1, ensure_ascii=False) + "\n",
                                                              encoding="utf-8")
                print(f"\n{name}:\n" + markdown([rep]), flush=True)
        finally:
            rt.close()
    reports = load_reports(RESULTS)
    if reports:
        write_doc(reports)
        plot(reports, RESULTS / "answers.png")
        print(markdown(reports))


if __name__ == "__main__":
    main()
