"""Ingest prefetch (``RAGENT_INGEST_PREFETCH``): the next file parsed in a spawned worker process while this one is
split, embedded and written. Same results as without it (statuses, chunks, registry rows, saved images, error
messages, warnings), a dead worker costs nothing but a warning, and short-cut files are never parsed."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import pymupdf
import pytest

from app.runtime import Runtime
from core.errors import IngestError
from core.settings import Settings
from ingest import pipeline
from ingest.blocks import ParsedDoc
from ingest.parse import parse_file
from ingest.pipeline import FileResult, Ingestor
from tests.fakes import FakeLLM, HashEmbedder

LOG_ENV = "RAGENT_TEST_PARSE_LOG"  # where parse_logged notes "<pid> <file name>" (the spawned worker inherits it)


def parse_logged(path: Path, **kw: Any) -> ParsedDoc:
    """``parse_file``, noting which process parsed which file. Module level, so it pickles for the worker."""
    with open(os.environ[LOG_ENV], "a") as fh:
        fh.write(f"{os.getpid()} {path.name}\n")
    return parse_file(path, **kw)


def crash_in_worker(path: Path, **kw: Any) -> ParsedDoc:
    """In the prefetch worker: the worker is killed, as the OOM killer would; in the main process: parse_logged."""
    if multiprocessing.parent_process() is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    return parse_logged(path, **kw)


def _parses(log: Path) -> list[tuple[int, str]]:
    """(pid, file name) of every parse noted so far, and the log emptied."""
    if not log.exists():
        return []
    lines = log.read_text().splitlines()
    log.unlink()
    return [(int(pid), name) for pid, name in (ln.split(" ", 1) for ln in lines)]


def _pdf(path: Path, pages: list[str], image: bool = False) -> Path:
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        page.insert_text((72, 72), text, fontsize=12)
        if image:
            pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 160, 120), False)
            pix.clear_with(255)
            for x in range(160):
                for y in range(0, 120, 8):
                    pix.set_pixel(x, y, (x, 255 - x, (x * 3) % 256))
            page.insert_image(pymupdf.Rect(100, 150, 420, 390), pixmap=pix)
            page.insert_text((100, 410), "Figure 1: A striped test pattern of the pump's colours.", fontsize=10)
    doc.save(path)
    return path


@pytest.fixture
def batch(tmp_path: Path, example_pdf: Path) -> list[Path]:
    """The example manual, a PDF with an image, a truncated PDF and an empty file in the middle, Markdown and its
    copy (same size and content: a duplicate decided only after the first is written), a second text PDF, and
    the manual again (unchanged)."""
    d = tmp_path / "in"
    d.mkdir()
    data = example_pdf.read_bytes()
    (d / "truncated.pdf").write_bytes(data[: len(data) // 2])
    (d / "empty.txt").touch()
    text = "# Pumps\n\nThe P-100 pump moves 40 litres a minute.\n\n## Valves\n\nClose the valve before service."
    (d / "notes.md").write_text(text)
    (d / "notes_copy.md").write_text(text)
    return [example_pdf, _pdf(d / "figure.pdf", ["Chart of the pump's flow rates."], image=True), d / "truncated.pdf",
            d / "empty.txt", d / "notes.md", d / "notes_copy.md",
            _pdf(d / "long.pdf", ["Page one: the motor.", "Page two: the gearbox."]), example_pdf]


def _runtime(home: Path) -> Runtime:
    return Runtime(Settings(home=home), overrides={"llm": FakeLLM(), "embedder": HashEmbedder()})


def _state(rt: Runtime, ws: str, results: list[FileResult]) -> dict[str, Any]:
    """Everything a batch leaves behind, comparable across homes."""
    home = rt.settings.home
    rows = sorted((replace(r, updated=0.0) for r in rt.registry.list(ws)), key=lambda r: r.doc_id)
    chunks = {r.doc_id: rt.index.get(ws, list(r.chunk_ids)) for r in rows if r.status == "done"}
    files = sorted((str(p.relative_to(home / "files")), p.read_bytes()) for p in (home / "files").rglob("*")
                   if p.is_file()) if (home / "files").exists() else []
    return {"results": [replace(r, seconds=0.0) for r in results], "rows": rows, "chunks": chunks, "files": files}


def _run(tmp_path: Path, name: str, paths: list[Path], caplog: pytest.LogCaptureFixture,
         **kw: Any) -> tuple[dict[str, Any], list[str], Ingestor]:
    """Ingest ``paths`` into a fresh home; (its state, the pipeline's warnings, the Ingestor)."""
    caplog.clear()
    rt = _runtime(tmp_path / name)
    try:
        ing = Ingestor(rt.index, rt.registry, rt.retriever.embedder_for, home=rt.settings.home, **kw)
        with caplog.at_level(logging.WARNING, logger="ingest.pipeline"):
            res = ing.ingest(paths, "pf")
        warnings = [r.getMessage() for r in caplog.records if r.name == "ingest.pipeline"]
        return _state(rt, "pf", res), warnings, ing
    finally:
        rt.close()


def test_prefetch_on_and_off_give_the_same_results(tmp_path: Path, batch: list[Path],
                                                   caplog: pytest.LogCaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "parses.log"
    monkeypatch.setenv(LOG_ENV, str(log))
    off, off_warn, _ = _run(tmp_path, "off", batch, caplog, parse_fn=parse_logged)
    off_parses = _parses(log)
    on, on_warn, ing = _run(tmp_path, "on", batch, caplog, parse_fn=parse_logged, prefetch=True)
    on_parses = _parses(log)

    got = [(Path(r.path).name, r.status, r.error or r.note) for r in on["results"]]
    expect = [("northwind-field-manual.pdf", "ingested", ""), ("figure.pdf", "ingested", ""),
              ("truncated.pdf", "failed", "truncated"), ("empty.txt", "failed", "the file is empty"),
              ("notes.md", "ingested", ""), ("notes_copy.md", "duplicate", "same content as"),
              ("long.pdf", "ingested", ""), ("northwind-field-manual.pdf", "unchanged", "")]
    for (name, status, msg), (gname, gstatus, gmsg) in zip(expect, got, strict=True):
        assert (gname, gstatus) == (name, status) and msg in gmsg, (gname, gstatus, gmsg)
    assert on["results"] == off["results"]  # statuses, doc ids, counts, versions, notes, error messages
    assert on["rows"] == off["rows"]  # registry: status, hash, version, pages, chunk ids, error, meta, graph
    assert on["chunks"] == off["chunks"]  # chunk ids, texts, pages, bboxes, kinds, images
    assert on["files"] == off["files"] and any(name.endswith(".png") for name, _ in on["files"])
    assert on_warn == off_warn and len(on_warn) == 2  # the two failed files, nothing about the worker

    # the same files parsed, each once; short cuts (duplicate, unchanged) and the empty file never
    parsed = ["northwind-field-manual.pdf", "figure.pdf", "truncated.pdf", "notes.md", "long.pdf"]
    assert sorted(n for _, n in off_parses) == sorted(n for _, n in on_parses) == sorted(parsed)
    assert {pid for pid, _ in off_parses} == {os.getpid()}
    # the worker parsed the files that came next to one being written: the image PDF (its PNG saved by the worker)
    # and the truncated PDF (its IngestError raised in the worker, reported for that file)
    assert sorted(n for pid, n in on_parses if pid != os.getpid()) == ["figure.pdf", "truncated.pdf"]
    assert ing._pool is None and ing.timings["parse"] > 0


def test_a_dead_worker_falls_back_to_parsing_here(tmp_path: Path, batch: list[Path],
                                                  caplog: pytest.LogCaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "parses.log"
    monkeypatch.setenv(LOG_ENV, str(log))
    good = [p for p in batch if p.name not in ("truncated.pdf", "empty.txt")]
    off, _, _ = _run(tmp_path, "off", good, caplog, parse_fn=parse_logged)
    _parses(log)
    on, warn, ing = _run(tmp_path, "crash", good, caplog, parse_fn=crash_in_worker, prefetch=True)
    assert [r.status for r in on["results"]] == ["ingested", "ingested", "ingested", "duplicate", "ingested",
                                                 "unchanged"]
    assert on["results"] == off["results"] and on["rows"] == off["rows"] and on["chunks"] == off["chunks"]
    assert on["files"] == off["files"]
    assert len(warn) == 1 and "prefetch worker died" in warn[0], warn  # one warning, however many files it had
    parses = _parses(log)  # every file parsed here, the ones the worker was sent included
    assert sorted(n for _, n in parses) == ["figure.pdf", "long.pdf", "northwind-field-manual.pdf", "notes.md"]
    assert {pid for pid, _ in parses} == {os.getpid()}
    assert ing._pool is None and not ing._pool_lost  # the next batch may start a worker again


def test_reingest_of_an_unchanged_batch_parses_nothing(tmp_path: Path, batch: list[Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "parses.log"
    monkeypatch.setenv(LOG_ENV, str(log))
    good = [p for p in batch if p.name not in ("truncated.pdf", "empty.txt")]
    rt = _runtime(tmp_path / "home")
    try:
        ing = Ingestor(rt.index, rt.registry, rt.retriever.embedder_for, home=rt.settings.home, prefetch=True,
                       parse_fn=parse_logged)
        first = ing.ingest(good, "pf")
        assert [r.status for r in first] == ["ingested", "ingested", "ingested", "duplicate", "ingested",
                                             "unchanged"]
        assert len(_parses(log)) == 4

        class NoWorker:
            def __init__(self, *a: Any, **k: Any) -> None:
                raise AssertionError("a worker was started for a batch with nothing to parse")

        monkeypatch.setattr(pipeline, "ProcessPoolExecutor", NoWorker)
        again = ing.ingest(good, "pf")
        assert [r.status for r in again] == ["unchanged", "unchanged", "unchanged", "duplicate", "unchanged",
                                             "unchanged"]
        assert _parses(log) == []
    finally:
        rt.close()


def test_a_single_file_to_parse_starts_no_worker(tmp_path: Path, batch: list[Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    class NoWorker:
        def __init__(self, *a: Any, **k: Any) -> None:
            raise AssertionError("a worker was started for one file to parse")

    monkeypatch.setattr(pipeline, "ProcessPoolExecutor", NoWorker)
    rt = _runtime(tmp_path / "home")
    try:
        ing = Ingestor(rt.index, rt.registry, rt.retriever.embedder_for, home=rt.settings.home, prefetch=True)
        res = ing.ingest([batch[4], batch[3], batch[5]], "pf")  # notes.md, the empty file, its duplicate
        assert [r.status for r in res] == ["ingested", "failed", "duplicate"]
    finally:
        rt.close()


def test_parsed_docs_and_ingest_errors_pickle(batch: list[Path], tmp_path: Path) -> None:
    """What crosses the process boundary: a ParsedDoc (blocks, tables, images, warnings) and an IngestError."""
    doc = parse_file(batch[0], files_dir=tmp_path / "f")
    assert any(b.kind == "table" for b in doc.blocks)
    assert pickle.loads(pickle.dumps(doc)) == doc
    fig = parse_file(batch[1], files_dir=tmp_path / "g")
    assert any(b.kind == "image" for b in fig.blocks) and pickle.loads(pickle.dumps(fig)) == fig
    with pytest.raises(IngestError) as e:
        parse_file(batch[2])
    back = pickle.loads(pickle.dumps(e.value))
    assert type(back) is type(e.value) and str(back) == str(e.value)


def test_the_setting_reaches_the_ingestor(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().ingest.prefetch is False
    assert Ingestor(None, None, HashEmbedder()).prefetch is False  # type: ignore[arg-type]
    monkeypatch.setenv("RAGENT_INGEST_PREFETCH", "true")
    s = Settings.from_env()
    assert s.ingest.prefetch is True
    rt = Runtime(s, overrides={"llm": FakeLLM(), "embedder": HashEmbedder()})
    try:
        assert rt.ingestor().prefetch is True
    finally:
        rt.close()
