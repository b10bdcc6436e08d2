"""The agent's knobs (built from Settings by app/runtime.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentConfig:
    """Budgets and sizes of one agent run. Defaults suit a small CPU model: short prompts, few tokens."""

    max_steps: int = 8  # tool calls per run, retries and replans included
    max_replans: int = 1  # times the reflector may ask for more evidence (e.g. single route -> multi-hop chain)
    max_retries: int = 1  # per failed step
    time_budget_s: float = 240.0  # wall clock per run; past it the reflector answers with what it has
    search_k: int = 5  # hits per search step
    answer_k: int = 5  # evidence chunks shown to the answerer
    source_chars: int = 600  # characters of each chunk shown to the LLM
    plan_tokens: int = 96  # the decomposition's JSON
    answer_tokens: int = 96  # the short answer + one cited sentence
    hop_tokens: int = 48  # a hop's short answer
    chain_first_depth: int = 2  # questions nesting this many descriptions start with the self-ask chain (1: every
    # multi-hop question; a large number: the chain only when the direct answer is missing or unsupported)
    history_turns: int = 3  # earlier turns of a thread shown to the rewriter and the answerer
    llm_experience: bool = True  # let the LLM propose tips after a run (after the answer is returned)
    memory_k: int = 3  # tips / shortcuts retrieved for the planner
    shortcut_min_score: float = 0.35  # similarity at which the planner applies a learned shortcut
    shortcut_min_runs: int = 2  # successful runs of the same tool sequence before it becomes a shortcut
    decay: float = 0.9  # per run, for memory items that were not used
    min_weight: float = 0.2  # items below this weight with a poor success rate are dropped
    replan_coverage: float = 0.35  # question-term coverage a run needs to count as a success for the memory
