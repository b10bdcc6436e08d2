"""Prompt templates of the retrieval package (graph extraction, query decomposition)."""

EXTRACT_SYSTEM = (
    "You extract a knowledge graph from a passage. List the named entities and important concepts "
    "(people, organisations, places, works, products, dates, technical terms) and the factual relations "
    "between them as (subject, relation, object) triples, using names exactly as written in the passage. "
    "Reply with JSON only."
)

EXTRACT_USER = "Passage title: {title}\nPassage:\n{text}\n\nJSON with keys `entities` and `triples`:"

DECOMPOSE_SYSTEM = (
    "You split a multi-hop question into the simple search queries needed to answer it: one fact per query, "
    "in the order they must be looked up, 2 to 4 queries, each different from the question. "
    "Reply with JSON only.\n"
    "Example question: Who is the mother of the director of the film Polish-Russian War?\n"
    'Example reply: {"queries": ["director of the film Polish-Russian War", '
    '"mother of the director of Polish-Russian War"]}'
)

DECOMPOSE_USER = 'Question: {question}\n\nJSON {{"queries": [...]}}:'
