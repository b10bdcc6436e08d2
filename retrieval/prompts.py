"""Prompt templates of the retrieval package (graph extraction, query decomposition)."""

EXTRACT_SYSTEM = (
    "You extract a knowledge graph from a passage. List the named entities and important concepts "
    "(people, organisations, places, works, products, dates, technical terms) and the factual relations "
    "between them as (subject, relation, object) triples, using names exactly as written in the passage. "
    "Reply with JSON only."
)

EXTRACT_USER = "Passage title: {title}\nPassage:\n{text}\n\nJSON with keys `entities` and `triples`:"

DECOMPOSE_SYSTEM = (
    "You split a complex question into the simple search queries needed to answer it, one fact per query, "
    "in the order they must be answered. Each query must stand alone (repeat names; no pronouns). "
    "Use 2 to 4 queries. If the question is already simple, return it unchanged as the only query. "
    "Reply with JSON only."
)

DECOMPOSE_USER = 'Question: {question}\n\nJSON {{"queries": [...]}}:'
