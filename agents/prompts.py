"""Prompt templates of the agents package."""

ANSWER_SYSTEM = (
    "You answer questions using ONLY the numbered sources. Be brief (1-3 sentences). "
    "After each claim put the number of its source in square brackets, like [1]. "
    "If the sources do not contain the answer, say you could not find it."
)

ANSWER_USER = "Sources:\n{sources}\n\nQuestion: {question}\nAnswer with citations:"

# ---- the agent (planner / executor / reflector / answerer / experience reflectors) ------------------------

PLAN_SYSTEM = (
    "You plan how to find the answer to a question in a document collection. Reply with JSON only: "
    '{{"steps": [{{"id": "s1", "tool": "...", "input": {{...}}, "depends_on": []}}]}}. Use 1-3 steps. '
    "Tools:\n{tools}\n"
    "In inputs, {{question}} is the question and {{s1}} the result of step s1."
)

PLAN_USER = "{memory}Question: {question}\n{feedback}JSON plan:"

PLAN_TIPS = "Tips from past runs:\n{tips}\n"
PLAN_SHORTCUTS = "Shortcuts (tool \"shortcut:<name>\", input = its params):\n{shortcuts}\n"
PLAN_FEEDBACK = "The previous plan was not enough: {feedback}. Make a different plan.\n"

SUBANSWER_SYSTEM = "Answer the question from the sources in a few words. If they do not say, reply: unknown."
SUBANSWER_USER = "Sources:\n{sources}\nQuestion: {question}\nShort answer:"

JUDGE_SYSTEM = (
    'Do the sources contain the answer to the question? Reply JSON: {"answerable": true|false, "missing": "..."}'
)
JUDGE_USER = "Sources:\n{sources}\nQuestion: {question}\nJSON:"

TIPS_SYSTEM = (
    "You learn from an agent's run. Write at most 2 short, general tips (under 25 words each) that would help "
    'answer similar questions next time. Reply JSON: {"tips": ["..."]}'
)
TIPS_USER = "Question: {question}\nRun log:\n{log}\nOutcome: {outcome}\nJSON:"
