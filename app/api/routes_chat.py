"""Agent chat (SSE or JSON, threads) and the OpenAI-compatible facade over it."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse

from agents.events import AnswerEvent, ErrorEvent, Event
from app.api import images
from app.api.deps import ApiState, Caller, State, Workspace
from app.api.engine import guarded
from app.api.problems import Problem
from app.api.schemas import ChatRequest, ChatResponse, OAIChatRequest, OAIModel, OAIModelList, ThreadOut
from core.workspace import WORKSPACE_RE

router = APIRouter(prefix="/v1", tags=["chat"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(ev: Event, n: int) -> str:
    return f"id: {n}\nevent: {ev.get('type', 'message')}\ndata: {json.dumps(ev, ensure_ascii=False)}\n\n"


def answer_text(ans: dict[str, Any]) -> str:
    """What a chat client shows: the short answer, then the checked explanation with its [n] markers."""
    short, expl = str(ans.get("short_answer") or ""), str(ans.get("answer") or "")
    return f"Answer: {short}\n\n{expl}".strip() if short else expl


async def run_chat(st: ApiState, ws: str, question: str, thread_id: str, use_memory: bool,
                   api: str, history: list[tuple[str, str]] | None = None) -> AsyncIterator[Event]:
    """The engine's events with bookkeeping: thread turns, metrics, ``thread_id`` on the answer."""
    start = time.perf_counter()
    st.threads.add(thread_id, ws, "user", question)
    outcome = "ok"
    events = st.engine.astream(ws, question, thread_id=thread_id, use_memory=use_memory, history=history)
    async for ev in guarded(events, question):
        if ev["type"] == "token":
            st.telemetry.tokens.inc()
        elif ev["type"] == "error":
            outcome = "error"
        elif ev["type"] == "answer":
            ans = ev["answer"]
            st.threads.add(thread_id, ws, "assistant", answer_text(ans), list(ans.get("citations", [])))
            st.telemetry.chats.labels(api, outcome).inc()
            st.telemetry.chat_seconds.labels(api).observe(time.perf_counter() - start)
            ev = AnswerEvent(type="answer", answer=ans, thread_id=thread_id)
        yield ev


def _thread(st: ApiState, ws: str, thread_id: str | None) -> str:
    if thread_id is None:
        return uuid.uuid4().hex
    owner = st.threads.workspace_of(thread_id)
    if owner is not None and owner != ws:  # the same answer as GET of an unknown thread: no oracle
        raise Problem(404, f"no thread {thread_id!r} in workspace {ws!r}")
    return thread_id


@router.post("/workspaces/{ws}/chat", response_model=ChatResponse,
             responses={200: {"content": {"text/event-stream": {}}, "description": "SSE when stream=true"}},
             summary="Ask the agent; stream=true (default) answers with Server-Sent Events")
async def chat(st: State, ws: Workspace, req: ChatRequest) -> Any:
    thread_id = _thread(st, ws, req.thread_id)
    question = await read_images(st, req.question, req.images)
    events = run_chat(st, ws, question, thread_id, req.use_memory, "chat")
    if req.stream:
        async def body() -> AsyncIterator[str]:
            n = 0
            async for ev in events:
                n += 1
                yield sse(ev, n)

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={**SSE_HEADERS, "X-Thread-Id": thread_id})
    kept: list[dict[str, Any]] = []
    answer: dict[str, Any] = {}
    async for ev in events:
        if ev["type"] == "answer":
            answer = ev["answer"]
        elif ev["type"] != "token":
            kept.append(dict(ev))
    return ChatResponse(thread_id=thread_id, answer=answer, events=kept)


@router.get("/workspaces/{ws}/threads", summary="Recent conversation threads of a workspace")
def list_threads(st: State, ws: Workspace) -> dict[str, Any]:
    return {"workspace": ws, "threads": st.threads.list(ws)}


