"""bench/answers.py: the docs table is built from one report per set, never from side experiments."""

from __future__ import annotations

import json
from pathlib import Path

from bench.answers import load_reports


def test_the_table_reads_one_report_per_set_and_skips_side_experiments(tmp_path: Path) -> None:
    for name, dataset in (("answers_musique.json", "musique"), ("answers_musique_n75_focus.json", "musique"),
                          ("answers_hotpotqa_routing_v2.json", "hotpotqa"), ("answers_hotpotqa.json", "hotpotqa")):
        (tmp_path / name).write_text(json.dumps({"dataset": dataset, "file": name}), encoding="utf-8")
    reports = load_reports(tmp_path)
    assert [r["file"] for r in reports] == ["answers_hotpotqa.json", "answers_musique.json"]
