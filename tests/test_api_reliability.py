"""Regression tests for issue 19 (reliability and security of the API): key revocation, concurrent and failed
uploads, bounded page renders, problem details, memory item validation. A light stack: HashEmbedder + FakeLLM."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.api.auth import KeyStore
from app.api.factory import api_db
from app.runtime import Runtime
from core.settings import Settings
from tests.api_live import auth
from tests.fakes import FakeLLM, HashEmbedder


@dataclass
class Api:
    client: TestClient
    runtime: Runtime
    admin: str
    demo: str


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    rt = Runtime(Settings(home=tmp_path / "home", api_auth=True, llm_base_url="http://127.0.0.1:9/v1"),
                 overrides={"llm": FakeLLM(["{}"]), "embedder": HashEmbedder()})
    app = create_app(rt)
    keys = app.state.ragent.keys
    admin, demo = keys.create(["*"]), keys.create(["demo"])
    with TestClient(app) as client:
        yield Api(client, rt, admin, demo)
    rt.close()


# ---- 1. revocation takes effect on the next request; admin key routes ------------------------------------
def test_a_key_revoked_by_another_process_is_rejected_on_the_next_request(api: Api) -> None:
    c, h = api.client, auth(api.demo)
    assert c.get("/v1/workspaces/demo/documents", headers=h).status_code == 200  # verified and cached
    cli = KeyStore(api_db(api.runtime))  # what `ragent keys revoke` opens: the same DB, another connection
    try:
        assert cli.revoke(api.demo.split("_")[1])
    finally:
        cli.close()
    r = c.get("/v1/workspaces/demo/documents", headers=h)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"


def test_admin_routes_create_list_and_revoke_keys(api: Api) -> None:
    c, h = api.client, auth(api.admin)
    r = c.post("/v1/keys", headers=h, json={"workspaces": ["team"], "name": "ci"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["key"].startswith("rk_") and made["workspaces"] == ["team"] and made["name"] == "ci"
    assert c.get("/v1/workspaces/team/documents", headers=auth(made["key"])).status_code == 200
    listed = c.get("/v1/keys", headers=h).json()["keys"]
    assert made["key_id"] in [k["key_id"] for k in listed]
    assert all("key" not in k and "hash" not in k for k in listed)
    assert c.delete(f"/v1/keys/{made['key_id']}", headers=h).status_code == 204
    assert c.get("/v1/workspaces/team/documents", headers=auth(made["key"])).status_code == 401
    assert c.delete(f"/v1/keys/{made['key_id']}", headers=h).status_code == 404
    revoked = {k["key_id"]: k for k in c.get("/v1/keys", headers=h).json()["keys"]}[made["key_id"]]
    assert revoked["revoked"] is not None
    assert c.post("/v1/keys", headers=h, json={"workspaces": []}).status_code == 422
    assert c.post("/v1/keys", headers=h, json={"workspaces": ["bad/ws"]}).status_code == 422


def test_key_routes_need_an_admin_key(api: Api) -> None:
    c, h = api.client, auth(api.demo)
    for method, url, body in (("GET", "/v1/keys", None), ("POST", "/v1/keys", {"workspaces": ["demo"]}),
                              ("DELETE", f"/v1/keys/{api.admin.split('_')[1]}", None)):
        r = c.request(method, url, headers=h, json=body)
        assert r.status_code == 403, (method, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert c.get("/v1/keys").status_code == 401
    assert c.get("/v1/workspaces/demo/documents", headers=auth(api.admin)).status_code == 200  # not revoked


# ---- 2. concurrent uploads of one filename: each staged apart, content-addressed, never mixed ---------------
def test_concurrent_uploads_of_the_same_filename_neither_fail_nor_mix(api: Api) -> None:
    import asyncio
    import hashlib

    import httpx

    app = api.client.app
    app.state.ragent.jobs._ingest = lambda paths, ws, progress: []  # the files on disk are what is tested here
    bodies = [bytes([65 + i]) * (3 << 20) + b"\n" for i in range(4)]  # over the 1 MB spool: reads yield

    async def upload_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120) as c:
            return await asyncio.gather(*[
                c.post("/v1/workspaces/demo/documents", headers=auth(api.demo),
                       files=[("files", ("same.txt", body, "text/plain"))]) for body in bodies])

    from tests.api_live import wait_job

    responses = asyncio.run(upload_all())
    assert [r.status_code for r in responses] == [202] * len(bodies), [r.text[:200] for r in responses]
    for r in responses:  # the worker writes the name from each job's own upload
        assert wait_job(api.client, r.json()["id"], auth(api.demo), timeout=60)["state"] == "done"
    folder = api.runtime.settings.home / "uploads" / "demo"
    assert (folder / "same.txt").read_bytes() in bodies  # one whole upload, not a mix of several
    assert not list(folder.glob(".*.part"))
    for body in bodies:  # every upload kept whole under its content hash
        obj = folder / ".objects" / f"{hashlib.sha256(body).hexdigest()}.txt"
        assert obj.read_bytes() == body



# ---- 3. a failed re-upload keeps the good version's source (its pages still render) ------------------------
def _upload(api: Api, name: str, data: bytes, key: str | None = None) -> dict[str, object]:
    from tests.api_live import wait_job

    r = api.client.post("/v1/workspaces/demo/documents", headers=auth(key or api.demo),
                        files=[("files", (name, data, "application/octet-stream"))])
    assert r.status_code == 202, r.text
    return wait_job(api.client, r.json()["id"], auth(key or api.demo), timeout=120)


def test_a_failed_reupload_keeps_the_good_versions_pages(api: Api, example_pdf: Path) -> None:
    c, h = api.client, auth(api.demo)
    job = _upload(api, "manual.pdf", example_pdf.read_bytes())
    assert job["state"] == "done", job
    doc_id = job["results"][0]["doc_id"]  # type: ignore[index]
    bad = _upload(api, "manual.pdf", b"%PDF-1.7\n" + b"\x00 not really a pdf " * 500)
    assert bad["state"] == "failed" and "previous version stays searchable" in str(bad["errors"]), bad
    doc = c.get(f"/v1/workspaces/demo/documents/{doc_id}", headers=h).json()
    assert doc["status"] == "done" and doc["version"] == 1
    for dpi in (72, 110):
        png = c.get(f"/v1/workspaces/demo/documents/{doc_id}/pages/1.png?dpi={dpi}", headers=h)
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG", (dpi, png.text[:300])
    # a good new version replaces it; the old version's source is dropped once the new one is done
    objects = api.runtime.settings.home / "uploads" / "demo" / ".objects"
    assert _upload(api, "manual.pdf", example_pdf.read_bytes() + b"\n% v2\n")["state"] == "done"
    doc = c.get(f"/v1/workspaces/demo/documents/{doc_id}", headers=h).json()
    assert doc["version"] == 2 and (objects / f"{doc['content_hash']}.pdf").is_file()
    assert sorted(p.name for p in objects.iterdir()) == [f"{doc['content_hash']}.pdf"]
    assert c.get(f"/v1/workspaces/demo/documents/{doc_id}/pages/2.png?dpi=72", headers=h).status_code == 200
    assert c.delete(f"/v1/workspaces/demo/documents/{doc_id}", headers=h).status_code == 204
    assert not list(objects.iterdir())


# ---- 4. page images: the pixel count is capped, not only the dpi -------------------------------------------
def _pdf(width: float, height: float) -> bytes:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=width, height=height)
    page.insert_text((72, 72), "The NW-900 poster page lists the rated output of 9 kW.", fontsize=24)
    data: bytes = doc.tobytes()
    doc.close()
    return data


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_page_images_are_capped_in_pixels(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.api import routes_docs

    monkeypatch.setattr(routes_docs, "MAX_PAGE_PIXELS", 1_000_000, raising=False)
    job = _upload(api, "poster.pdf", _pdf(600, 600))  # 2500 x 2500 px at 300 dpi: 6.25 MP
    assert job["state"] == "done", job
    doc_id = job["results"][0]["doc_id"]  # type: ignore[index]
    for dpi in ("?dpi=300", "?dpi=200", ""):
        r = api.client.get(f"/v1/workspaces/demo/documents/{doc_id}/pages/1.png{dpi}", headers=auth(api.demo))
        assert r.status_code == 200, r.text
        w, h = _png_size(r.content)
        assert w * h <= 1_000_000, (dpi, w, h)
        assert abs(float(r.headers["x-page-scale"]) * 600 - w) <= 1  # bbox * scale still lands on the pixels
    r = api.client.get(f"/v1/workspaces/demo/documents/{doc_id}/pages/1.png?dpi=72", headers=auth(api.demo))
    assert _png_size(r.content) == (600, 600) and float(r.headers["x-page-scale"]) == 1.0  # under the cap


def test_the_largest_pdf_page_renders_within_the_default_cap(api: Api) -> None:
    from app.api.routes_docs import MAX_PAGE_PIXELS

    job = _upload(api, "huge.pdf", _pdf(14400, 14400))  # PDF's largest page: 200 x 200 inches
    assert job["state"] == "done", job
    doc_id = job["results"][0]["doc_id"]  # type: ignore[index]
    r = api.client.get(f"/v1/workspaces/demo/documents/{doc_id}/pages/1.png?dpi=300", headers=auth(api.demo))
    w, h = _png_size(r.content)
    assert r.status_code == 200 and w * h <= MAX_PAGE_PIXELS <= 25_000_000 and w >= 1000


# ---- 5. smaller ones: no thread oracle, filenames keep their extension, problem details everywhere, no paths --
def test_another_workspaces_thread_id_is_404_like_an_unknown_thread(api: Api) -> None:
    c = api.client
    r = c.post("/v1/workspaces/team/chat", headers=auth(api.admin),
               json={"question": "hello?", "thread_id": "t-team", "stream": False})
    assert r.status_code == 200, r.text
    r = c.post("/v1/workspaces/demo/chat", headers=auth(api.demo),
               json={"question": "hello?", "thread_id": "t-team", "stream": False})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", r.text
    assert "another workspace" not in r.json()["detail"] and "'team'" not in r.json()["detail"]
    unknown = c.get("/v1/workspaces/demo/threads/t-nobody", headers=auth(api.demo)).json()["detail"]
    assert r.json()["detail"] == unknown.replace("t-nobody", "t-team")


def test_a_long_filename_keeps_its_extension(api: Api) -> None:
    name = "a" * 300 + ".md"
    r = api.client.post("/v1/workspaces/demo/documents", headers=auth(api.demo),
                        files=[("files", (name, b"# Title\n\nSome text.\n", "text/markdown"))])
    assert r.status_code == 202, r.text
    saved = r.json()["files"][0]
    assert saved.endswith(".md") and len(saved) <= 150


@pytest.mark.parametrize(("method", "url", "body", "status"), [
    ("POST", "/v1/workspaces/demo/search", '{"query": ' + "[" * 50000 + "]" * 50000 + "}", 400),
    ("GET", "/v1/workspaces/de%2Fmo/documents", None, 404),
    ("GET", "/v1/workspaces/demo/documents/ab%2F..%2Fcd", None, 404),
    ("GET", "/v1/no-such-route", None, 404),
    ("DELETE", "/healthz", None, 405),
])
def test_framework_errors_are_problem_details(api: Api, method: str, url: str, body: str | None,
                                              status: int) -> None:
    r = api.client.request(method, url, content=body, headers={**auth(api.demo), "content-type": "application/json"})
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json", r.text[:300]
    data = r.json()
    assert data["status"] == status and data["title"] and data["detail"] and data["type"] == "about:blank"


def test_bench_shows_no_server_paths(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from app.api import routes_ops

    results = tmp_path / "results"
    results.mkdir()
    (results / "ingest.json").write_text(json.dumps({
        "source": "/srv/data/multihop/musique_100.json", "model": "/home/me/models/qwen",
        "note": "read /srv/data/x.pdf in 3 s", "url": "http://127.0.0.1:8000/v1/chat", "rows": [{"p50": 1.5}]}))
    monkeypatch.setattr(routes_ops, "BENCH_DIR", results)
    r = api.client.get("/v1/bench", headers=auth(api.demo))
    assert r.status_code == 200
    text = r.text
    assert str(tmp_path) not in text and "/srv/" not in text and "/home/me" not in text, text
    data = r.json()["results"][0]["data"]
    assert data["source"] == "musique_100.json" and data["rows"] == [{"p50": 1.5}]
    assert data["url"] == "http://127.0.0.1:8000/v1/chat" and data["note"] == "read x.pdf in 3 s"


# ---- 6. bounded memory items, validated by kind; bounded graph hops ---------------------------------------
SHORTCUT = {"name": "spec_lookup", "description": "Find a spec value in the tables.", "params": ["topic"],
            "steps": [{"id": "s1", "tool": "search", "input": {"query": "{topic} specifications"}}]}


@pytest.mark.parametrize("body", [
    {"text": "A tip.", "notes": "x" * (5 << 20)},  # a 5 MB extra field
    {"text": "A tip.", "weight": 1e308},
    {"text": "A tip.", "weight": -1},
    {"text": "A tip.", "uses": 10**15},
    {"text": "A tip.", "meta": {"deep": [[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]}},
    {"text": "A tip.", "provenance": ["run"] * 1000},
])
def test_memory_items_are_bounded(api: Api, body: dict[str, object]) -> None:
    r = api.client.post("/v1/workspaces/demo/memory/tips", headers=auth(api.demo), json=body)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text[:300]


def test_memory_rejects_non_finite_numbers(api: Api) -> None:
    r = api.client.post("/v1/workspaces/demo/memory/tips", headers={**auth(api.demo), "content-type":
                        "application/json"}, content='{"text": "A tip.", "score": NaN}')
    assert r.status_code == 422, r.text


def test_memory_items_are_validated_by_kind(api: Api) -> None:
    c, h = api.client, auth(api.demo)
    base = "/v1/workspaces/demo/memory"
    r = c.post(f"{base}/shortcuts", headers=h, json={"text": "Look in the spec table."})  # what the UI posts
    assert r.status_code == 422 and "name" in r.json()["detail"] + str(r.json()["errors"]), r.text
    assert "steps" in str(r.json()["errors"])
    assert c.post(f"{base}/tips", headers=h, json={"name": "x", "steps": SHORTCUT["steps"]}).status_code == 422
    assert c.post(f"{base}/shortcuts", headers=h, json={**SHORTCUT, "steps": []}).status_code == 422
    assert c.post(f"{base}/shortcuts", headers=h,
                  json={**SHORTCUT, "steps": [{"id": "s1", "input": {}}]}).status_code == 422  # no tool
    r = c.post(f"{base}/shortcuts", headers=h, json=SHORTCUT)
    assert r.status_code == 201, r.text
    sc = r.json()
    assert sc["name"] == "spec_lookup" and sc["steps"][0]["tool"] == "search" and sc["text"]
    r = c.put(f"{base}/shortcuts/{sc['id']}", headers=h, json={"text": "Spec values: the tables."})
    assert r.status_code == 200 and r.json()["steps"] == sc["steps"] and r.json()["text"] == "Spec values: the tables."
    assert c.put(f"{base}/shortcuts/{sc['id']}", headers=h, json={"steps": []}).status_code == 422
    assert c.put(f"{base}/shortcuts/{sc['id']}", headers=h, json={"weight": 1e308}).status_code == 422
    r = c.post(f"{base}/tips", headers=h, json={"text": "Specs are in the table on page 2.", "weight": 0.5})
    assert r.status_code == 201 and r.json()["weight"] == 0.5


def test_neighbourhood_hops_are_bounded(fake_runtime: Runtime) -> None:
    import asyncio

    from retrieval.retriever import MAX_HOPS

    retriever, seen = fake_runtime.retriever, []
    graph = retriever.graph
    assert graph is not None
    real = graph.neighbourhood

    def spy(workspace: str, seeds: list[str], hops: int = 1):  # type: ignore[no-untyped-def]
        seen.append(hops)
        return real(workspace, seeds, hops)

    graph.neighbourhood = spy  # type: ignore[method-assign]
    asyncio.run(retriever.neighbourhood("w", ["Northwind"], hops=10**9))
    asyncio.run(retriever.neighbourhood("w", ["Northwind"], hops=-5))
    assert seen == [MAX_HOPS, 0] and 1 <= MAX_HOPS <= 3


# ---- 7. leftovers: reads never create threads, jobs ingest what was uploaded, safe page caching, no paths ---
def test_an_unused_thread_id_is_404_and_reading_it_creates_nothing(api: Api) -> None:
    c, h = api.client, auth(api.demo)
    for _ in range(2):  # the first read must not create the thread the second would find
        r = c.get("/v1/workspaces/demo/threads/never-used", headers=h)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", r.text
    assert c.get("/v1/workspaces/demo/threads", headers=h).json()["threads"] == []
    # chat with a new thread id still creates it; then it reads back
    r = c.post("/v1/workspaces/demo/chat", headers=h,
               json={"question": "hello?", "thread_id": "fresh", "stream": False})
    assert r.status_code == 200 and r.json()["thread_id"] == "fresh", r.text
    r = c.post("/v1/workspaces/demo/chat", headers=h, json={"question": "and then?", "thread_id": "fresh"})
    assert r.status_code == 200 and r.headers["x-thread-id"] == "fresh" and '"type": "answer"' in r.text
    r = c.get("/v1/workspaces/demo/threads/fresh", headers=h)
    assert r.status_code == 200 and [m["role"] for m in r.json()["messages"]] == ["user", "assistant"] * 2
    assert c.get("/v1/workspaces/other/threads/fresh", headers=auth(api.admin)).status_code == 404


def test_a_queued_job_ingests_its_own_upload_not_a_later_one_of_the_same_name(api: Api) -> None:
    import threading

    from tests.api_live import wait_job

    c, h = api.client, auth(api.demo)
    jobs = api.client.app.state.ragent.jobs
    real, gate, seen = jobs._ingest, threading.Event(), []

    def held(paths, ws, progress):  # type: ignore[no-untyped-def]
        gate.wait(30)  # the first job waits in the worker while the second upload arrives
        seen.append([p.read_bytes() for p in paths])
        return real(paths, ws, progress)

    jobs._ingest = held
    first, second = b"# Notes\n\nThe NW-100 pump is blue.\n", b"# Notes\n\nThe NW-100 pump is red.\n"
    ids = []
    for body in (first, second):
        r = c.post("/v1/workspaces/demo/documents", headers=h, files=[("files", ("notes.md", body, "text/markdown"))])
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    gate.set()
    done = [wait_job(c, i, h, timeout=120) for i in ids]
    assert [j["state"] for j in done] == ["done", "done"], done
    assert seen == [[first], [second]]  # each job read the bytes its own upload staged
    assert [j["results"][0]["status"] for j in done] == ["ingested", "updated"], done
    doc = c.get(f"/v1/workspaces/demo/documents/{done[1]['results'][0]['doc_id']}", headers=h).json()
    assert doc["version"] == 2 and doc["content_hash"] == __import__("hashlib").sha256(second).hexdigest()
    folder = api.runtime.settings.home / "uploads" / "demo"
    assert (folder / "notes.md").read_bytes() == second and not list((folder / ".holds").iterdir())


def test_concurrent_renders_of_one_page_all_succeed(api: Api, example_pdf: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time
    from concurrent.futures import ThreadPoolExecutor

    job = _upload(api, "manual.pdf", example_pdf.read_bytes())
    assert job["state"] == "done", job
    doc_id = job["results"][0]["doc_id"]  # type: ignore[index]
    pages = api.runtime.settings.home / "pages" / doc_id
    replace = os.replace

    def slow_replace(src, dst, *a, **kw):  # type: ignore[no-untyped-def]
        if pages in Path(dst).parents:
            time.sleep(0.3)  # a slow disk: every request's cache write is in flight at once
        return replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", slow_replace)
    url = f"/v1/workspaces/demo/documents/{doc_id}/pages/2.png"
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: api.client.get(url, headers=auth(api.demo)), range(6)))
    assert [r.status_code for r in responses] == [200] * 6, [r.text[:200] for r in responses]
    assert len({r.content for r in responses}) == 1 and responses[0].content[:4] == b"\x89PNG"
    assert [p.name for p in pages.iterdir()] == ["2.png"]  # no temporary file left behind
    again = api.client.get(url, headers=auth(api.demo))  # from the cache
    assert again.status_code == 200 and again.content == responses[0].content


def test_job_errors_name_the_upload_not_server_paths(api: Api) -> None:
    import json

    job = _upload(api, "broken file.pdf", b"%PDF-1.7\nnot a pdf at all\n")  # MuPDF's error quotes the path
    assert job["state"] == "failed", job
    text = json.dumps(job)
    home = api.runtime.settings.home
    assert str(home.resolve()) not in text and str(home) not in text and "/uploads/" not in text, text
    assert "'broken file.pdf'" in job["errors"][0]["error"], job  # type: ignore[index]
    assert job["results"][0]["path"] == "broken file.pdf", job  # type: ignore[index]
    [doc] = api.client.get("/v1/workspaces/demo/documents", headers=auth(api.demo)).json()["documents"]
    assert doc["status"] == "failed" and "'broken file.pdf'" in doc["error"], doc  # the document says it too
    assert str(home.resolve()) not in doc["error"], doc
    # a job that fails outside the pipeline: its message is cut to file names too
    jobs = api.client.app.state.ragent.jobs

    def crash(paths, ws, progress):  # type: ignore[no-untyped-def]
        raise OSError(f"[Errno 28] No space left on device: '{paths[0]}' and '{home.resolve()}/index/x.db'")

    jobs._ingest = crash
    job = _upload(api, "notes.md", b"# Notes\n\nSome text.\n")
    error = job["errors"][0]["error"]  # type: ignore[index]
    assert job["state"] == "failed" and str(home.resolve()) not in error and "'notes.md'" in error, job
    assert "'x.db'" in error, error


def test_documents_name_their_upload_not_its_server_path(api: Api) -> None:
    import json

    job = _upload(api, "notes.md", b"# Notes\n\nThe pump is rated at 7 bar.\n")
    assert job["state"] == "done", job
    docs = api.client.get("/v1/workspaces/demo/documents", headers=auth(api.demo)).json()["documents"]
    [doc] = [d for d in docs if d["title"] == "Notes" or d["source"] == "notes.md"]
    assert doc["source"] == "notes.md", doc
    home = api.runtime.settings.home
    assert str(home.resolve()) not in json.dumps(docs) and str(home) not in json.dumps(docs), docs


def test_concurrent_render_page_calls_share_no_temporary_file(tmp_path: Path, example_pdf: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time
    from concurrent.futures import ThreadPoolExecutor

    from ingest.pdf import render_page

    replace = os.replace

    def slow_replace(src, dst, *a, **kw):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # every call's write is in flight at once
        return replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", slow_replace)
    with ThreadPoolExecutor(4) as pool:
        out = list(pool.map(lambda _: render_page(tmp_path, "doc", example_pdf, 1), range(4)))
    assert all(p == out[0] and p.read_bytes()[:4] == b"\x89PNG" for p in out)
    assert [p.name for p in out[0].parent.iterdir()] == ["1.png"]
