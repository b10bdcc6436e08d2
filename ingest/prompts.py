"""Prompt templates of the ingest package (named, in one place)."""

from __future__ import annotations

# Anthropic "contextual retrieval": the DOCUMENT comes first and is identical for every chunk of a document,
# so vLLM's prefix cache (--enable-prefix-caching) reuses its KV cache; only the chunk part differs.
CONTEXT_SYSTEM = "You situate passages within their document for search. Reply with the context only."

CONTEXT_DOC = """<document title="{title}">
{document}
</document>"""

CONTEXT_CHUNK = """Here is the chunk we want to situate within the whole document:
<chunk>
{chunk}
</chunk>
Give a short succinct context (1-2 sentences) to situate this chunk within the overall document for the \
purposes of improving search retrieval of the chunk: name the document's subject and the section or topic \
the chunk is about. Answer only with the succinct context and nothing else."""
