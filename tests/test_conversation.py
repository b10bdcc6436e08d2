"""Multi-turn chat and the checked final text through the API: SSE chat threads, the OpenAI facade's message
history (official ``openai`` client), against a live uvicorn on loopback with the agent and a scripted LLM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_live import auth, parse_sse
from tests.fakes import FakeLLM
from tests.test_agent import TURNS, three_turns
from tests.test_api_openai import serve_manual

HOSTILE = "Oslo"


def llm_reply(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
    """The three-turn script; a question about the designer gets a draft with a claim no source supports."""
    if "designed" in messages[-1]["content"].rsplit("Question:", 1)[-1]:
        return ("Answer: ten years\nExplanation: The warranty lasts ten years [1]. "
                f"The NW-200 was designed in {HOSTILE} by Ada Berg in 1999 [1].")
    if (schema or {}).get("title") == "TipsOut":
        return '{"tips": []}'
    return three_turns(messages, schema)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, example_pdf: Path) -> Iterator[tuple[str, str]]:
    with serve_manual(tmp_path_factory.mktemp("conv"), example_pdf, FakeLLM([llm_reply])) as served:
        yield served


def test_three_turn_thread_over_sse_chat(served: tuple[str, str]) -> None:
    url, key = served
    shorts, thread = [], None
    with httpx.Client(base_url=url, headers=auth(key), timeout=120) as c:
        for turn in TURNS:
            body: dict[str, Any] = {"question": turn, **({"thread_id": thread} if thread else {})}
            events = parse_sse(c.post("/v1/workspaces/manuals/chat", json=body).text)
            answer = events[-1]["answer"]
            thread = events[-1]["thread_id"]
            shorts.append(answer["short_answer"])
        msgs = c.get(f"/v1/workspaces/manuals/threads/{thread}").json()["messages"]
    assert shorts == ["5 kW", "ten years", "open the DC isolator"]
    assert [m["role"] for m in msgs] == ["user", "assistant"] * 3
    assert msgs[3]["content"].startswith("Answer: ten years")


def test_three_turn_conversation_through_the_openai_facade(served: tuple[str, str]) -> None:
    from openai import OpenAI

    url, key = served
    client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    messages: list[dict[str, str]] = []
    shorts = []
    for turn in TURNS:
        messages.append({"role": "user", "content": turn})
        resp = client.chat.completions.create(model="ragent:manuals", messages=messages)  # type: ignore[arg-type]
        content = resp.choices[0].message.content or ""
        shorts.append((resp.choices[0].message.model_extra or {})["short_answer"])
        messages.append({"role": "assistant", "content": content})
    assert shorts == ["5 kW", "ten years", "open the DC isolator"]


def test_streams_end_with_the_checked_text(served: tuple[str, str]) -> None:
    from openai import OpenAI

    url, key = served
    q = "Who designed the NW-200 and how long is its warranty?"
    with httpx.Client(base_url=url, headers=auth(key), timeout=120) as c:
        events = parse_sse(c.post("/v1/workspaces/manuals/chat", json={"question": q}).text)
    draft = "".join(e["text"] for e in events if e["type"] == "token")
    answer = events[-1]["answer"]
    assert HOSTILE in draft and HOSTILE not in answer["answer"] and any(HOSTILE in d for d in answer["dropped"])
    client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    stream = client.chat.completions.create(model="ragent:manuals", stream=True,
                                            messages=[{"role": "user", "content": q}])
    text = "".join(ch.choices[0].delta.content or "" for ch in stream)
    assert text.startswith("Answer: ten years") and HOSTILE not in text and "Sources:" in text
