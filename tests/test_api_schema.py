"""Schemathesis over /openapi.json: generated requests for every operation, 0 server errors (bounded examples).

Driven by hand (hypothesis ``@given`` over each operation's strategy) rather than schemathesis' pytest plugin,
which does not load under this pytest version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from app.api import create_app
from app.runtime import Runtime
from core.settings import Settings
from tests.fakes import FakeLLM, HashEmbedder

EXAMPLES = 5
SKIP = {"/readyz"}  # answers 503 by design while no LLM server runs here


def test_openapi_operations_never_answer_5xx(tmp_path: Path) -> None:
    rt = Runtime(Settings(home=tmp_path / "var", api_auth=False, llm_base_url="http://127.0.0.1:9/v1"),
                 overrides={"llm": FakeLLM(["{}"]), "embedder": HashEmbedder()})
    app = create_app(rt)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    errors: list[str] = []
    calls: dict[str, int] = {}
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 18

    def check(case: Any) -> None:
        resp = case.call(timeout=180)
        label = case.operation.label
        calls[label] = calls.get(label, 0) + 1
        if resp.status_code >= 500:
            errors.append(f"{label} -> {resp.status_code}: {resp.text[:300]}")

    for op in ops:
        if op.path in SKIP:
            continue
        run = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                       database=None)(given(case=op.as_strategy())(check))
        run()
    app.state.ragent.jobs.shutdown()
    rt.close()
    print(f"schemathesis: {sum(calls.values())} requests over {len(calls)} operations, {len(errors)} server errors")
    assert not errors, "\n".join(errors[:10])
