"""The agent graph, built once: planner -> executor -> reflector -(finish|retry|replan)-> answerer -> learn."""

from __future__ import annotations

from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.answerer import answerer
from agents.deps import Deps
from agents.executor import executor
from agents.experience import learn
from agents.planner import planner
from agents.reflector import reflector, route
from agents.state import AgentState


def build_graph(deps: Deps) -> StateGraph[Any]:
    """The uncompiled graph; compile it with a checkpointer (``Agent`` does)."""
    g: StateGraph[Any] = StateGraph(AgentState)
    g.add_node("planner", partial(planner, deps=deps))
    g.add_node("executor", partial(executor, deps=deps))
    g.add_node("reflector", partial(reflector, deps=deps))
    g.add_node("answerer", partial(answerer, deps=deps))
    g.add_node("learn", partial(learn, deps=deps))
    g.add_edge(START, "planner")
    g.add_edge("planner", "executor")
    g.add_edge("executor", "reflector")
    g.add_conditional_edges("reflector", route, {"executor": "executor", "planner": "planner",
                                                 "answerer": "answerer"})
    g.add_edge("answerer", "learn")
    g.add_edge("learn", END)
    return g
