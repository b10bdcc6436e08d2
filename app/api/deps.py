"""Shared state of one API app and the FastAPI dependencies that authenticate and authorise a request."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.api.auth import ANONYMOUS, KeyStore, Principal
from app.api.engine import ChatEngine
from app.api.jobs import JobManager
from app.api.problems import Problem
from app.api.telemetry import Telemetry
from app.api.threads import ThreadStore
from app.runtime import Runtime
from core.settings import Settings
from core.workspace import WORKSPACE_PATTERN

if TYPE_CHECKING:
    from agents import ExperienceMemory

KEY_HINT = "create one with `ragent keys create --workspace WS` and send it as 'Authorization: Bearer <key>'"


@dataclass
class ApiState:
    runtime: Runtime
    settings: Settings
    auth: bool
    keys: KeyStore
    jobs: JobManager
    threads: ThreadStore
    engine: ChatEngine
    engine_name: str
    telemetry: Telemetry
    llm_sample: tuple[float, float] | None = None  # (time, generation_tokens) of the last status poll
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def memory(self) -> ExperienceMemory:
        """The runtime's experience memory (tips, shortcuts), built on first use (once, under a lock: requests
        run in worker threads)."""
        with self._lock:
            return self.runtime.memory

    def tokens_per_s(self, generation_tokens: float) -> float | None:
        now, prev = time.time(), self.llm_sample
        self.llm_sample = (now, generation_tokens)
        if prev is None or now - prev[0] <= 0 or generation_tokens < prev[1]:
            return None
        return round((generation_tokens - prev[1]) / (now - prev[0]), 2)


def get_state(request: Request) -> ApiState:
    return request.app.state.ragent  # type: ignore[no-any-return]


State = Annotated[ApiState, Depends(get_state)]
_bearer = HTTPBearer(auto_error=False, description="An API key from `ragent keys create`.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key, as a header.")


def principal(
    st: State,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> Principal:
    if not st.auth:
        return ANONYMOUS
    token = (bearer.credentials if bearer else None) or header
    if not token:
        raise Problem(401, f"missing API key: {KEY_HINT}")
    p = st.keys.verify(token.strip())
    if p is None:
        raise Problem(401, f"invalid or revoked API key: {KEY_HINT}")
    return p


Caller = Annotated[Principal, Depends(principal)]


def workspace(
    caller: Caller,
    ws: Annotated[str, Path(pattern=WORKSPACE_PATTERN, description="Workspace: 1-64 letters, digits, '-' or '_'.")],
) -> str:
    if not caller.can(ws):
        raise Problem(403, f"this API key may not use workspace {ws!r}; it is scoped to "
                      f"{', '.join(caller.workspaces)}")
    return ws


Workspace = Annotated[str, Depends(workspace)]
