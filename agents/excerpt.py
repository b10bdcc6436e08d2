"""Question-focused excerpts: what the answer call shows of a chunk longer than its per-source budget.

Chunks of real documents run to ``chunk_chars`` (1,200) while a source in the answer prompt gets ``source_chars``
(600), so the first 600 characters hid the answer in a third of the held-out COVID-QA questions whose answer was
retrieved. The excerpt is instead the run of whole sentences, within the budget, that holds the most of the
question's words, a rare word (by its sentence frequency over all the sources of the prompt) counting more than a
common one; it is a verbatim span of the chunk, so quotes from it still verify against the chunk.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

from agents.cite import content_words, spans

ELLIPSIS = "\u2026"
# A chunk at most this much over its budget is shown whole: cutting it saves a sentence or two and loses one,
# often the last ("... and the inner-layer has dimensionality dff = 2048." ended a 615-character chunk).
SLACK = 1.25


def rarity(texts: Sequence[str]) -> Callable[[str], float]:
    """A word's weight: the log inverse of its sentence frequency over ``texts`` (a word in every sentence of
    the sources tells their sentences apart least)."""
    df: Counter[str] = Counter()
    n = 0
    for t in texts:
        for a, b in spans(t):
            df.update(content_words(t[a:b]))
            n += 1
    return lambda w: math.log((n + 1) / (df[w] + 0.5))


def _cut(text: str, a: int, b: int, max_chars: int) -> list[tuple[int, int]]:
    """The span [a, b) in pieces of at most ``max_chars``, cut at a space where there is one."""
    out = []
    while b - a > max_chars:
        cut = text.rfind(" ", a + 1, a + max_chars + 1)
        cut = cut if cut > a else a + max_chars
        out.append((a, cut))
        a = cut
        while a < b and text[a].isspace():
            a += 1
    return [*out, (a, b)] if a < b else out


def _mass(words: set[str], weight: Callable[[str], float] | None) -> float:
    """The weight of a set of question words (``fsum``: exact, so it does not depend on the set's order); 1 each
    without ``weight``."""
    return math.fsum(weight(w) for w in words) if weight else float(len(words))


_TABLE_HEAD = re.compile(r"^\|(?:\s*:?-+:?\s*\|)+[ \t]*$", re.M)  # a Markdown table's |---|---| line


def table_rows(text: str, question: str, max_chars: int,
               weight: Callable[[str], float] | None = None) -> str | None:
    """Of a Markdown table chunk (caption, header, rows) over ``max_chars``: the caption and header, then the rows
    holding the most weight of question words, in table order, "…" where rows were left out (a row is a
    record: the one the question names may be anywhere, and without the header its cells mean nothing). None
    for text that is not a table or whose header leaves too little room."""
    m = _TABLE_HEAD.search(text)
    if m is None:
        return None
    head, rows = text[:m.end()], [r for r in text[m.end():].split("\n") if r.strip()]
    room = max_chars - len(head)
    if room < max_chars // 3 or not rows:
        return None
    qw = content_words(question)
    score = [_mass(qw & content_words(r), weight) for r in rows]
    keep: set[int] = set()
    for i in sorted(range(len(rows)), key=lambda i: (-score[i], i)):  # best rows first, then the rest in order
        if len(rows[i]) + 1 <= room:
            keep.add(i)
            room -= len(rows[i]) + 1
    out, gap = [head], False
    for i, r in enumerate(rows):
        if i in keep:
            out += [ELLIPSIS] if gap else []
            out.append(r)
            gap = False
        else:
            gap = True
    return "\n".join(out + ([ELLIPSIS] if gap else []))


def excerpt(text: str, question: str, max_chars: int, weight: Callable[[str], float] | None = None,
            slack: float = SLACK) -> str:
    """``text`` itself when it fits ``max_chars`` times ``slack``; else the contiguous run of sentences no longer
    than ``max_chars`` that holds the most weight (``rarity``; 1 each by default) of distinct question words (the
    earliest such run, as long as it can be), with an ellipsis where text was left out. A sentence over the
    budget counts as pieces that fit it. A table keeps its header and its best rows (``table_rows``)."""
    if len(text) <= max_chars * slack:
        return text
    if (rows := table_rows(text, question, max_chars, weight)) is not None:
        return rows
    qw = content_words(question)
    sp = [p for a, b in spans(text) for p in _cut(text, a, b, max_chars)]
    if not sp:
        return text[:max_chars]
    held = [qw & content_words(text[a:b]) for a, b in sp]
    best = (-1.0, 0, 0)  # (weight, -first, last)
    for i in range(len(sp)):
        words: set[str] = set()
        for j in range(i, len(sp)):
            if sp[j][1] - sp[i][0] > max_chars:
                break
            words |= held[j]
            best = max(best, (_mass(words, weight), -i, j))
    a, b = sp[-best[1]][0], sp[best[2]][1]
    return (ELLIPSIS + " " if a > 0 else "") + text[a:b] + (" " + ELLIPSIS if text[b:].strip() else "")