@router.get("/workspaces/{ws}/threads/{thread_id}", response_model=ThreadOut)
def get_thread(st: State, ws: Workspace,
               thread_id: Annotated[str, PathParam(max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]) -> ThreadOut:
    if st.threads.workspace_of(thread_id) != ws:
        raise Problem(404, f"no thread {thread_id!r} in workspace {ws!r}")
    return ThreadOut(thread_id=thread_id, workspace=ws, messages=st.threads.messages(thread_id))


# ---- OpenAI-compatible facade -------------------------------------------------------------------------------
def sources_block(citations: list[dict[str, Any]]) -> str:
    if not citations:
        return ""
    lines = ["", "", "Sources:"]
    for c in citations:
        page = f", p. {c['page']}" if c.get("page") else ""
        lines.append(f"[{c.get('n')}] {c.get('doc', '')}{page}: \u201c{str(c.get('quote', ''))[:200]}\u201d")
    return "\n".join(lines)


def workspace_of_model(model: str, caller: Caller) -> str:
    ws = model.split(":", 1)[1] if model.startswith("ragent:") else model
    if not WORKSPACE_RE.match(ws):
        raise Problem(404, f"unknown model {model!r}: use 'ragent:WORKSPACE' (GET /v1/models lists them)")
    if not caller.can(ws):
        raise Problem(403, f"this API key may not use workspace {ws!r}")
    return ws


def _text(m: Any) -> str:
    return images.parts_of(m.content)[0]


def last_user(req: OAIChatRequest) -> tuple[str, list[str]]:
    """(text, image data URLs) of the last user message with either: the question ragent answers."""
    for m in req.messages:
        images.parts_of(m.content)  # every part of every message is one ragent reads, or a 400 says so
    for m in reversed(req.messages):
        if m.role == "user":
            text, urls = images.parts_of(m.content)
            if text or urls:
                if len(urls) > images.MAX_IMAGES:
                    raise Problem(400, f"{len(urls)} images in one message; at most {images.MAX_IMAGES}")
                return text[:4000], urls
    raise Problem(400, "no user message with text or an image: the last 'user' message is the question ragent "
                       "answers")


async def read_images(st: ApiState, question: str, urls: list[str]) -> str:
    """The question joined with what the attached images say (OCR, and the vision model when configured)."""
    if not urls:
        return question
    texts = [await asyncio.to_thread(images.read_image, images.decode(u), st.settings, st.runtime.vision)
             for u in urls]
    return images.with_images(question, texts)


def conversation(req: OAIChatRequest) -> list[tuple[str, str]]:
    """The (question, answer) turns before the last user message: a follow-up is read with them."""
    msgs = [m for m in req.messages if m.role in ("user", "assistant")]
    last = max((i for i, m in enumerate(msgs) if m.role == "user" and _text(m)), default=-1)
    turns: list[tuple[str, str]] = []
    for i, m in enumerate(msgs[:last]):
        if m.role == "user" and i + 1 < last and msgs[i + 1].role == "assistant":
            turns.append((_text(m)[:2000], _text(msgs[i + 1]).split("\n\nSources:")[0][:2000]))
    return turns


def workspaces_visible(st: ApiState, caller: Caller) -> list[str]:
    known = set(st.runtime.index.workspaces())
    known |= {r[0] for r in st.runtime.registry.conn.execute("SELECT DISTINCT workspace FROM documents")}
    if not caller.admin:
        known = {w for w in known if caller.can(w)} | set(caller.workspaces)
    return sorted(known)


@router.get("/models", response_model=OAIModelList, tags=["openai"], summary="Workspaces this key can see")
def models(st: State, caller: Caller) -> OAIModelList:
    return OAIModelList(data=[OAIModel(id=f"ragent:{w}") for w in workspaces_visible(st, caller)])


@router.post("/chat/completions", tags=["openai"],
             responses={200: {"content": {"text/event-stream": {}}, "description": "chunks when stream=true"}},
             summary="OpenAI-compatible chat; model 'ragent:WS' picks the workspace; citations in `citations`")
async def chat_completions(st: State, caller: Caller, req: OAIChatRequest) -> Any:
    ws = workspace_of_model(req.model, caller)
    text, urls = last_user(req)
    question = await read_images(st, text, urls)
    cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    events = run_chat(st, ws, question, uuid.uuid4().hex, True, "openai", history=conversation(req))

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": req.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    if req.stream:
        async def body() -> AsyncIterator[str]:
            # the draft tokens are not streamed: a client concatenates what it gets, and the claim check may
            # still drop or re-cite sentences; the checked answer is sent when it is ready
            yield chunk({"role": "assistant", "content": ""})
            async for ev in events:
                if ev["type"] == "error":
                    yield chunk({"content": f"[ragent error: {ev['message']}]\n\n"})
                elif ev["type"] == "answer":
                    ans = ev["answer"]
                    cites = list(ans.get("citations", []))
                    for piece in re.findall(r"\S+\s*", answer_text(ans)):
                        yield chunk({"content": piece})
                    yield chunk({"content": sources_block(cites)}, "stop", citations=cites,
                                short_answer=ans.get("short_answer", ""))
            yield "data: [DONE]\n\n"

        return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)

    answer: dict[str, Any] = {}
    error: ErrorEvent | None = None
    async for ev in events:
        if ev["type"] == "answer":
            answer = ev["answer"]
        elif ev["type"] == "error":
            error = ev
    if error is not None and not answer.get("answer"):
        status = 503 if error.get("error") == "LLMUnavailableError" else 502
        raise Problem(status, error["message"] or "the agent failed")
    cites = list(answer.get("citations", []))
    content = answer_text(answer) + sources_block(cites)
    n_tokens = len(content.split())
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": req.model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content, "citations": cites,
                                 "short_answer": answer.get("short_answer", "")}}],
        "usage": {"prompt_tokens": len(question.split()), "completion_tokens": n_tokens,
                  "total_tokens": len(question.split()) + n_tokens},
        "citations": cites,
    }
