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


TABLE_BUDGET = 2.0  # a table's records may take this many times a source's budget: a row named cell by cell runs
# longer than its grid line, and at 1.25x only the four HTML rows of an eight-row table were shown for a
# question about an OTSL row (the rows tie on question words; the last ones in were cut)
CAPTION_SHOWN = 160  # a longer table caption shows its first sentence (the rest is commentary on the table)


_PIPE = re.compile(r"(?<!\\)\|")  # a cell border (an escaped "\|" is text)


def _words(text: str) -> set[str]:
    """Content words with snake_case split ("ROUTINE_TYPE" meets a cell read as "ROUTINE TYPE _")."""
    return content_words(text.replace("_", " "))


def _cells(line: str) -> list[str]:
    return [c.strip() for c in _PIPE.split(line.strip())[1:-1]]


def _best_rows(head: list[str], rows: list[str], question: str, room: int,
               weight: Callable[[str], float] | None, at_least: int = 0) -> str:
    """``head`` lines, then the ``rows`` that fit ``room`` characters, those holding the most weight of question
    words first (at least ``at_least`` of them, fitting or not), shown in table order with "…" where rows were
    left out."""
    qw = _words(question)
    score = [_mass(qw & _words(r), weight) for r in rows]
    keep: set[int] = set()
    for i in sorted(range(len(rows)), key=lambda i: (-score[i], i)):  # best rows first, then the rest in order
        if len(rows[i]) + 1 <= room or len(keep) < at_least:
            keep.add(i)
            room -= len(rows[i]) + 1
    out, gap = list(head), False
    for i, r in enumerate(rows):
        if i in keep:
            out += [ELLIPSIS] if gap else []
            out.append(r)
            gap = False
        else:
            gap = True
    return "\n".join(out + ([ELLIPSIS] if gap else []))


def table_records(text: str, question: str, max_chars: int,
                  weight: Callable[[str], float] | None = None) -> str | None:
    """A Markdown table chunk (caption, header, rows) as the answer call reads it: the caption (its first
    sentence when long), then one line per row with each cell named by its column ("- Elser, RW: Recall @5 =
    0.49; Recall @10 = 0.60; ..."; cells under an empty header name the row). Rows over ``max_chars`` are left out,
    those holding the least weight of question words first; the rest stay in table order, "…" where rows were
    left out. A 1.5B model read the wrong row or column of a Markdown grid in 7 of 16 table questions of the
    ``pdfs`` set although the right cell was in the prompt; named, a value stands next to its column and row.
    None for text that is not a table, or whose header does not name every column but the first ones (the
    row labels'): an unnamed column in the middle means the header was not read right, and a value named by the
    wrong column misleads more than a grid (``table_rows`` shows those).
    """
    m = _TABLE_HEAD.search(text)
    if m is None:
        return None
    before = text[:m.start()].rstrip("\n").split("\n")
    caption, header = "\n".join(before[:-1]).strip(), _cells(before[-1])
    named_from = next((i for i, h in enumerate(header) if h), len(header))
    if named_from == len(header) or not all(header[named_from:]):
        return None
    if len(caption) > CAPTION_SHOWN:
        ends = [b for _, b in spans(caption)]
        first = caption[:next((b for b in ends if b >= 40), len(caption))].strip()  # not just "Table 1."
        caption = first if len(first) <= CAPTION_SHOWN else caption[:CAPTION_SHOWN].rsplit(" ", 1)[0] + " " + ELLIPSIS
    rows = []
    for line in text[m.end():].split("\n"):
        if not line.strip().startswith("|"):
            continue
        cells = _cells(line)
        label = ", ".join(c for h, c in zip(header, cells, strict=False) if c and not h)
        named = "; ".join(f"{h} = {c}" for h, c in zip(header, cells, strict=False) if c and h)
        rows.append("- " + (f"{label}: {named}" if label and named else label or named))
    return _best_rows([caption] if caption else [], rows, question, max_chars - len(caption), weight, at_least=1)


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
    return _best_rows([head], rows, question, room, weight)


def excerpt(text: str, question: str, max_chars: int, weight: Callable[[str], float] | None = None,
            slack: float = SLACK) -> str:
    """``text`` itself when it fits ``max_chars`` times ``slack``; else the contiguous run of sentences no longer
    than ``max_chars`` that holds the most weight (``rarity``; 1 each by default) of distinct question words (the
    earliest such run, as long as it can be), with an ellipsis where text was left out. A sentence over the
    budget counts as pieces that fit it. A table is shown as named rows (``table_records``), or as its header
    and best rows (``table_rows``) where its header does not name its columns."""
    if (rows := table_records(text, question, int(max_chars * TABLE_BUDGET), weight)) is not None:
        return rows
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
