"""Request/response models of the REST API (pydantic: this is a trust boundary)."""

from __future__ import annotations

import json
import math
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
    image: bool = Field(False, description="An image chunk: GET /v1/workspaces/{ws}/images/{chunk_id} returns it.")
    ocr_confidence: float | None = Field(None, description="Text read by OCR: estimated confidence 0..1.")


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
    images: list[Annotated[str, Field(max_length=14_000_000)]] = Field(
        default_factory=list, max_length=4, description="Images as data:image/png;base64,... URLs: their OCR text "
        "(and the vision model's description, when one is configured) joins the question.")


class ChatResponse(BaseModel):
    thread_id: str
    answer: dict[str, Any]
    events: list[dict[str, Any]]


class ThreadOut(BaseModel):
    thread_id: str
    workspace: str
    messages: list[dict[str, Any]]


INT64 = 2**63
MAX_MEMORY_ITEM_BYTES = 16_000  # a whole item as JSON: the planner puts items into every prompt
MAX_MEMORY_DEPTH = 8
IDENT = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


def _unstorable(value: Any, depth: int = 0) -> str:
    """Why the memory store cannot keep an extra field's value ('' when it can): it holds integers in 64 bits and
    finite floats, and items stay small and shallow."""
    if depth > MAX_MEMORY_DEPTH:
        return f"values may nest at most {MAX_MEMORY_DEPTH} levels deep"
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return "" if -INT64 <= value < INT64 else "integers must fit in 64 bits (-2**63 .. 2**63-1)"
    if isinstance(value, float):
        return "" if math.isfinite(value) else "numbers must be finite (no NaN or Infinity)"
    if isinstance(value, dict):
        return next((w for v in value.values() if (w := _unstorable(v, depth + 1))), "")
    if isinstance(value, list):
        return next((w for v in value if (w := _unstorable(v, depth + 1))), "")
    return ""


class ShortcutStep(BaseModel):
    """One tool call of a shortcut; ``{param}`` and ``{step_id}`` placeholders in ``input`` are filled at run."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(..., pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    tool: str = Field(..., pattern=IDENT, description="A tool name (search, neighbourhood, answer, ...).")
    input: dict[str, Any] = Field(default_factory=dict, max_length=20)
    depends_on: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]] = Field(
        default_factory=list, max_length=20)


class MemoryItemIn(BaseModel):
    """A tip (``text`` required) or a shortcut (``name`` and ``steps`` required): see ``check_kind``. Known fields
    are bounded here; extra fields are kept if the whole item stays under 16 KB of JSON."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    text: str | None = Field(None, min_length=1, max_length=4000)
    name: str | None = Field(None, pattern=IDENT, description="A shortcut's name (the planner calls it by name).")
    description: str | None = Field(None, max_length=1000)
    params: list[Annotated[str, Field(pattern=IDENT)]] | None = Field(None, max_length=10)
    steps: list[ShortcutStep] | None = Field(None, min_length=1, max_length=20)
    weight: float | None = Field(None, ge=0.0, le=1.0)
    uses: int | None = Field(None, ge=0, le=10**9)
    successes: int | None = Field(None, ge=0, le=10**9)
    failures: int | None = Field(None, ge=0, le=10**9)
    provenance: list[Annotated[str, Field(max_length=128)]] | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _storable(self) -> MemoryItemIn:
        if why := _unstorable(self.model_extra or {}):
            raise ValueError(why)
        if len(json.dumps(self.model_dump(mode="json", exclude_none=True))) > MAX_MEMORY_ITEM_BYTES:
            raise ValueError(f"a memory item is at most {MAX_MEMORY_ITEM_BYTES:,} bytes of JSON")
        return self

    def fields(self) -> dict[str, Any]:
        """The fields sent (unset and null ones left out), ``id`` excepted."""
        return {k: v for k, v in self.model_dump(exclude_unset=True, exclude_none=True).items() if k != "id"}


REQUIRED: dict[str, tuple[str, ...]] = {"tips": ("text",), "shortcuts": ("name", "steps")}
FORBIDDEN: dict[str, tuple[str, ...]] = {"tips": ("steps",), "shortcuts": ()}


def check_kind(kind: str, item: dict[str, Any]) -> list[dict[str, Any]]:
    """What a stored item of ``kind`` lacks (a tip needs ``text``; a shortcut ``name`` and ``steps``, else the
    planner cannot use it), as validation errors; [] when it is fine."""
    errors = [{"loc": ["body", k], "msg": f"a {kind[:-1]} needs '{k}'", "type": "missing"}
              for k in REQUIRED.get(kind, ()) if not item.get(k)]
    errors += [{"loc": ["body", k], "msg": f"a {kind[:-1]} has no '{k}' (shortcuts do)", "type": "extra_forbidden"}
               for k in FORBIDDEN.get(kind, ()) if k in item]
    return errors


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
    messages: list[OAIMessage] = Field(..., min_length=1, max_length=200)
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
