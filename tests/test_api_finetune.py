"""Fine-tuning through the REST API for real: POST /v1/workspaces/{ws}/finetune runs the loop as a background
job (packaged MiniLM, Qdrant Edge: the embedded default), GET /v1/jobs/{id} reports its stages, and searches keep
answering."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.runtime import Runtime
from core.settings import Settings
from tests.api_live import auth, wait_job
from tests.fakes import FakeLLM
from tests.finetune_corpus import build_workspace

pytestmark = pytest.mark.slow


def test_finetune_job_trains_swaps_and_reports_progress(tmp_path: Path) -> None:
    rt = Runtime(Settings(home=tmp_path / "var", api_auth=True), overrides={"llm": FakeLLM(["{}"])})  # real MiniLM
    build_workspace(rt.retriever, rt.registry, "w", n=40)
    app = create_app(rt)
    key = app.state.ragent.keys.create(["w", "empty"])
    h = auth(key)
    try:
        with TestClient(app) as c:
            r = c.post("/v1/workspaces/w/finetune", headers=h, json={"max_pairs": 60, "max_steps": 2, "force": True})
            assert r.status_code == 202, r.text
            assert r.json()["kind"] == "finetune" and r.json()["state"] in ("queued", "running")
            seen: set[str] = set()
            job = r.json()
            while job["state"] not in ("done", "failed"):
                job = c.get(f"/v1/jobs/{job['id']}", headers=h).json()
                seen.add(job["stage"])
                search = c.post("/v1/workspaces/w/search", headers=h, json={"query": "who designed the bridge",
                                                                              "k": 3})
                assert search.status_code == 200 and search.json()["hits"]  # searches work during the job
            assert job["state"] == "done", job
            assert job["progress"] == 1.0 and job["stage"] == "swap" and len(seen - {""}) >= 2
            res = job["result"]
            assert res["promoted"] and res["version"] == 1 and res["collection"]
            assert 0 <= res["after"]["validation"]["ndcg_at_10"] <= 1
            versions = c.get("/v1/workspaces/w/finetune", headers=h).json()["versions"]
            assert [v["version"] for v in versions if v["active"]] == [1]

            bad = c.post("/v1/workspaces/w/finetune", headers=h, json={"max_pairs": 1})
            assert bad.status_code == 422
            r = c.post("/v1/workspaces/empty/finetune", headers=h)
            empty = wait_job(c, r.json()["id"], h)
            assert empty["state"] == "failed" and "no ingested documents" in empty["errors"][0]["error"]
            assert c.get("/v1/workspaces/empty/finetune", headers=h).json()["versions"] == []
            other = app.state.ragent.keys.create(["other"])
            assert c.post("/v1/workspaces/w/finetune", headers=auth(other)).status_code in (403, 404)
    finally:
        rt.close()
