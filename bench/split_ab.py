"""Which first step pays on questions that nest two or more descriptions: the LLM's split (the default,
``RAGENT_AGENT_CHAIN_FIRST_DEPTH=2``) or the wording's split / one search first (``...=100``: the LLM splits only
after the reflector finds the direct answer missing or unsupported)?

    RAGENT_HOME=H .venv/bin/python bench/split_ab.py --arm llm-first --sets musique,hotpotqa
    RAGENT_HOME=H2 .venv/bin/python bench/split_ab.py --arm wording-first --sets musique,hotpotqa
    .venv/bin/python bench/split_ab.py --report

Each arm runs the agent (memory off) through ``app.eval_answers.evaluate`` on the questions of the first
``--limit`` of each set whose ``agents.route.depth`` is >= 2 (the only ones where the two arms differ); rows are
cached per question and per settings under $RAGENT_HOME/eval/answers, so the default arm reuses the rows of a
``ragent eval answers`` run in the same home, and arms may run in separate homes (copies) at the same time. Each
arm writes bench/results/split_ab_<arm>_<set>.json; ``--report`` prints the side-by-side table (F1, EM, wins and
losses by question, LLM calls, latency) and writes bench/results/split_ab.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.route import depth, split_by_wording  # noqa: E402
from app.cli.eval import DEFAULT_DATA  # noqa: E402
from app.eval_answers import evaluate, load_set  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from core.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ARMS: dict[str, dict[str, Any]] = {"llm-first": {}, "wording-first": {"agent_chain_first_depth": 100}}


def run_arm(arm: str, sets: list[str], limit: int) -> None:
    base = Settings.from_env(ROOT / ".env")
    rt = Runtime(base.model_copy(update=ARMS[arm]))
    try:
        for name in sets:
            qset = load_set(name, DEFAULT_DATA, "", limit)
            qset.questions = [q for q in qset.questions if depth(q.question) >= 2]
            t0 = time.time()
            rep = evaluate(rt, qset, ["agent"], progress=lambda s: print(".", end="", file=sys.stderr, flush=True))
            rep |= {"arm": arm, "overrides": ARMS[arm], "limit": limit, "wall_s": round(time.time() - t0),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "command": "bench/split_ab.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])}
            out = RESULTS / f"split_ab_{arm}_{name}.json"
            out.write_text(json.dumps(rep, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"\n{arm} {name}: n={rep['systems']['agent']['n']} F1={rep['systems']['agent']['f1']} -> {out}")
    finally:
        rt.close()


def report() -> dict[str, Any]:
    out: dict[str, Any] = {"arms": ARMS, "sets": {}}
    lines = ["| set | questions | wording split | arm | F1 | EM | won | lost | LLM calls | p50 s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("musique", "hotpotqa"):
        reps = {a: RESULTS / f"split_ab_{a}_{name}.json" for a in ARMS}
        if not all(p.exists() for p in reps.values()):
            continue
        rows = {a: {r["qid"]: r for r in json.loads(p.read_text())["rows"]["agent"]} for a, p in reps.items()}
        qids = sorted(set.intersection(*(set(r) for r in rows.values())))
        for group, keep in (("all", lambda q: True), ("yes", lambda q: bool(split_by_wording(q))),
                            ("no", lambda q: not split_by_wording(q))):
            ids = [i for i in qids if keep(rows["llm-first"][i]["question"])]
            if not ids:
                continue
            for a in ARMS:
                other = next(b for b in ARMS if b != a)
                f1 = [rows[a][i]["f1"] for i in ids]
                won = sum(rows[a][i]["f1"] > rows[other][i]["f1"] for i in ids)
                lost = sum(rows[a][i]["f1"] < rows[other][i]["f1"] for i in ids)
                lat = [rows[a][i]["total_s"] for i in ids]
                calls = [rows[a][i]["llm_calls"] for i in ids]
                row = {"n": len(ids), "f1": round(100 * statistics.fmean(f1), 1),
                       "em": round(100 * statistics.fmean(rows[a][i]["em"] for i in ids), 1), "won": won,
                       "lost": lost, "llm_calls": round(statistics.fmean(calls), 2),
                       "p50_s": round(statistics.median(lat), 1)}
                out["sets"].setdefault(name, {}).setdefault(group, {})[a] = row
                lines.append(f"| {name} | {len(ids)} | {group} | {a} | {row['f1']} | {row['em']} | {won} | {lost} | "
                             f"{row['llm_calls']} | {row['p50_s']} |")
    out["table"] = "\n".join(lines)
    print(out["table"])
    (RESULTS / "split_ab.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arm", choices=sorted(ARMS))
    ap.add_argument("--sets", default="musique,hotpotqa")
    ap.add_argument("--limit", type=int, default=100, help="Deep questions among the first N of each set.")
    ap.add_argument("--report", action="store_true", help="Compare the arms' JSON files.")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.arm:
        run_arm(args.arm, args.sets.split(","), args.limit)
    if args.report:
        report()


if __name__ == "__main__":
    main()
