"""The straight path with fakes: ingest -> Qdrant local -> search -> answer with citations; bad input."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.answer import rag_answer
from agents.cite import citations_for, verify
from app.runtime import Runtime
from core.settings import Settings
from core.types import Chunk, Hit
from ingest.pipeline import Ingestor
from retrieval.sparse import bm25_document, bm25_query, tokenize
from tests.fakes import FakeLLM


def ingestor(rt: Runtime) -> Ingestor:
    return Ingestor(rt.index, rt.registry, rt.embedder, index_writer=rt.writer)


def test_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGENT_LLM_BASE_URL", "http://gpu:8000/v1/")
    monkeypatch.setenv("RAGENT_LLM_SPEC_TOKENS", "7")
    s = Settings()
    assert s.llm.base_url == "http://gpu:8000/v1"
    assert s.serve.spec_tokens == 7
    assert s.llm_model_dir.name == "Qwen2.5-Coder-1.5B-Instruct"


def test_bm25_vectors() -> None:
    assert tokenize("The Models ran") == ["model", "ran"]
    idx, val = bm25_document("inverter output inverter")
    assert len(idx) == 2 and all(v > 0 for v in val)
    assert set(bm25_query("inverter")[0]) <= set(idx)


def test_bm25_tokens_in_every_script() -> None:
    """Words outside ASCII were dropped or cut before (a Korean report had no sparse terms at all; "Zürich" was
    "z" + "rich"): now any script tokenises, Latin accents fold, and Han/kana/Hangul become bigrams, so a
    particle glued to a Korean word ("보고서는") still matches the bare word ("보고서")."""
    assert tokenize("Zürich Łukasz naïve Straße") == ["zurich", "lukasz", "naive", "strasse"]
    assert set(tokenize("보고서")) <= set(tokenize("이슈와 논점 보고서는"))
    assert tokenize("제1695호") == ["제", "1695", "호"]
    assert tokenize("東京都") == ["東京", "京都"]
    assert tokenize("Москва столица") == ["москва", "столица"]
    assert tokenize("ﬁnance ｆｕｌｌ") == ["finance", "full"]  # NFKC: ligatures and full-width forms
    # pure ASCII tokenises as it always did (an English index needs no re-ingest): apostrophe tails dropped
    assert tokenize("O'Brien's models don't run") == ["o", "model", "run"]
    assert tokenize("O’Brien’s models") == ["o", "model"]


def test_sparse_path_finds_korean_and_accented_text(fake_runtime: Runtime, tmp_path: Path) -> None:
    """A real ingest + Qdrant sparse query: the BM25 path alone finds a Korean report's number and an accented
    name, which it could not when only [a-z0-9] made tokens."""
    (tmp_path / "kr.md").write_text("# 이슈와 논점\n\n발행일 2020년 4월 2일. 국회입법조사처 제1695호 보고서입니다.\n")
    (tmp_path / "en.md").write_text("# Plants\n\nThe Zürich plant pumps water. The report covers pumps.\n")
    (tmp_path / "other.md").write_text("# Other\n\nA different report about inverters and their rated output.\n")
    ingestor(fake_runtime).ingest(sorted(tmp_path.glob("*.md")), "kr")
    ret = fake_runtime.retriever
    kr = asyncio.run(ret.recall("sparse", "kr", "국회입법조사처 보고서는 몇 호인가?", 3))
    assert kr and "제1695호" in kr[0].chunk.text
    de = asyncio.run(ret.recall("sparse", "kr", "Zurich plant", 3))
    assert de and "Zürich" in de[0].chunk.text


def test_ingest_search_answer(fake_runtime: Runtime, fake_llm: FakeLLM, example_pdf: Path) -> None:
    res = ingestor(fake_runtime).ingest([example_pdf], "t1")
    assert [r.status for r in res] == ["ingested"] and res[0].pages == 3 and res[0].chunks >= 3
    hits = asyncio.run(fake_runtime.retriever.search("t1", "rated output of the inverter", k=3))
    assert hits and hits[0].chunk.page in (1, 2)
    fake_llm.replies = ["Answer: 5 kW\nExplanation: The NW-200 has a rated output of 5 kW [1]."]
    ans, _ = asyncio.run(rag_answer(fake_runtime.retriever, fake_llm, "t1", "What is the rated output?"))
    assert ans.short_answer == "5 kW" and ans.citations and ans.citations[0].verified
    assert len(fake_llm.calls) == 1  # one search + one call
    assert ans.citations[0].page is not None
    assert ans.citations[0].chunk_id in {h.chunk.id for h in hits} | {c.id for c in fake_runtime.index.get(
        "t1", [ans.citations[0].chunk_id])}


def test_reingest_is_noop_and_workspaces_isolated(fake_runtime: Runtime, example_pdf: Path) -> None:
    ing = ingestor(fake_runtime)
    ing.ingest([example_pdf], "a")
    n = fake_runtime.index.count("a")
    assert [r.status for r in ing.ingest([example_pdf], "a")] == ["unchanged"]
    assert fake_runtime.index.count("a") == n
    assert asyncio.run(fake_runtime.retriever.search("b", "inverter", k=3)) == []


def test_delete_removes_vectors(fake_runtime: Runtime, example_pdf: Path) -> None:
    ing = ingestor(fake_runtime)
    (r,) = ing.ingest([example_pdf], "d")
    assert ing.delete("d", r.doc_id)
    assert fake_runtime.index.count("d") == 0
    assert asyncio.run(fake_runtime.retriever.search("d", "inverter", k=3)) == []


def test_bad_inputs_fail_per_file(fake_runtime: Runtime, tmp_path: Path, example_pdf: Path) -> None:
    fake = tmp_path / "fake.pdf"
    fake.write_text("this is not a pdf at all")
    empty = tmp_path / "empty.pdf"
    empty.touch()
    odd = tmp_path / "data.xyz"
    odd.write_text("x")
    res = ingestor(fake_runtime).ingest([tmp_path / "missing.pdf", fake, empty, odd, example_pdf], "bad")
    status = {Path(r.path).name: (r.status, r.error) for r in res}
    assert status["missing.pdf"][0] == "failed" and "no such file" in status["missing.pdf"][1]
    assert status["fake.pdf"][0] == "failed" and "not a readable PDF" in status["fake.pdf"][1]
    assert status["empty.pdf"][0] == "failed" and "empty" in status["empty.pdf"][1]
    assert status["data.xyz"][0] == "failed" and "unsupported" in status["data.xyz"][1]
    assert status[example_pdf.name][0] == "ingested"


def test_citations_parse_and_verify() -> None:
    c = Chunk(id="a" * 32, doc_id="d", workspace="w", text="Sky is blue. Grass is green.", page=2)
    cites = citations_for("Grass is green [1]. Also [7].", [Hit(chunk=c, score=1.0)])
    assert len(cites) == 1 and cites[0].quote == "Grass is green." and cites[0].verified
    assert not verify("grass is purple", c.text)


def test_cli_bad_input_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import cli
    from app.cli import common

    monkeypatch.setattr(common, "runtime", _fake_runtime_cm(tmp_path))
    empty = tmp_path / "e.txt"
    empty.touch()
    r = CliRunner().invoke(cli.app, ["ingest", str(empty), str(tmp_path / "nope.pdf"), "--json", "-w", "x"])
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert data["failed"] == 2 and "Traceback" not in r.output


def test_cli_ask_llm_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, example_pdf: Path) -> None:
    """With no server listening, ask says how to start one and exits 1 without a traceback."""
    from app import cli
    from app.cli import common

    monkeypatch.setenv("RAGENT_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RAGENT_LLM_RETRIES", "0")
    monkeypatch.setattr(common, "runtime", _fake_runtime_cm(tmp_path, keep_llm=True))
    runner = CliRunner()
    assert runner.invoke(cli.app, ["ingest", str(example_pdf), "-w", "x"]).exit_code == 0
    r = runner.invoke(cli.app, ["ask", "What is the rated output?", "-w", "x"])
    assert r.exit_code == 1
    assert "ragent llm serve" in r.output and "Traceback" not in r.output


def _fake_runtime_cm(tmp_path: Path, keep_llm: bool = False):  # type: ignore[no-untyped-def]
    from contextlib import contextmanager

    from tests.fakes import HashEmbedder

    @contextmanager
    def cm():  # type: ignore[no-untyped-def]
        s = Settings(home=tmp_path / "var")
        over: dict[str, object] = {"embedder": HashEmbedder()}
        if not keep_llm:
            over["llm"] = FakeLLM()
        rt = Runtime(s, overrides=over)
        try:
            yield rt
        finally:
            rt.close()

    return cm


def test_cli_registers_every_command() -> None:
    """Regression: `make run` calls `ragent llm serve`; every area's commands must be registered."""
    import typer

    from app import cli

    names = set(typer.main.get_command(cli.app).commands)  # type: ignore[attr-defined]
    assert {"ingest", "search", "ask", "llm", "docs", "eval", "memory", "finetune", "api", "ui", "keys"} <= names


def test_get_skips_malformed_chunk_ids(fake_runtime: Runtime, example_pdf: Path) -> None:
    """Regression: an agent's read_chunk with an LLM-invented id raised 'badly formed hexadecimal UUID'."""
    (r,) = ingestor(fake_runtime).ingest([example_pdf], "g")
    real = fake_runtime.registry.get("g", r.doc_id).chunk_ids[0]  # type: ignore[union-attr]
    got = fake_runtime.index.get("g", ["chunk-3", "[1]", real])
    assert [c.id for c in got] == [real]
