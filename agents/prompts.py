"""Prompt templates of the agents package."""

ANSWER_SYSTEM = (
    "You answer questions using ONLY the numbered sources. Be brief (1-3 sentences). "
    "After each claim put the number of its source in square brackets, like [1]. "
    "If the sources do not contain the answer, say you could not find it."
)

ANSWER_USER = "Sources:\n{sources}\n\nQuestion: {question}\nAnswer with citations:"
