"""Request/response models of the REST API (pydantic: this is a trust boundary)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MemoryKind = Literal["tips", "shortcuts"]


class JobOut(BaseModel):
    id: str
    kind: Literal["ingest", "finetune"] = "ingest"
    workspace: str
    state: Literal["queued", "running", "done", "failed"]
    progress: float
    stage: str = Field("", description="A finetune job's current stage: synthesise, mine, train, embed, swap.")
    stage_done: int = 0
    stage_total: int = 0
    files: list[str]
    files_done: int
    pages: int
    chunks: int
    results: list[dict[str, Any]]
    errors: list[dict[str, str]]
    result: dict[str, Any] | None = Field(None, description="A finished finetune job's result (metrics, promoted).")
    created: float
    finished: float | None


class DocumentOut(BaseModel):
    doc_id: str
    workspace: str
    source: str
    title: str
    content_hash: str
    status: str
    version: int
    pages: int
    chunks: int
    error: str
    meta: dict[str, Any]
    updated: float


class DocumentList(BaseModel):
    workspace: str
    documents: list[DocumentOut]


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(..., min_length=1, max_length=4000)
    k: int = Field(10, ge=1, le=100)
    rerank: bool = True


class HitOut(BaseModel):
    chunk_id: str
    doc: str
    doc_id: str
    page: int | None
    kind: str
    bbox: list[float] | None
    score: float
    rerank_score: float | None
    paths: dict[str, Any]
    text: str


class SearchResponse(BaseModel):
    query: str
    workspace: str
    hits: list[HitOut]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., min_length=1, max_length=4000)
    thread_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    stream: bool = Field(True, description="Server-Sent Events (one event per agent event) or one JSON reply.")
    use_memory: bool = True


class ChatResponse(BaseModel):
    thread_id: str
    answer: dict[str, Any]
    events: list[dict[str, Any]]


class ThreadOut(BaseModel):
    thread_id: str
    workspace: str
    messages: list[dict[str, Any]]


INT64 = 2**63


def _out_of_int64(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -INT64 <= value < INT64
    if isinstance(value, dict):
        return any(_out_of_int64(v) for v in value.values())
    if isinstance(value, list):
        return any(_out_of_int64(v) for v in value)
    return False


class MemoryItemIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str = Field(..., min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _storable(self) -> MemoryItemIn:
        """Extra fields are stored as JSON by the memory store, which holds integers in 64 bits."""
        if _out_of_int64(self.model_extra or {}):
            raise ValueError("integers must fit in 64 bits (-2**63 .. 2**63-1)")
        return self


class MemoryList(BaseModel):
    workspace: str
    kind: MemoryKind
    items: list[dict[str, Any]]


KeyScope = Annotated[str, Field(pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9_-]{0,63})$",
                                description="A workspace, or '*' for an admin key (every workspace).")]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workspaces: list[KeyScope] = Field(..., min_length=1, max_length=100)
    name: str = Field("", max_length=200, description="A label for the key.")


class KeyInfoOut(BaseModel):
    key_id: str
    workspaces: list[str]
    name: str = ""
    created: float = 0.0
    revoked: float | None = None


class KeyCreated(KeyInfoOut):
    key: str = Field(..., description="The key: shown once, only its salted hash is stored.")


class KeyList(BaseModel):
    keys: list[KeyInfoOut]


# ---- OpenAI-compatible facade ----------------------------------------------------------------------------
class OAIMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class OAIChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, top_p ... are accepted and ignored
    model: str = Field(..., min_length=1, max_length=200, description='"ragent:WORKSPACE" (or just the workspace).')
    messages: list[OAIMessage] = Field(..., min_length=1)
    stream: bool = False
    user: str | None = None


class OAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "ragent"


class OAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OAIModel]


class FinetuneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_pairs: int | None = Field(None, ge=10, le=100_000, description="Most synthetic pairs (default: setting).")
    epochs: int | None = Field(None, ge=1, le=20, description="Training epochs (default RAGENT_FINETUNE_EPOCHS).")
    max_steps: int = Field(-1, ge=-1, le=1_000_000, description="Stop training after N steps; -1 = full epochs.")
    generator: Literal["keyphrase", "llm", "both"] | None = Field(None, description="Question generator.")
    force: bool = Field(False, description="Swap the new model in even if it is not better.")
    dry_run: bool = Field(False, description="Train and evaluate, but do not swap.")


class FinetuneVersions(BaseModel):
    workspace: str
    versions: list[dict[str, Any]]
