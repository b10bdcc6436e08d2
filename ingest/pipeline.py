"""The ingest pipeline: file -> blocks -> pieces -> (context) -> chunks -> dense + sparse vectors -> Qdrant.

Per file: check it (exists, type, size, not empty) -> hash it -> skip when unchanged (same bytes and ``recipe``:
parser version + chunk settings) or a duplicate -> parse + split (+ enrich) -> registry ``processing`` -> delete
the old version's vectors -> write through ``IndexWriter`` -> registry ``done``. A document is visible to search
only once its row is ``done``; a crash anywhere leaves a ``pending``/``processing`` row that the next run redoes
from scratch (chunk ids are content hashes and the old points are deleted first: no duplicates). A bad file is
reported and the batch goes on; when a changed file turns out to be bad, the previous version stays searchable.

Deferred graph stage (``graph_stage="deferred"``, the default): a file's write is dense + sparse vectors only,
its row turns ``done`` with ``graph="pending"`` (shown as ``searchable``), and once every file of the batch is
searchable ``graph_stage_run`` extracts entities and relations, embeds new entity names and writes the graph of
every pending document of the workspace, one document at a time, marking each ``graph="done"``. A crash in
that stage leaves rows ``pending``: the next ``ingest`` (even of nothing new) finishes them, and rewriting a
chunk's graph is idempotent. ``graph_stage="inline"`` writes vectors and graph together, as before.

Prefetch (``prefetch=True``, ``RAGENT_INGEST_PREFETCH``; off by default): while this process splits, embeds and
writes file N, ONE spawned worker process parses file N+1. Everything else stays here and in the same order:
``prepare`` (checks, hash, unchanged / duplicate short cuts, staging folder) decides each file before its parse is
sent, so a file a short cut skips is never parsed; only ``parse_fn`` runs in the worker (it must pickle: a
module-level function). The worker starts only when a second file of the batch needs parsing (the first is parsed
here, next to the worker's parse of the second) and stops at the end of the batch. Results are the same with and
without it: an ``IngestError`` raised in the worker fails that file with its message; if the worker dies
(``BrokenProcessPool``, e.g. the OOM killer), one warning is logged and the rest of the batch is parsed here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import multiprocessing
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from core.config import GraphStage, IngestConfig, SplitMode
from core.embedder import Embedder
from core.errors import IngestError, LLMUnavailableError
from core.types import Chunk, content_id
from core.vision import VisionModel
from ingest.blocks import ParsedDoc
from ingest.enrich import Enricher
from ingest.ocr import OcrConfig
from ingest.parse import PARSER_VERSION, SUPPORTED, parse_file
from ingest.split import LexicalEmbedder, SemanticSplitter, split_blocks
from retrieval.index import VectorIndex
from retrieval.registry import DocRecord, Registry
from retrieval.sparse import SPARSE_VERSION
from retrieval.writer import IndexWriter

logger = logging.getLogger(__name__)

FileStatus = Literal["ingested", "unchanged", "updated", "duplicate", "failed"]
# (event, amount): events "file", "pages", "chunks", "embedded"; graph stage: "graph_chunks" (chunks it will
# walk, added to its total), "graphed" (chunks done)
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class FileResult:
    path: str
    status: FileStatus
    doc_id: str = ""
    pages: int = 0
    chunks: int = 0
    error: str = ""
    version: int = 0
    tables: int = 0
    images: int = 0
    enriched: int = 0
    seconds: float = 0.0
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


class ParseFn(Protocol):
    """What the Ingestor parses a file with (``ingest.parse.parse_file``). With prefetch it runs in a spawned
    worker process, so it must pickle: a module-level function."""

    def __call__(self, path: Path, *, max_pages: int = ..., files_dir: Path | None = ...,
                 ocr: OcrConfig | None = ...) -> ParsedDoc: ...


@dataclass(frozen=True)
class FileJob:
    """A file past ``prepare``: checked, hashed, neither unchanged nor a duplicate; its staging folder (where the
    parse saves images; None without a home) is empty. ``prev`` is its registry row before this run, if any."""

    path: Path
    source: str  # the absolute path
    doc_id: str
    digest: str
    size: int
    prev: DocRecord | None
    staging: Path | None

    @property
    def had_done(self) -> bool:
        return self.prev is not None and self.prev.status == "done"

    @property
    def version(self) -> int:
        return 1 if self.prev is None else self.prev.version + 1 if self.had_done else self.prev.version


@dataclass(frozen=True)
class _Staged:
    """File ``index`` of a prefetching batch, prepared ahead of its turn: a short cut, a refusal, or a job whose
    parse runs in the worker (``future``; None: parsed in this process when its turn comes)."""

    index: int
    outcome: FileResult | IngestError | FileJob
    future: Future[ParsedDoc] | None = None


@dataclass
class Ingestor:
    """Ingests files into a workspace. ``embedder`` is an Embedder or a per-workspace ``embedder_for``
    (``Retriever.embedder_for``) so a fine-tuned workspace gets vectors from its own model."""

    index: VectorIndex
    registry: Registry
    embedder: Embedder | Callable[[str], Embedder]
    home: Path | None = None  # RAGENT_HOME: images go to home/files/<doc_id>/, page images to home/pages/
    chunk_chars: int = IngestConfig.chunk_chars  # the limits default to IngestConfig's (one source of defaults)
    max_file_mb: float = IngestConfig.max_file_mb
    max_pages: int = IngestConfig.max_pages
    split_mode: SplitMode = IngestConfig.split_mode  # structure | lexical (TextTiling-style) | semantic (model)
    ocr: OcrConfig = field(default_factory=OcrConfig)  # scanned pages and text in images (RAGENT_OCR*)
    vision: VisionModel | None = None  # describes each saved image (RAGENT_VLM_*); None = OCR + caption only
    enricher: Enricher | None = None
    progress: Progress | None = field(default=None)
    on_file: Callable[[Path], None] | None = field(default=None)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, summed over the run
    # the writer of vectors + graph (``Runtime.writer``: the configured graph store and entity extractor);
    # None = an IndexWriter of vectors only (no graph: the Runtime is the one place a graph store is built)
    index_writer: IndexWriter | None = None
    graph_stage: GraphStage = IngestConfig.graph_stage  # RAGENT_GRAPH_STAGE: after all files are searchable, or inline
    prefetch: bool = IngestConfig.prefetch  # RAGENT_INGEST_PREFETCH: parse file N+1 in a worker while N is written
    parse_fn: ParseFn = parse_file  # the parser (a seam for tests: with prefetch it must pickle)
    # prefetch state, within one ``ingest`` call: the next file, prepared; the worker; whether it died
    _ahead: _Staged | None = field(default=None, init=False, repr=False, compare=False)
    _pool: ProcessPoolExecutor | None = field(default=None, init=False, repr=False, compare=False)
    _pool_lost: bool = field(default=False, init=False, repr=False, compare=False)

    @classmethod
    def from_config(cls, index: VectorIndex, registry: Registry, embedder: Embedder | Callable[[str], Embedder],
                    config: IngestConfig, **kw: Any) -> Ingestor:
        """An Ingestor with ``config``'s limits, splitting and OCR (``Settings.ingest``); ``kw`` sets the rest."""
        return cls(index, registry, embedder, chunk_chars=config.chunk_chars, max_file_mb=config.max_file_mb,
                   max_pages=config.max_pages, split_mode=config.split_mode, graph_stage=config.graph_stage,
                   prefetch=config.prefetch, ocr=OcrConfig.of(config.ocr), **kw)

    def _time(self, stage: str, t0: float) -> float:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - t0
        return now

    def _tick(self, event: str, n: int = 1) -> None:
        if self.progress is not None:
            self.progress(event, n)

    def embedder_for(self, workspace: str) -> Embedder:
        e = self.embedder
        return e if isinstance(e, Embedder) else e(workspace)

    @property
    def recipe(self) -> str:
        """What a file's chunks depend on besides its bytes: the parser version, the settings that cut them
        (chunk size, split mode, OCR) and the BM25 tokeniser (``retrieval.sparse.SPARSE_VERSION``). Kept in the
        registry row's meta; a file whose row has another recipe is ingested again though unchanged (a parser
        upgrade, RAGENT_CHUNK_CHARS). The LLM context and image descriptions only add to chunks and are left
        out: an ingest without ``--enrich`` keeps what one with it wrote."""
        parts = {"parser": PARSER_VERSION, "chunk_chars": self.chunk_chars, "split": self.split_mode,
                 "ocr": [self.ocr.mode, self.ocr.languages, self.ocr.dpi]}
        if SPARSE_VERSION != 1:  # version 1 rows carry no key: their recipe stays what it was
            parts["sparse"] = SPARSE_VERSION
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def writer(self) -> IndexWriter:
        if self.index_writer is None:
            self.index_writer = IndexWriter(self.index, self.embedder_for, graph=None)
        return self.index_writer

    # ---- files on disk ---------------------------------------------------------------------------
    def files_dir(self, doc_id: str) -> Path | None:
        return None if self.home is None else self.home / "files" / doc_id

    def _remove_files(self, doc_id: str) -> None:
        if self.home is None:
            return
        for d in (self.home / "files" / doc_id, self.home / "files" / f"{doc_id}.new", self.home / "pages" / doc_id):
            shutil.rmtree(d, ignore_errors=True)

    # ---- batch -----------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[Path], workspace: str) -> list[FileResult]:
        """Ingest every path; one bad file never aborts the batch."""
        paths = list(paths)
        self._mark_pending(paths, workspace)
        results = []
        try:
            for i, p in enumerate(paths):
                if self.on_file is not None:
                    self.on_file(p)
                t0 = time.perf_counter()
                try:
                    if self.prefetch:
                        r = self._ingest_prefetching(paths, i, workspace)
                    else:
                        r = self.ingest_file(p, workspace)
                except IngestError as e:
                    logger.warning("%s", e)
                    r = FileResult(path=str(p), status="failed", error=str(e))
                results.append(replace(r, seconds=round(time.perf_counter() - t0, 3)))  # with prefetch: + the wait
                self._tick("file")
        finally:
            self._stop_prefetch()
        if any(r.status in ("ingested", "updated") for r in results):
            self.index.optimize(workspace)  # Qdrant Edge: build HNSW for the new points; elsewhere a no-op
        self.graph_stage_run(workspace)
        return results

    def graph_stage_run(self, workspace: str) -> int:
        """The deferred graph stage: write the graph of every searchable document whose graph is pending (this
        batch's, and any a crash left); returns how many documents it finished. Search works throughout."""
        pending = self.registry.graph_pending(workspace)
        if not pending:
            return 0
        self._tick("graph_chunks", sum(len(r.chunk_ids) for r in pending))
        t0 = time.perf_counter()
        finished = 0
        for rec in pending:
            chunks = self.index.get(workspace, rec.chunk_ids)
            self.writer.write_graph(workspace, chunks, progress=lambda n: self._tick("graphed", n))
            if self.registry.set_graph(workspace, rec.doc_id, rec.content_hash, "done"):
                finished += 1
            elif self.registry.get(workspace, rec.doc_id) is None and self.writer.graph is not None:
                self.writer.graph.delete_doc(workspace, rec.doc_id)  # deleted while its graph was written
        self._time("graph", t0)
        return finished

    def _mark_pending(self, paths: Sequence[Path], workspace: str) -> None:
        """Register new files as ``pending`` so a listing shows the whole batch and a crash is visible."""
        for p in paths:
            try:
                if not p.is_file() or p.suffix.lower() not in SUPPORTED or p.stat().st_size == 0:
                    continue
                source = str(p.resolve())
                doc_id = content_id(workspace, source)
                if self.registry.get(workspace, doc_id) is None:
                    digest = hashlib.sha256(p.read_bytes()).hexdigest()
                    self.registry.put(DocRecord(workspace, doc_id, source, p.stem, digest, "pending", 1))
            except OSError:
                continue

    def _check(self, path: Path) -> bytes:
        if not path.exists():
            raise IngestError(f"{path}: no such file")
        if not path.is_file():
            raise IngestError(f"{path}: not a file (pass a folder with --recursive, or a file)")
        if path.suffix.lower() not in SUPPORTED:
            raise IngestError(f"{path.name}: unsupported file type {path.suffix or '(none)'}; "
                              f"supported: {', '.join(sorted(SUPPORTED))}")
        size = path.stat().st_size
        if size == 0:
            raise IngestError(f"{path.name}: the file is empty (0 bytes)")
        if size > self.max_file_mb * 1024 * 1024:
            raise IngestError(f"{path.name}: {size / 1e6:.1f} MB is over the limit of {self.max_file_mb:g} MB; "
                              "raise RAGENT_MAX_FILE_MB or split the file")
        return path.read_bytes()

    # ---- one file --------------------------------------------------------------------------------
    def ingest_file(self, path: Path, workspace: str) -> FileResult:
        job = self.prepare(path, workspace)
        if isinstance(job, FileResult):
            return job
        return self.finish(job, workspace, lambda: self._parse_here(job))

    def prepare(self, path: Path, workspace: str) -> FileResult | FileJob:
        """The cheap first part of a file, always in this process: checks (raise ``IngestError``), hash, the
        ``unchanged`` / ``duplicate`` short cuts (their FileResult), else a job with an empty staging folder."""
        data = self._check(path)
        source = str(path.resolve())
        digest = hashlib.sha256(data).hexdigest()
        doc_id = content_id(workspace, source)
        prev = self.registry.get(workspace, doc_id)
        if prev and prev.status == "done" and prev.content_hash == digest and prev.meta.get("recipe") == self.recipe:
            return FileResult(str(path), "unchanged", doc_id, prev.pages, len(prev.chunk_ids), version=prev.version)
        twins = [r for r in self.registry.by_hash(workspace, digest) if r.doc_id != doc_id and r.status == "done"]
        if twins:
            if prev and prev.status != "done":  # it was only registered as pending in this batch
                self.registry.delete(workspace, doc_id)
            t = twins[0]
            return FileResult(str(path), "duplicate", t.doc_id, t.pages, len(t.chunk_ids), version=t.version,
                              note=f"same content as {t.source}; not ingested twice")
        staging = self.files_dir(f"{doc_id}.new")
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        return FileJob(path, source, doc_id, digest, len(data), prev, staging)

    def finish(self, job: FileJob, workspace: str, parse: Callable[[], ParsedDoc]) -> FileResult:
        """The rest of a file: ``parse()`` (here, or the prefetch worker's result), describe images, split, enrich,
        then registry ``processing`` -> write -> ``done``. A failure on the input registers the file ``failed``
        (a changed file keeps its previous version searchable) and raises."""
        path, source, doc_id, digest, staging = job.path, job.source, job.doc_id, job.digest, job.staging
        try:  # everything that can fail on the input happens before the index is touched
            parsed = parse()
            t0 = time.perf_counter()
            parsed = self.describe_images(parsed, staging)
            t0 = self._time("vision", t0)
            self._tick("pages", parsed.pages)
            chunks = self.build_chunks(parsed, workspace, doc_id, source)
            t0 = self._time("split", t0)
            self._tick("chunks", len(chunks))
            chunks, enriched, enrich_failed = self.enrich(parsed, digest, chunks)
            self._time("enrich", t0)
        except IngestError as e:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            if job.had_done:
                raise IngestError(f"{e} (the previous version stays searchable)") from e
            self.registry.put(DocRecord(workspace, doc_id, source, path.stem, digest, "failed", job.version,
                                        error=str(e)))
            raise
        meta: dict[str, object] = {
            "images_seen": parsed.images_seen, "tables": sum(c.kind == "table" for c in chunks),
            "images": sum(c.kind == "image" for c in chunks), "enriched": enriched, "bytes": job.size,
            "recipe": self.recipe,
        }
        rec = DocRecord(workspace, doc_id, source, parsed.title, digest, "processing", job.version, parsed.pages,
                        meta=meta)
        t0 = time.perf_counter()
        self.registry.put(rec)
        if job.prev is not None:  # replace the old version (also cleans up after a crash mid-ingest)
            self.writer.delete_doc(workspace, doc_id)
        self._commit_files(doc_id, staging)
        deferred = self.graph_stage == "deferred" and self.writer.graph is not None
        if deferred:
            self.writer.write_vectors(workspace, chunks, progress=lambda n: self._tick("embedded", n))
        else:
            self.writer.write(workspace, chunks, progress=lambda n: self._tick("embedded", n))
        self.registry.put(replace(rec, status="done", chunk_ids=tuple(c.id for c in chunks),
                                  graph="pending" if deferred else "done"))
        self._time("write", t0)
        same = job.had_done and job.prev is not None and job.prev.content_hash == digest
        return FileResult(str(path), "updated" if job.had_done else "ingested", doc_id, parsed.pages, len(chunks),
                          version=job.version, tables=sum(c.kind == "table" for c in chunks),
                          images=sum(c.kind == "image" for c in chunks), enriched=enriched,
                          note="; ".join((["parsed again: the parser or the ingest settings changed"] if same else [])
                                         + [*parsed.warnings] + ([f"{enrich_failed} chunk(s) got no LLM context "
                                                                "(LLM errors, see the log)"] if enrich_failed else [])))

    def _parse_here(self, job: FileJob) -> ParsedDoc:
        t0 = time.perf_counter()
        parsed = self.parse_fn(job.path, max_pages=self.max_pages, files_dir=job.staging, ocr=self.ocr)
        self._time("parse", t0)
        return parsed

    # ---- prefetch: the next file's parse in a worker process -------------------------------------
    def _ingest_prefetching(self, paths: list[Path], i: int, workspace: str) -> FileResult:
        """``ingest_file`` of ``paths[i]`` with prefetch. The file was prepared while the one before it was written,
        its parse sent to the worker, or is prepared now and parsed here. Before it is split, embedded and written,
        the next file is prepared and its parse sent to the worker, so that the two overlap."""
        ahead, self._ahead = self._ahead, None
        staged = ahead if ahead is not None and ahead.index == i else self._stage(i, paths[i], workspace)
        job = staged.outcome
        if isinstance(job, IngestError):
            raise job
        if isinstance(job, FileResult):
            return job
        if i + 1 < len(paths) and not self._may_follow(paths[i + 1], workspace, job):
            self._ahead = self._stage(i + 1, paths[i + 1], workspace, busy=True)
        future = staged.future
        if future is None:
            return self.finish(job, workspace, lambda: self._parse_here(job))
        return self.finish(job, workspace, lambda: self._parse_prefetched(job, future))

    def _stage(self, index: int, path: Path, workspace: str, busy: bool = False) -> _Staged:
        """``prepare`` file ``index``, keeping its refusal for its turn; ``busy``: this process is about to write
        another file, so a job's parse goes to the worker meanwhile."""
        try:
            outcome = self.prepare(path, workspace)
        except IngestError as e:
            return _Staged(index, e)
        future = self._submit(outcome) if busy and isinstance(outcome, FileJob) else None
        return _Staged(index, outcome, future)

    @staticmethod
    def _may_follow(path: Path, workspace: str, busy: FileJob) -> bool:
        """Whether ``path``'s short cuts may depend on how ``busy`` ends, so it is prepared only after it: the same
        document (unchanged once written), or maybe the same content (a duplicate once written; told by the size,
        the hash is read in ``prepare``)."""
        try:
            if path.stat().st_size == busy.size:
                return True
        except OSError:
            return False  # prepare says what is wrong with it
        return content_id(workspace, str(path.resolve())) == busy.doc_id

    def _submit(self, job: FileJob) -> Future[ParsedDoc] | None:
        """Send ``job``'s parse to the worker, started on first use; None once the worker died in this batch."""
        if self._pool_lost:
            return None
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return self._pool.submit(self.parse_fn, job.path, max_pages=self.max_pages, files_dir=job.staging,
                                     ocr=self.ocr)
        except BrokenProcessPool as e:
            self._lose_worker(e)
            return None

    def _parse_prefetched(self, job: FileJob, future: Future[ParsedDoc]) -> ParsedDoc:
        """The worker's parse of ``job`` (its ``IngestError`` re-raised here); "parse" times the wait for it, the
        part of parsing left on this process's path. A dead worker: the file is parsed here."""
        t0 = time.perf_counter()
        try:
            parsed = future.result()
        except BrokenProcessPool as e:
            self._lose_worker(e)
            self._time("parse", t0)
            if job.staging is not None:
                shutil.rmtree(job.staging, ignore_errors=True)  # what the worker saved before it died
            return self._parse_here(job)
        self._time("parse", t0)
        return parsed

    def _lose_worker(self, e: BaseException) -> None:
        if self._pool_lost:
            return
        logger.warning("the ingest prefetch worker died (%s); the rest of the batch is parsed in this process",
                       str(e) or type(e).__name__)
        self._pool_lost = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _stop_prefetch(self) -> None:
        """End of a batch: the worker stops (after a parse it may be running), the next batch starts afresh."""
        self._ahead = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pool_lost = False

    def _commit_files(self, doc_id: str, staging: Path | None) -> None:
        if self.home is None:
            return
        shutil.rmtree(self.home / "pages" / doc_id, ignore_errors=True)  # page images of the old version
        final = self.home / "files" / doc_id
        shutil.rmtree(final, ignore_errors=True)
        if staging is not None and staging.exists():
            staging.rename(final)

    def build_chunks(self, parsed: ParsedDoc, workspace: str, doc_id: str, source: str) -> list[Chunk]:
        splitter = None
        if self.split_mode == "semantic":
            splitter = SemanticSplitter(self.embedder_for(workspace))
        elif self.split_mode == "lexical":
            splitter = SemanticSplitter(LexicalEmbedder())
        pieces = split_blocks(parsed.blocks, self.chunk_chars, splitter)
        return [
            Chunk(id=content_id(doc_id, str(i), p.text), doc_id=doc_id, workspace=workspace, text=p.text,
                  page=p.page, kind=p.kind, doc_title=parsed.title, source=source, bbox=p.bbox,
                  heading_path=p.heading_path, order=i, image=p.image, ocr_confidence=p.ocr_confidence)
            for i, p in enumerate(pieces)
        ]

    def describe_images(self, parsed: ParsedDoc, files: Path | None) -> ParsedDoc:
        """Each saved image's text gets the vision model's description (cached by image hash). A failing
        vision server never fails the document: the images keep their OCR text and caption, with a warning."""
        if self.vision is None or files is None:
            return parsed
        blocks, failed = [], ""
        for b in parsed.blocks:
            if b.kind == "image" and b.image_path and not failed and (files / b.image_path).is_file():
                try:
                    seen = self.vision.describe((files / b.image_path).read_bytes())
                except LLMUnavailableError as e:
                    failed = str(e)
                    logger.warning("%s", e)
                else:
                    if seen:
                        head, _, rest = b.text.partition("\n")
                        b = replace(b, text="\n".join(p for p in (head, f"Image description: {seen}", rest) if p))
            blocks.append(b)
        warnings = (*parsed.warnings, f"images were not described: {failed}") if failed else parsed.warnings
        return replace(parsed, blocks=blocks, warnings=warnings)

    def enrich(self, parsed: ParsedDoc, digest: str, chunks: list[Chunk]) -> tuple[list[Chunk], int, int]:
        """Add LLM contexts (when an enricher is set): (chunks, how many got one, how many LLM calls failed)."""
        if self.enricher is None or not chunks:
            return chunks, 0, 0
        failures = self.enricher.failures
        document = parsed.text
        ctxs = asyncio.run(self.enricher.contexts(parsed.title, document, digest, [c.text for c in chunks]))
        out = [replace(c, context=x) if x else c for c, x in zip(chunks, ctxs, strict=True)]
        return out, sum(1 for x in ctxs if x), self.enricher.failures - failures

    # ---- delete ----------------------------------------------------------------------------------
    def delete(self, workspace: str, doc_id: str) -> bool:
        """Remove a document's vectors, graph mentions, saved files and registry row; False if unknown."""
        if self.registry.get(workspace, doc_id) is None:
            return False
        self.writer.delete_doc(workspace, doc_id)
        self._remove_files(doc_id)
        self.registry.delete(workspace, doc_id)
        return True
