"""The LLM seam and its OpenAI-API implementation (vLLM, CPU or GPU, or any compatible server).

One required method: ``chat(messages, schema=None) -> str``. Streaming and pydantic-validated structured
output are conveniences built on it. vLLM rejects ``min_p``/``logit_bias`` when speculative decoding is on,
so this client never sends them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from core.errors import LLMError, LLMUnavailableError
from core.settings import LLMConfig

logger = logging.getLogger(__name__)

Message = dict[str, Any]
M = TypeVar("M", bound=BaseModel)

START_HINT = "run `ragent llm serve` or set RAGENT_LLM_BASE_URL to a running OpenAI-compatible server"


@dataclass
class Usage:
    """LLM calls and tokens counted while ``metered()`` is active (what an evaluation reports per question)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


_METER: ContextVar[Usage | None] = ContextVar("ragent_llm_usage", default=None)


@contextmanager
def metered() -> Iterator[Usage]:
    """Count the LLM calls made in this context (tasks started inside it included)."""
    usage = Usage()
    token = _METER.set(usage)
    try:
        yield usage
    finally:
        _METER.reset(token)


def record_usage(prompt_tokens: int, completion_tokens: int) -> None:
    usage = _METER.get()
    if usage is not None:
        usage.calls += 1
        usage.prompt_tokens += prompt_tokens
        usage.completion_tokens += completion_tokens


@runtime_checkable
class LLM(Protocol):
    """Chat completion. ``schema`` (a JSON schema) asks the server for guided JSON output."""

    async def chat(
        self, messages: list[Message], *, schema: dict[str, Any] | None = None, max_tokens: int | None = None
    ) -> str: ...


async def stream_chat(llm: LLM, messages: list[Message], *, max_tokens: int | None = None) -> AsyncIterator[str]:
    """Yield answer text pieces: token by token when the LLM can stream, else the whole reply at once."""
    streamer = getattr(llm, "stream", None)
    if streamer is not None:
        async for piece in streamer(messages, max_tokens=max_tokens):
            yield piece
        return
    yield await llm.chat(messages, max_tokens=max_tokens)


def _extract_json(text: str) -> str:
    """Strip code fences / prose around the first JSON object or array in ``text``."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return text
    start = min(starts)
    end = max(text.rfind("}"), text.rfind("]"))
    return text[start : end + 1] if end > start else text[start:]


async def chat_json(
    llm: LLM, messages: list[Message], model: type[M], *, max_tokens: int | None = None, retries: int = 1,
    free_first: bool = False,
) -> M:
    """Ask for JSON matching ``model``'s schema, validate it with pydantic, retry once with the error shown.

    ``free_first``: the first try is not grammar-guided, the retry is. For prompts with a worked example: a small
    model copies the example's JSON well, while the server's grammar (no free whitespace) pushed Qwen2.5-1.5B off
    it: it restated the whole question as sub-question 1 and wrote past the closing quote (docs/ANSWERS.md).
    Raises ``LLMError`` when the reply still does not validate: callers keep an extractive fallback.
    """
    schema = model.model_json_schema()
    msgs = list(messages)
    last_err: Exception | None = None
    for attempt in range(retries + 1):
        guided = None if free_first and attempt == 0 else schema
        text = await llm.chat(msgs, schema=guided, max_tokens=max_tokens)
        try:
            return model.model_validate_json(_extract_json(text))
        except (ValidationError, ValueError) as e:
            last_err = e
            logger.info("structured output failed validation (%s); retrying", type(e).__name__)
            msgs = [
                *messages,
                {"role": "assistant", "content": text},
                {"role": "user", "content": f"That was not valid JSON for the schema: {str(e)[:300]}. "
                 "Reply with only the corrected JSON."},
            ]
    raise LLMError(f"the LLM did not return valid {model.__name__} JSON: {last_err}")


class OpenAILLM:
    """``LLM`` over the ``openai`` SDK. Retries (with backoff) on connection errors, 408/429/5xx."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self._client: Any = None  # created lazily: no I/O in the constructor

    @property
    def client(self) -> Any:
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(
                base_url=self.config.base_url,
                api_key=self.config.api_key,
                timeout=self.config.timeout_s,
                max_retries=self.config.retries,
            )
        return self._client

    def _params(self, messages: list[Message], max_tokens: int | None,
                schema: dict[str, Any] | None = None) -> dict[str, Any]:
        """The request body (less ``stream``): guided JSON output when ``schema`` is given."""
        params: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "max_tokens": max_tokens or self.config.max_tokens,
            "temperature": self.config.temperature,
        }
        if schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema.get("title", "output"), "schema": schema},
            }
        return params

    def _error(self, e: Exception) -> LLMError:
        import openai

        url = self.config.base_url
        if isinstance(e, openai.APITimeoutError):
            return LLMUnavailableError(
                f"the LLM server at {url} timed out after {self.config.timeout_s:.0f}s; "
                "raise RAGENT_LLM_TIMEOUT_S or use a faster model"
            )
        if isinstance(e, openai.APIConnectionError):
            return LLMUnavailableError(f"cannot reach the LLM server at {url}: {START_HINT}")
        if isinstance(e, openai.NotFoundError):
            return LLMError(
                f"the LLM server at {url} does not serve model {self.config.model!r} ({e.message}); "
                "set RAGENT_LLM_SERVED_NAME to a name listed by GET /v1/models"
            )
        if isinstance(e, openai.APIStatusError):
            return LLMError(f"the LLM server at {url} answered HTTP {e.status_code}: {e.message}")
        return LLMError(f"LLM call failed: {e}")

    async def chat(
        self, messages: list[Message], *, schema: dict[str, Any] | None = None, max_tokens: int | None = None
    ) -> str:
        import openai

        try:
            resp = await self.client.chat.completions.create(**self._params(messages, max_tokens, schema))
        except openai.OpenAIError as e:
            raise self._error(e) from e
        if not resp.choices:
            raise LLMError(f"the LLM server at {self.config.base_url} returned no choices")
        u = getattr(resp, "usage", None)
        record_usage(int(getattr(u, "prompt_tokens", 0) or 0), int(getattr(u, "completion_tokens", 0) or 0))
        return resp.choices[0].message.content or ""

    async def stream(self, messages: list[Message], *, max_tokens: int | None = None) -> AsyncIterator[str]:
        import openai

        prompt = completion = 0
        try:
            it = await self.client.chat.completions.create(**self._params(messages, max_tokens), stream=True,
                                                           stream_options={"include_usage": True})
            async for ev in it:
                if getattr(ev, "usage", None):
                    prompt, completion = ev.usage.prompt_tokens or 0, ev.usage.completion_tokens or 0
                if ev.choices and ev.choices[0].delta.content:
                    yield ev.choices[0].delta.content
        except openai.OpenAIError as e:
            raise self._error(e) from e
        record_usage(prompt, completion)

    async def models(self) -> list[str]:
        """Names the server serves (GET /v1/models)."""
        import openai

        try:
            page = await self.client.models.list()
        except openai.OpenAIError as e:
            raise self._error(e) from e
        return [m.id for m in page.data]


def dumps(obj: Any) -> str:
    """Compact JSON for prompts."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
