"""The agent graph, built once:

    rewrite -> planner -> executor -> reflector -(retry)-> executor
                                             -(replan)-> planner
                                             -(answer)-> answerer -> reflector -(done)-> finish

``rewrite`` makes a follow-up question stand alone; ``finish`` picks the final answer and records the turn in
the thread's history. The experience reflectors run after the answer has been returned (``Agent.astream``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.answerer import answerer
from agents.deps import Deps
from agents.executor import executor
from agents.planner import planner
from agents.reflector import reflector, route_next
from agents.rewrite import finish, rewrite
from agents.state import AgentState


def build_graph(deps: Deps) -> StateGraph[Any]:
    """The uncompiled graph; compile it with a checkpointer (``Agent`` does)."""
    g: StateGraph[Any] = StateGraph(AgentState)
    g.add_node("rewrite", partial(rewrite, deps=deps))
    g.add_node("planner", partial(planner, deps=deps))
    g.add_node("executor", partial(executor, deps=deps))
    g.add_node("reflector", partial(reflector, deps=deps))
    g.add_node("answerer", partial(answerer, deps=deps))
    g.add_node("finish", finish)
    g.add_edge(START, "rewrite")
    g.add_edge("rewrite", "planner")
    g.add_edge("planner", "executor")
    g.add_edge("executor", "reflector")
    g.add_conditional_edges("reflector", route_next, {"executor": "executor", "planner": "planner",
                                                      "answerer": "answerer", "end": "finish"})
    g.add_edge("answerer", "reflector")
    g.add_edge("finish", END)
    return g
