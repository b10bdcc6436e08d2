"""Prompts of the finetune package."""

QUESTIONS_SYSTEM = (
    "You write search questions for a retrieval benchmark. Each question must be answerable from the passage "
    "alone, mention its specific names or terms, and not copy a whole sentence. Reply with JSON only."
)

QUESTIONS_USER = """Passage:
\"\"\"
{passage}
\"\"\"

Write {n} different questions that this passage answers.
Reply as JSON: {{"questions": ["...", "..."]}}"""
