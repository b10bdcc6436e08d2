"""Prompt templates of the agents package.

Layouts put what is shared by the calls of one question first (the system prompt and its worked example never
change), so vLLM's prefix cache reuses them across calls and questions.
"""

ANSWER_SYSTEM = (
    "You answer a question using only the numbered sources. Reply in exactly two lines:\n"
    "Answer: <only the answer: a name, a number, a date, yes or no, or a short phrase; not a sentence>\n"
    "Explanation: <one short sentence from the sources that shows the answer, with the number of each source "
    "it uses, like [2]>\n"
    "If the sources do not contain the answer, reply \"Answer: not found\" and say what is missing."
)
# a worked example (two hops, two sources), sent as a user/assistant pair after the system prompt
ANSWER_EXAMPLE_USER = (
    "Sources:\n[1] (Harbor Pumps, p. 3, section \"2 Specifications\") The HP-7 pump moves 40 litres per minute. "
    "It was designed by Lena Ortiz in 2011.\n\n[2] (Lena Ortiz) Lena Ortiz is a Chilean engineer born in "
    "Valparaiso.\n\n"
    "Question: Where was the designer of the HP-7 pump born?"
)
ANSWER_EXAMPLE_REPLY = (
    "Answer: Valparaiso\nExplanation: The HP-7 pump was designed by Lena Ortiz [1], who was born in Valparaiso [2]."
)
ANSWER_USER = "Sources:\n{sources}\n\n{context}Question: {question}"
ANSWER_FACTS = "Found so far:\n{facts}\n\n"
ANSWER_HISTORY = "Earlier in this conversation:\n{turns}\n\n"

NO_CONTEXT_SYSTEM = (
    "Answer the question from your own knowledge. Reply in exactly two lines:\n"
    "Answer: <only the answer: a name, a number, a date, yes or no, or a short phrase>\n"
    "Explanation: <one short sentence>"
)

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
    "answer similar questions next time: how to search or read the sources, never facts about this question's "
    'people, places or dates. Reply JSON: {"tips": ["..."]}'
)
TIPS_USER = "Question: {question}\nRun log:\n{log}\nOutcome: {outcome}\nJSON:"

DECOMPOSE_SYSTEM = (
    "Split a complex question into 2 or 3 simple questions that are answered one after the other. Each simple "
    "question asks for one fact; the first one never repeats the whole question. A later question refers to the "
    "answer of an earlier one as #1, #2. Reply with JSON only: "
    '{"questions": ["...", "..."]}'
)
DECOMPOSE_EXAMPLE_USER = "Question: What is the capital of the country where the designer of the HP-7 pump was born?"
DECOMPOSE_EXAMPLE_REPLY = ('{"questions": ["Who designed the HP-7 pump?", "In which country was #1 born?", '
                           '"What is the capital of #2?"]}')
DECOMPOSE_USER = "Question: {question}"

REWRITE_SYSTEM = (
    "Rewrite the user's last question so it can be understood without the conversation: replace pronouns "
    "and references with what they refer to. Reply with the rewritten question only."
)
REWRITE_USER = "Conversation:\n{turns}\n\nLast question: {question}\nRewritten question:"
