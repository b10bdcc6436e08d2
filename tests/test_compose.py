"""docker-compose.yml and the Dockerfile: `docker compose config` when the plugin exists, else YAML and
structural checks (no Docker engine runs here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0


def test_docker_compose_config_accepts_the_file() -> None:
    if not _compose_plugin():  # this machine's docker CLI has no compose plugin: the checks below stand in
        assert COMPOSE.is_file()
        return
    for profile in ([], ["--profile", "gpu", "--profile", "neo4j", "--profile", "vlm"]):
        r = subprocess.run(["docker", "compose", "-f", str(COMPOSE), *profile, "config", "--quiet"],
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert r.returncode == 0, r.stderr


def test_services_profiles_and_wiring(compose: dict[str, Any]) -> None:
    svc = compose["services"]
    assert {"qdrant", "vllm", "api", "ui", "neo4j"} <= set(svc)
    assert svc["vllm"]["profiles"] == ["gpu"] and svc["neo4j"]["profiles"] == ["neo4j"]
    assert svc["vlm"]["profiles"] == ["vlm"] and "--limit-mm-per-prompt" in svc["vlm"]["command"]
    assert "RAGENT_VLM_BASE_URL" in svc["api"]["environment"]
    assert "profiles" not in svc["qdrant"] and "profiles" not in svc["api"] and "profiles" not in svc["ui"]
    assert "qdrant/qdrant:" in svc["qdrant"]["image"]
    env = svc["api"]["environment"]
    assert "qdrant:6333" in env["RAGENT_QDRANT_URL"] and "vllm:8000" in env["RAGENT_LLM_BASE_URL"]
    assert (ROOT / svc["api"]["build"]["context"] / svc["api"]["build"]["dockerfile"]).is_file()
    assert svc["ui"]["image"] == svc["api"]["image"]
    assert "http://api:8080" in svc["ui"]["command"]
    assert svc["api"]["depends_on"]["qdrant"]["condition"] == "service_healthy"
    assert svc["ui"]["depends_on"]["api"]["condition"] == "service_healthy"
    for name in ("qdrant", "api", "vllm", "neo4j"):
        assert svc[name]["healthcheck"]["test"], name
    # `.env` drives it: every service that runs ragent reads the optional env file
    for name in ("api", "ui"):
        assert svc[name]["env_file"][0]["path"] == ".env" and svc[name]["env_file"][0]["required"] is False


def test_volumes_ports_and_variables_are_consistent(compose: dict[str, Any]) -> None:
    svc = compose["services"]
    declared = set(compose["volumes"])
    for name, s in svc.items():
        for v in s.get("volumes", []):
            src = re.sub(r"\$\{[^:}]+:-([^}]+)\}", r"\1", v).split(":")[0]  # a bind mount's default host path
            if not src.startswith((".", "/")):
                assert src in declared, f"{name} uses undeclared volume {src}"
    host_ports = [str(p).split(":")[-2] for s in svc.values() for p in s.get("ports", [])]
    resolved = [re.sub(r"\$\{[^:}]+:-([^}]+)\}", r"\1", p) for p in host_ports]
    assert len(resolved) == len(set(resolved)), f"host port clash: {resolved}"
    text = COMPOSE.read_text()
    fields = {f"RAGENT_{n.upper()}" for n in Settings.model_fields}
    used = set(re.findall(r"\b(RAGENT_[A-Z0-9_]+)", text)) - {"RAGENT_IMAGE"}
    assert used <= fields, f"not ragent settings: {sorted(used - fields)}"


def test_dockerfile_installs_ragent_and_serves_the_api() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11" in text
    assert re.search(r"pip install (-e )?\.", text) and "torch==" in text
    for pkg in ("core", "retrieval", "ingest", "agents", "finetune", "app"):
        assert f"COPY {pkg} {pkg}" in text, pkg
    assert '"ragent", "api"' in text and "EXPOSE 8080 8501" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git"} <= set(ignored)
